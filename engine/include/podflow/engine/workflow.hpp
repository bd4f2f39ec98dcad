// The validated workflow model that the loader produces and the executor runs. No YAML in here.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "podflow/engine/duration.hpp"
#include "podflow/engine/error.hpp"
#include "podflow/engine/json.hpp"

namespace podflow::engine {

class Operator;

enum class TriggerRule {
  all_success,
  all_done,
  all_failed,
  one_success,
  one_failed,
  none_failed,
  none_failed_min_one_success,
  always,
};
std::string_view to_string(TriggerRule rule);
std::optional<TriggerRule> parse_trigger_rule(std::string_view text);
const std::vector<std::string>& trigger_rule_names();

enum class Catchup { none, latest, all };
enum class Overlap { skip, queue, replace, allow };

// Types of params and of operator arguments. `any` is for arguments that take every JSON value.
enum class ValueType { string, integer, number, boolean, array, object, duration, any };
std::string_view to_string(ValueType type);
std::optional<ValueType> parse_value_type(std::string_view text);
// True when a value of type `from` can fill an argument of type `to` without conversion errors.
bool value_type_fits(ValueType from, ValueType to);

struct RetryPolicy {
  int retries = 0;
  Millis retry_delay = std::chrono::seconds(30);
  double retry_backoff = 2.0;  // factor applied per try
  Millis max_retry_delay = std::chrono::minutes(10);
  // Unset: the default table (retried_by_default). Set: only these kinds, a subset of the table
  // (the loader refuses kinds that are never retried); an empty list retries nothing.
  std::optional<std::vector<ErrorKind>> retry_on;

  bool retries_kind(ErrorKind kind) const;
};

struct ParamSpec {
  std::string name;
  ValueType type = ValueType::string;
  std::optional<Json> default_value;  // absent: the param is required
  std::optional<double> minimum;
  std::optional<double> maximum;
  std::vector<Json> allowed;  // `enum:`; empty means any value
  bool secret = false;
  std::string description;
  SourcePos pos;
};

struct TaskSpec {
  std::string id;
  std::string operator_name;
  std::shared_ptr<const Operator> op;  // resolved by the loader
  std::vector<std::string> depends;
  TriggerRule trigger_rule = TriggerRule::all_success;
  RetryPolicy retry;
  std::optional<Millis> timeout;  // per attempt
  std::string pool;
  Json with = Json::object();  // operator arguments, templates unrendered, defaults filled
  std::string description;
  SourcePos pos;  // where the task's key is
};

struct Workflow {
  std::string name;
  std::string description;
  std::string schedule;  // empty: no schedule
  std::string timezone = "UTC";
  Catchup catchup = Catchup::latest;
  Overlap overlap = Overlap::skip;
  int max_active_runs = 1;
  std::optional<Millis> timeout;  // whole run
  std::vector<std::string> env_allow;
  std::vector<ParamSpec> params;
  std::vector<std::string> on_failure;
  std::vector<std::string> on_success;
  std::vector<TaskSpec> tasks;  // in file order

  std::string source_path;  // file it was loaded from
  std::string source_text;  // exact text, stored with every run

  const TaskSpec* find_task(std::string_view id) const;
  const ParamSpec* find_param(std::string_view name) const;
};

}  // namespace podflow::engine
