// Names of trigger rules and value types, type compatibility, and retry-policy questions.
#include "podflow/engine/workflow.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include "enum_names.hpp"

namespace podflow::engine {
namespace {

using detail::name_of;
using detail::value_of;

constexpr std::array<std::pair<TriggerRule, std::string_view>, 8> kRuleNames{{
    {TriggerRule::all_success, "all_success"},
    {TriggerRule::all_done, "all_done"},
    {TriggerRule::all_failed, "all_failed"},
    {TriggerRule::one_success, "one_success"},
    {TriggerRule::one_failed, "one_failed"},
    {TriggerRule::none_failed, "none_failed"},
    {TriggerRule::none_failed_min_one_success, "none_failed_min_one_success"},
    {TriggerRule::always, "always"},
}};

constexpr std::array<std::pair<ValueType, std::string_view>, 8> kTypeNames{{
    {ValueType::string, "string"},
    {ValueType::integer, "integer"},
    {ValueType::number, "number"},
    {ValueType::boolean, "boolean"},
    {ValueType::array, "array"},
    {ValueType::object, "object"},
    {ValueType::duration, "duration"},
    {ValueType::any, "any"},
}};

}  // namespace

std::string_view to_string(TriggerRule rule) { return name_of(kRuleNames, rule); }
std::optional<TriggerRule> parse_trigger_rule(std::string_view text) {
  return value_of(kRuleNames, text);
}
const std::vector<std::string>& trigger_rule_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& entry : kRuleNames) out.emplace_back(entry.second);
    return out;
  }();
  return names;
}

std::string_view to_string(ValueType type) { return name_of(kTypeNames, type); }
std::optional<ValueType> parse_value_type(std::string_view text) {
  return value_of(kTypeNames, text);
}

bool value_type_fits(ValueType from, ValueType to) {
  if (from == to || to == ValueType::any || from == ValueType::any) return true;
  switch (to) {
    case ValueType::number:
      return from == ValueType::integer;
    case ValueType::duration:
      // Durations are written as text ("30s") or as a number of seconds.
      return from == ValueType::string || from == ValueType::integer;
    case ValueType::string:
      // A duration param holds its text form.
      return from == ValueType::duration;
    default:
      return false;
  }
}

bool RetryPolicy::retries_kind(ErrorKind kind) const {
  if (!retried_by_default(kind)) return false;
  return !retry_on || std::find(retry_on->begin(), retry_on->end(), kind) != retry_on->end();
}

const TaskSpec* Workflow::find_task(std::string_view id) const {
  for (const auto& task : tasks) {
    if (task.id == id) return &task;
  }
  return nullptr;
}

const ParamSpec* Workflow::find_param(std::string_view param_name) const {
  for (const auto& param : params) {
    if (param.name == param_name) return &param;
  }
  return nullptr;
}

}  // namespace podflow::engine
