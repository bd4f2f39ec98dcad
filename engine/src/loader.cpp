// Loads a workflow YAML file, validates it against the format of DESIGN.md section 9 and the
// operator schemas, and reports every problem found as `FILE:LINE:COL: message`.
#include "podflow/engine/loader.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "podflow/engine/cron.hpp"
#include "podflow/engine/template.hpp"

namespace podflow::engine {
namespace {

// ---------------------------------------------------------------------------------------------
// Small text helpers.

bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_workflow_name(std::string_view s) {
  if (s.empty() || !(is_lower(s[0]) || is_digit(s[0]))) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return is_lower(c) || is_digit(c) || c == '_' || c == '-'; });
}
bool is_task_id(std::string_view s) {
  if (s.empty() || !is_lower(s[0])) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return is_lower(c) || is_digit(c) || c == '_'; });
}
bool is_param_name(std::string_view s) {
  if (s.empty() || !(is_lower(s[0]) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return is_lower(c) || is_digit(c) || c == '_'; });
}
bool is_env_name(std::string_view s) {
  if (s.empty() || is_digit(s[0])) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return is_lower(c) || is_upper(c) || is_digit(c) || c == '_'; });
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0U : 1U)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// " (did you mean 'x'?)" for the closest candidate when it is close enough to be a typo.
template <typename Range>
std::string did_you_mean(std::string_view word, const Range& candidates) {
  std::string best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (const auto& candidate : candidates) {
    const std::size_t d = edit_distance(word, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = std::string(candidate);
    }
  }
  // About one typo per three letters; never for names so short that any other name is as close.
  const std::size_t limit = std::max<std::size_t>(1, word.size() / 3);
  if (best.empty() || best_distance > limit || best_distance >= word.size()) return {};
  return " (did you mean '" + best + "'?)";
}

template <typename Range>
std::string join(const Range& items, std::string_view separator = ", ") {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

// A value as a message shows it: text in single quotes, everything else as JSON.
std::string show(const Json& value) {
  if (value.is_string()) return "'" + value.get<std::string>() + "'";
  return value.dump();
}

std::string show_number(double value) {
  if (std::floor(value) == value && std::fabs(value) < 1e15) {
    return std::to_string(static_cast<std::int64_t>(value));
  }
  return Json(value).dump();
}

std::optional<std::int64_t> parse_strict_integer(std::string_view text) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return std::nullopt;
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<double> parse_strict_number(std::string_view text) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return std::nullopt;
  // from_chars also reads "inf" and "nan", which JSON cannot hold.
  for (const char c : text) {
    if (!(is_digit(c) || c == '.' || c == '-' || c == 'e' || c == 'E' || c == '+')) {
      return std::nullopt;
    }
  }
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (is_upper(c)) c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Param values.

std::string type_phrase(ValueType type) {
  switch (type) {
    case ValueType::string:
      return "a string";
    case ValueType::integer:
      return "an integer";
    case ValueType::number:
      return "a number";
    case ValueType::boolean:
      return "true or false";
    case ValueType::array:
      return "an array";
    case ValueType::object:
      return "an object";
    case ValueType::duration:
      return "a duration like 30s, 10m or 1h30m";
    case ValueType::any:
      return "any value";
  }
  return "a value";
}

// Whether a JSON value is of the given type; durations are text parse_duration reads, or a number
// of seconds.
bool json_fits(const Json& value, ValueType type) {
  switch (type) {
    case ValueType::string:
      return value.is_string();
    case ValueType::integer:
      return value.is_number_integer();
    case ValueType::number:
      return value.is_number();
    case ValueType::boolean:
      return value.is_boolean();
    case ValueType::array:
      return value.is_array();
    case ValueType::object:
      return value.is_object();
    case ValueType::duration:
      if (value.is_string()) return parse_duration(value.get<std::string>()).has_value();
      return value.is_number_unsigned() ||
             (value.is_number_integer() && value.get<std::int64_t>() >= 0);
    case ValueType::any:
      return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// YAML scalars as YAML 1.2's core schema reads them. Only plain (unquoted, untagged) scalars are
// resolved to null, booleans and numbers; quoted ones stay text.

bool is_plain(const YAML::Node& node) { return node.Tag() == "?"; }

std::optional<bool> plain_bool(std::string_view text) {
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  return std::nullopt;
}

bool looks_integer(std::string_view text) {
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) text.remove_prefix(1);
  return !text.empty() && std::all_of(text.begin(), text.end(), is_digit);
}

bool looks_float(std::string_view text) {
  // [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
  std::size_t i = 0;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
  std::size_t digits = 0;
  while (i < text.size() && is_digit(text[i])) ++i, ++digits;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && is_digit(text[i])) ++i, ++digits;
  }
  if (digits == 0) return false;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
    std::size_t exponent = 0;
    while (i < text.size() && is_digit(text[i])) ++i, ++exponent;
    if (exponent == 0) return false;
  }
  return i == text.size();
}

Json scalar_value(const std::string& text, bool plain) {
  if (!plain) return Json(text);
  if (auto b = plain_bool(text)) return Json(*b);
  if (looks_integer(text)) {
    if (auto i = parse_strict_integer(text)) return Json(*i);
  }
  if (looks_float(text)) {
    if (auto d = parse_strict_number(text)) return Json(*d);
  }
  return Json(text);
}

Json scalar_to_json(const YAML::Node& node) { return scalar_value(node.Scalar(), is_plain(node)); }

// ---------------------------------------------------------------------------------------------
// The loader.

struct Entry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

struct TaskDefaults {
  std::optional<int> retries;
  std::optional<Millis> retry_delay;
  std::optional<double> retry_backoff;
  std::optional<Millis> max_retry_delay;
  std::optional<std::vector<ErrorKind>> retry_on;
  std::optional<Millis> timeout;
  std::optional<TriggerRule> trigger_rule;
};

// Per-task parse state kept beside the TaskSpec until the cross-task checks are done.
struct TaskSource {
  YAML::Node node;
  std::vector<YAML::Node> depends_nodes;  // parallel to spec.depends
  std::optional<Entry> with;
  bool sets_retries = false, sets_retry_delay = false, sets_retry_backoff = false,
       sets_max_retry_delay = false, sets_retry_on = false, sets_timeout = false,
       sets_trigger_rule = false;
};

constexpr std::array<std::string_view, 14> kTopKeys{
    "name",    "description", "schedule", "timezone", "catchup",    "overlap",    "max_active_runs",
    "timeout", "env_allow",   "params",   "defaults", "on_failure", "on_success", "tasks"};
constexpr std::array<std::string_view, 12> kTaskKeys{
    "operator",        "depends",  "trigger_rule", "retries", "retry_delay", "retry_backoff",
    "max_retry_delay", "retry_on", "timeout",      "pool",    "with",        "description"};
constexpr std::array<std::string_view, 7> kDefaultKeys{
    "retries",  "retry_delay", "retry_backoff", "max_retry_delay",
    "retry_on", "timeout",     "trigger_rule"};
constexpr std::array<std::string_view, 7> kParamKeys{"type", "default", "minimum",    "maximum",
                                                     "enum", "secret",  "description"};
constexpr std::array<std::string_view, 7> kParamTypes{"string", "integer", "number",  "boolean",
                                                      "array",  "object",  "duration"};

class Loader {
 public:
  Loader(std::string_view text, const std::string& path, const OperatorRegistry& operators)
      : text_(text), path_(path), operators_(operators) {}

  // yaml-cpp says what it expected, not what the author got wrong: add the usual causes.
  std::string yaml_hint(const YAML::Exception& e) const {
    std::size_t line_start = 0;
    for (int line = 1; line_start < text_.size(); ++line) {
      std::size_t end = text_.find('\n', line_start);
      if (end == std::string_view::npos) end = text_.size();
      const std::string_view text = text_.substr(line_start, end - line_start);
      const std::size_t indent = text.find_first_not_of(" \t");
      if (indent != std::string_view::npos &&
          text.substr(0, indent).find('\t') != std::string_view::npos && line <= e.mark.line + 1) {
        return " (line " + std::to_string(line) +
               " is indented with a tab; YAML allows only spaces for indentation)";
      }
      line_start = end + 1;
    }
    if (e.msg.find("flow not found") != std::string::npos) {
      return " (a '{' or '[' opened earlier is not closed, or a quote inside it is not)";
    }
    return "";
  }

  LoadResult run() {
    std::vector<YAML::Node> documents;
    try {
      documents = YAML::LoadAll(std::string(text_));
    } catch (const YAML::Exception& e) {
      error_at(e.mark, "invalid YAML: " + e.msg + yaml_hint(e));
      return finish();
    }
    if (documents.empty() || documents[0].IsNull()) {
      error_line(1, 1,
                 "the file holds no workflow; a workflow file is a map with at least 'tasks:'");
      return finish();
    }
    for (std::size_t i = 1; i < documents.size(); ++i) {
      error_at(documents[i].Mark(),
               "a second YAML document ('---'); a workflow file holds exactly one workflow");
    }
    const YAML::Node& root = documents[0];
    if (!root.IsMap()) {
      error_at(
          root.Mark(),
          "the top level must be a map of workflow keys (name, tasks, ...), got " + kind_of(root));
      return finish();
    }
    workflow_.source_path = path_;
    workflow_.source_text = std::string(text_);
    load_top(root);
    return finish();
  }

 private:
  // --- diagnostics ---------------------------------------------------------------------------

  SourcePos pos_of(const YAML::Mark& mark) const {
    if (mark.is_null()) return SourcePos{path_, 0, 0};
    return SourcePos{path_, mark.line + 1, mark.column + 1};
  }
  void error_at(const YAML::Mark& mark, std::string message) {
    diagnostics_.push_back({pos_of(mark), std::move(message)});
  }
  void error(const YAML::Node& node, std::string message) {
    error_at(node.Mark(), std::move(message));
  }
  void error_line(int line, int column, std::string message) {
    diagnostics_.push_back({SourcePos{path_, line, column}, std::move(message)});
  }

  LoadResult finish() {
    if (diagnostics_.empty()) return std::move(workflow_);
    std::stable_sort(
        diagnostics_.begin(), diagnostics_.end(), [](const Diagnostic& a, const Diagnostic& b) {
          return std::tie(a.pos.line, a.pos.column) < std::tie(b.pos.line, b.pos.column);
        });
    return std::move(diagnostics_);
  }

  static std::string kind_of(const YAML::Node& node) {
    switch (node.Type()) {
      case YAML::NodeType::Map:
        return node.size() == 0 ? "an empty map" : "a map";
      case YAML::NodeType::Sequence:
        return node.size() == 0 ? "an empty list" : "a list";
      case YAML::NodeType::Null:
        return "nothing";
      case YAML::NodeType::Scalar:
        return show(scalar_to_json(node));
      case YAML::NodeType::Undefined:
        break;
    }
    return "nothing";
  }

  // --- maps ----------------------------------------------------------------------------------

  // The entries of a map node in file order. Duplicate keys are reported and only the first kept;
  // keys that are not text are reported and dropped.
  std::vector<Entry> entries(const YAML::Node& map, std::string_view where) {
    std::vector<Entry> out;
    std::unordered_map<std::string, YAML::Mark> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      // Copies: yaml-cpp's operator-> hands out a proxy that dies at the end of the statement.
      const YAML::Node key = it->first;
      const YAML::Node value = it->second;
      if (!key.IsScalar()) {
        error(key, std::string("keys of ") + std::string(where) + " must be plain names, got " +
                       kind_of(key));
        continue;
      }
      auto [first, inserted] = seen.emplace(key.Scalar(), key.Mark());
      if (!inserted) {
        error(key, "duplicate key '" + key.Scalar() + "' in " + std::string(where) + " (first at " +
                       std::to_string(first->second.line + 1) + ":" +
                       std::to_string(first->second.column + 1) + "); remove one of them");
        continue;
      }
      out.push_back({key.Scalar(), key, value});
    }
    return out;
  }

  template <std::size_t N>
  bool check_known_key(const Entry& entry, const std::array<std::string_view, N>& known,
                       std::string_view where) {
    if (std::find(known.begin(), known.end(), entry.key) != known.end()) return true;
    std::string hint = did_you_mean(entry.key, known);
    if (hint.empty()) hint = " (known keys: " + join(known) + ")";
    error(entry.key_node, "unknown key '" + entry.key + "' in " + std::string(where) + hint);
    return false;
  }

  // --- typed values --------------------------------------------------------------------------

  std::optional<std::string> get_string(const YAML::Node& node, const std::string& what) {
    if (node.IsScalar()) return node.Scalar();
    error(node, what + " must be text, got " + kind_of(node));
    return std::nullopt;
  }

  std::optional<std::int64_t> get_integer(const YAML::Node& node, const std::string& what,
                                          std::int64_t minimum) {
    std::optional<std::int64_t> value;
    if (node.IsScalar() && is_plain(node) && looks_integer(node.Scalar())) {
      value = parse_strict_integer(node.Scalar());
    }
    if (!value) {
      error(node, what + " must be an integer, got " + kind_of(node));
      return std::nullopt;
    }
    if (*value < minimum) {
      error(node, what + " must be " + std::to_string(minimum) + " or more, got " +
                      std::to_string(*value));
      return std::nullopt;
    }
    if (*value > std::numeric_limits<int>::max()) {
      error(node, what + " is too large, got " + std::to_string(*value));
      return std::nullopt;
    }
    return value;
  }

  std::optional<double> get_number(const YAML::Node& node, const std::string& what) {
    if (node.IsScalar() && is_plain(node) && looks_float(node.Scalar())) {
      if (auto value = parse_strict_number(node.Scalar())) return value;
    }
    error(node, what + " must be a number, got " + kind_of(node));
    return std::nullopt;
  }

  std::optional<bool> get_bool(const YAML::Node& node, const std::string& what) {
    if (node.IsScalar() && is_plain(node)) {
      if (auto value = plain_bool(node.Scalar())) return value;
    }
    error(node, what + " must be true or false, got " + kind_of(node));
    return std::nullopt;
  }

  // A duration is text like "30s" or "1h30m", or a plain integer number of seconds.
  std::optional<Millis> get_duration(const YAML::Node& node, const std::string& what) {
    if (node.IsScalar()) {
      const std::string& text = node.Scalar();
      if (is_plain(node) && looks_integer(text)) {
        auto seconds = parse_strict_integer(text);
        if (seconds && *seconds < 0) {
          error(node, what + " must be 0 or more, got " + text);
          return std::nullopt;
        }
        if (seconds && *seconds <= std::numeric_limits<std::int64_t>::max() / 1000) {
          return std::chrono::duration_cast<Millis>(std::chrono::seconds(*seconds));
        }
      } else if (auto value = parse_duration(text)) {
        return value;
      }
    }
    error(node, what + " must be a duration like 30s, 10m, 1h30m or a number of seconds, got " +
                    kind_of(node));
    return std::nullopt;
  }

  // A list of text items; returns the items with their nodes.
  std::optional<std::vector<std::pair<std::string, YAML::Node>>> get_string_list(
      const YAML::Node& node, const std::string& what) {
    if (!node.IsSequence()) {
      error(node, what + " must be a list like [a, b], got " + kind_of(node));
      return std::nullopt;
    }
    std::vector<std::pair<std::string, YAML::Node>> out;
    for (const auto& item : node) {
      if (!item.IsScalar()) {
        error(item, "items of " + what + " must be names, got " + kind_of(item));
        continue;
      }
      out.emplace_back(item.Scalar(), item);
    }
    return out;
  }

  template <typename Enum>
  std::optional<Enum> get_choice(const YAML::Node& node, const std::string& what,
                                 const std::vector<std::pair<std::string_view, Enum>>& choices) {
    if (node.IsScalar()) {
      for (const auto& [name, value] : choices) {
        if (node.Scalar() == name) return value;
      }
    }
    std::vector<std::string_view> names;
    for (const auto& choice : choices) names.push_back(choice.first);
    error(node, what + " must be one of " + join(names, " | ") + ", got " + kind_of(node) +
                    (node.IsScalar() ? did_you_mean(node.Scalar(), names) : ""));
    return std::nullopt;
  }

  std::optional<TriggerRule> get_trigger_rule(const YAML::Node& node, const std::string& what) {
    if (node.IsScalar()) {
      if (auto rule = parse_trigger_rule(node.Scalar())) return rule;
    }
    std::string hint = node.IsScalar() ? did_you_mean(node.Scalar(), trigger_rule_names()) : "";
    if (hint.empty()) hint = " (one of " + join(trigger_rule_names()) + ")";
    error(node, what + " must be a trigger rule, got " + kind_of(node) + hint);
    return std::nullopt;
  }

  std::optional<std::vector<ErrorKind>> get_error_kinds(const YAML::Node& node,
                                                        const std::string& what) {
    auto items = get_string_list(node, what);
    if (!items) return std::nullopt;
    std::vector<std::string> names;
    for (const auto kind : all_error_kinds()) names.emplace_back(to_string(kind));
    std::vector<ErrorKind> out;
    bool ok = true;
    for (const auto& [name, item] : *items) {
      if (auto kind = parse_error_kind(name)) {
        if (!retried_by_default(*kind)) {
          std::vector<std::string> final_kinds;
          for (const auto k : all_error_kinds()) {
            if (!retried_by_default(k)) final_kinds.emplace_back(to_string(k));
          }
          error(item, what + " lists '" + name + "', which is never retried (" + join(final_kinds) +
                          " are final); remove it");
          ok = false;
          continue;
        }
        out.push_back(*kind);
        continue;
      }
      std::string hint = did_you_mean(name, names);
      if (hint.empty()) hint = " (error kinds: " + join(names) + ")";
      error(item, what + " lists unknown error kind '" + name + "'" + hint);
      ok = false;
    }
    if (!ok) return std::nullopt;
    return out;
  }

  // YAML to JSON for operator arguments and param values, reporting duplicate keys on the way.
  Json to_json(const YAML::Node& node, std::string_view where) {
    switch (node.Type()) {
      case YAML::NodeType::Scalar:
        return scalar_to_json(node);
      case YAML::NodeType::Sequence: {
        Json out = Json::array();
        for (const auto& item : node) out.push_back(to_json(item, where));
        return out;
      }
      case YAML::NodeType::Map: {
        Json out = Json::object();
        for (const auto& entry : entries(node, where)) out[entry.key] = to_json(entry.value, where);
        return out;
      }
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        break;
    }
    return Json();
  }

  // --- top level -----------------------------------------------------------------------------

  void load_top(const YAML::Node& root) {
    std::optional<Entry> params, defaults, tasks, on_failure, on_success;
    bool has_name = false;
    for (auto& entry : entries(root, "the workflow")) {
      if (!check_known_key(entry, kTopKeys, "the workflow")) continue;
      const YAML::Node& value = entry.value;
      const std::string& key = entry.key;
      if (key == "name") {
        has_name = true;
        if (auto name = get_string(value, "name")) {
          if (!is_workflow_name(*name)) {
            error(value, "name '" + *name +
                             "' is not a valid workflow name; use lowercase letters, digits, "
                             "'_' and '-', starting with a letter or digit");
          }
          workflow_.name = *name;
        }
      } else if (key == "description") {
        if (auto text = get_string(value, "description")) workflow_.description = *text;
      } else if (key == "schedule") {
        if (auto text = get_string(value, "schedule")) {
          // Each bad field is reported at its own column (a quoted value starts one later).
          const YAML::Mark mark = value.Mark();
          const int quote = is_plain(value) ? 0 : 1;
          for (const auto& bad : CronSchedule::problems(*text)) {
            YAML::Mark at = mark;
            at.column += quote + bad.offset;
            error_at(at, "schedule \"" + *text + "\": " + bad.message);
          }
          workflow_.schedule = *text;
        }
      } else if (key == "timezone") {
        if (auto text = get_string(value, "timezone")) {
          if (!is_known_time_zone(*text)) {
            error(value, "unknown time zone '" + *text +
                             "'; use an IANA name like 'Europe/Berlin' or 'UTC'");
          }
          workflow_.timezone = *text;
        }
      } else if (key == "catchup") {
        if (auto v = get_choice<Catchup>(
                value, "catchup",
                {{"none", Catchup::none}, {"latest", Catchup::latest}, {"all", Catchup::all}})) {
          workflow_.catchup = *v;
        }
      } else if (key == "overlap") {
        if (auto v = get_choice<Overlap>(value, "overlap",
                                         {{"skip", Overlap::skip},
                                          {"queue", Overlap::queue},
                                          {"replace", Overlap::replace},
                                          {"allow", Overlap::allow}})) {
          workflow_.overlap = *v;
        }
      } else if (key == "max_active_runs") {
        if (auto v = get_integer(value, "max_active_runs", 1)) {
          workflow_.max_active_runs = static_cast<int>(*v);
        }
      } else if (key == "timeout") {
        workflow_.timeout = get_duration(value, "timeout");
      } else if (key == "env_allow") {
        load_env_allow(value);
      } else if (key == "params") {
        params = entry;
      } else if (key == "defaults") {
        defaults = entry;
      } else if (key == "tasks") {
        tasks = entry;
      } else if (key == "on_failure") {
        on_failure = entry;
      } else if (key == "on_success") {
        on_success = entry;
      }
    }
    if (!has_name) {
      const std::string stem = std::filesystem::path(path_).stem().string();
      if (!is_workflow_name(stem)) {
        error_line(1, 1,
                   "the workflow has no 'name:' and its file name '" + stem +
                       "' is not a valid workflow name; add 'name:' (lowercase letters, digits, "
                       "'_' and '-') or rename the file");
      }
      workflow_.name = stem;
    }
    if (params) load_params(params->value);
    if (defaults) load_defaults(defaults->value);
    if (!tasks) {
      error_line(1, 1, "the workflow has no 'tasks:'; add a map of task id -> task");
    } else {
      load_tasks(*tasks);
    }
    if (on_failure) workflow_.on_failure = load_hook_list(on_failure->value, "on_failure");
    if (on_success) workflow_.on_success = load_hook_list(on_success->value, "on_success");
    if (on_failure || on_success) check_hooks();
  }

  void load_env_allow(const YAML::Node& value) {
    auto items = get_string_list(value, "env_allow");
    if (!items) return;
    for (const auto& [name, item] : *items) {
      if (!is_env_name(name)) {
        error(item, "env_allow entry '" + name +
                        "' is not an environment variable name (letters, digits and '_', not "
                        "starting with a digit)");
        continue;
      }
      workflow_.env_allow.push_back(name);
    }
  }

  // --- params --------------------------------------------------------------------------------

  void load_params(const YAML::Node& node) {
    if (node.IsNull()) return;
    if (!node.IsMap()) {
      error(node, "params must be a map of param name -> {type: ..., default: ...}, got " +
                      kind_of(node));
      return;
    }
    for (const auto& entry : entries(node, "params")) {
      const std::string where = "params." + entry.key;
      if (!is_param_name(entry.key)) {
        error(entry.key_node, "param name '" + entry.key +
                                  "' is not valid; use lowercase letters, digits and '_', not "
                                  "starting with a digit");
      }
      if (!entry.value.IsMap()) {
        error(entry.value, where + " must be a map like {type: string, default: ...}, got " +
                               kind_of(entry.value));
        continue;
      }
      ParamSpec spec;
      spec.name = entry.key;
      spec.pos = pos_of(entry.key_node.Mark());
      bool typed = false;
      std::optional<Entry> default_entry, min_entry, max_entry, enum_entry;
      for (const auto& field : entries(entry.value, where)) {
        if (!check_known_key(field, kParamKeys, where)) continue;
        const std::string what = where + "." + field.key;
        if (field.key == "type") {
          if (auto text = get_string(field.value, what)) {
            auto type = parse_value_type(*text);
            if (!type || *type == ValueType::any) {
              std::string hint = did_you_mean(*text, kParamTypes);
              error(field.value,
                    what + " must be one of " + join(kParamTypes) + ", got '" + *text + "'" + hint);
              typed = true;  // reported; do not also report it as missing
              spec.type = ValueType::any;
            } else {
              spec.type = *type;
              typed = true;
            }
          } else {
            typed = true;  // reported; do not also report it as missing
            spec.type = ValueType::any;
          }
        } else if (field.key == "default") {
          default_entry = field;
        } else if (field.key == "minimum") {
          min_entry = field;
          spec.minimum = get_number(field.value, what);
        } else if (field.key == "maximum") {
          max_entry = field;
          spec.maximum = get_number(field.value, what);
        } else if (field.key == "enum") {
          enum_entry = field;
          if (!field.value.IsSequence() || field.value.size() == 0) {
            error(field.value, what + " must be a non-empty list of allowed values, got " +
                                   kind_of(field.value));
          } else {
            for (const auto& item : field.value) spec.allowed.push_back(to_json(item, what));
          }
        } else if (field.key == "secret") {
          if (auto v = get_bool(field.value, what)) spec.secret = *v;
        } else if (field.key == "description") {
          if (auto text = get_string(field.value, what)) spec.description = *text;
        }
      }
      if (!typed) {
        error(entry.key_node, "param '" + entry.key + "' has no type; add type: (one of " +
                                  join(kParamTypes) + ")");
        spec.type = ValueType::any;
      }
      check_param_spec(spec, default_entry, min_entry, max_entry, enum_entry);
      workflow_.params.push_back(std::move(spec));
    }
  }

  void check_param_spec(ParamSpec& spec, const std::optional<Entry>& default_entry,
                        const std::optional<Entry>& min_entry,
                        const std::optional<Entry>& max_entry,
                        const std::optional<Entry>& enum_entry) {
    const bool numeric = spec.type == ValueType::integer || spec.type == ValueType::number;
    const bool known_type = spec.type != ValueType::any;
    if (known_type && !numeric) {
      for (const auto* bound : {&min_entry, &max_entry}) {
        if (*bound) {
          error((*bound)->key_node, "param '" + spec.name + "' is of type " +
                                        std::string(to_string(spec.type)) + "; " + (*bound)->key +
                                        " applies only to integer and number params");
        }
      }
      spec.minimum.reset();
      spec.maximum.reset();
    }
    if (spec.minimum && spec.maximum && *spec.minimum > *spec.maximum) {
      error(max_entry->value, "param '" + spec.name + "' has minimum " +
                                  show_number(*spec.minimum) + " greater than maximum " +
                                  show_number(*spec.maximum));
      spec.minimum.reset();
      spec.maximum.reset();
    }
    if (known_type && enum_entry && enum_entry->value.IsSequence()) {
      std::size_t index = 0;
      for (const auto& item : enum_entry->value) {
        const Json& value = spec.allowed[index++];
        if (!json_fits(value, spec.type)) {
          error(item, "enum value " + show(value) + " of param '" + spec.name + "' must be " +
                          type_phrase(spec.type));
        }
      }
    }
    if (default_entry) {
      Json value = to_json(default_entry->value, "params." + spec.name + ".default");
      if (!known_type) {
        spec.default_value = std::move(value);
        return;
      }
      // A duration default is stored in its canonical text, as a --param value would be.
      if (spec.type == ValueType::duration && json_fits(value, ValueType::duration)) {
        value = Json(format_duration(value.is_string() ? *parse_duration(value.get<std::string>())
                                                       : Millis(value.get<std::int64_t>() * 1000)));
      }
      if (auto problem = check_param_value(spec, value)) {
        error(default_entry->value, "default of " + *problem);
      } else {
        spec.default_value = std::move(value);
      }
    }
  }

  // --- defaults ------------------------------------------------------------------------------

  void load_defaults(const YAML::Node& node) {
    if (node.IsNull()) return;
    if (!node.IsMap()) {
      error(node,
            "defaults must be a map like {retries: 2, retry_delay: 30s}, got " + kind_of(node));
      return;
    }
    for (const auto& entry : entries(node, "defaults")) {
      if (!check_known_key(entry, kDefaultKeys, "defaults")) continue;
      const std::string what = "defaults." + entry.key;
      const YAML::Node& value = entry.value;
      if (entry.key == "retries") {
        if (auto v = get_integer(value, what, 0)) defaults_.retries = static_cast<int>(*v);
      } else if (entry.key == "retry_delay") {
        defaults_.retry_delay = get_duration(value, what);
      } else if (entry.key == "retry_backoff") {
        defaults_.retry_backoff = get_backoff(value, what);
      } else if (entry.key == "max_retry_delay") {
        defaults_.max_retry_delay = get_duration(value, what);
      } else if (entry.key == "retry_on") {
        defaults_.retry_on = get_error_kinds(value, what);
      } else if (entry.key == "timeout") {
        defaults_.timeout = get_duration(value, what);
      } else if (entry.key == "trigger_rule") {
        defaults_.trigger_rule = get_trigger_rule(value, what);
      }
    }
  }

  std::optional<double> get_backoff(const YAML::Node& node, const std::string& what) {
    auto value = get_number(node, what);
    if (value && *value < 1.0) {
      error(node, what + " must be a factor of 1 or more (1 keeps the delay constant), got " +
                      show_number(*value));
      return std::nullopt;
    }
    return value;
  }

  // --- tasks ---------------------------------------------------------------------------------

  void load_tasks(const Entry& tasks_entry) {
    const YAML::Node& node = tasks_entry.value;
    if (!node.IsMap() || node.size() == 0) {
      error(node.IsNull() ? tasks_entry.key_node : node,
            "tasks must be a non-empty map of task id -> task, got " + kind_of(node));
      return;
    }
    for (const auto& entry : entries(node, "tasks")) {
      TaskSpec spec;
      spec.id = entry.key;
      spec.pos = pos_of(entry.key_node.Mark());
      if (!is_task_id(entry.key)) {
        error(entry.key_node, "task id '" + entry.key +
                                  "' is not valid; use lowercase letters, digits and '_', "
                                  "starting with a letter");
      }
      TaskSource source;
      source.node = entry.key_node;
      if (!entry.value.IsMap()) {
        error(entry.value, "task '" + entry.key +
                               "' must be a map with at least 'operator:', got " +
                               kind_of(entry.value));
      } else {
        load_task(spec, source, entry);
      }
      task_index_.emplace(spec.id, workflow_.tasks.size());
      workflow_.tasks.push_back(std::move(spec));
      sources_.push_back(std::move(source));
    }
    for (std::size_t i = 0; i < workflow_.tasks.size(); ++i) check_depends(i);
    const bool acyclic = check_cycles();
    for (std::size_t i = 0; i < workflow_.tasks.size(); ++i) {
      apply_defaults(workflow_.tasks[i], sources_[i]);
      if (sources_[i].with) check_with(i, acyclic);
      check_required_args(i);
    }
    for (std::size_t i = 0; i < workflow_.tasks.size(); ++i) fill_arg_defaults(workflow_.tasks[i]);
  }

  void load_task(TaskSpec& spec, TaskSource& source, const Entry& task_entry) {
    const std::string where = "task '" + spec.id + "'";
    const std::string prefix = "tasks." + spec.id + ".";
    bool has_operator = false;
    for (auto& entry : entries(task_entry.value, where)) {
      if (!check_known_key(entry, kTaskKeys, where)) continue;
      const std::string what = prefix + entry.key;
      const YAML::Node& value = entry.value;
      if (entry.key == "operator") {
        has_operator = true;
        if (auto name = get_string(value, what)) {
          spec.operator_name = *name;
          spec.op = operators_.find(*name);
          if (!spec.op) {
            const auto names = operators_.names();
            std::string hint = did_you_mean(*name, names);
            if (hint.empty()) hint = " (known operators: " + join(names) + ")";
            error(value, "task '" + spec.id + "' uses unknown operator '" + *name + "'" + hint);
          }
        }
      } else if (entry.key == "depends") {
        if (auto items = get_string_list(value, what)) {
          for (auto& [name, item] : *items) {
            spec.depends.push_back(name);
            source.depends_nodes.push_back(item);
          }
        }
      } else if (entry.key == "trigger_rule") {
        source.sets_trigger_rule = true;
        if (auto rule = get_trigger_rule(value, what)) spec.trigger_rule = *rule;
      } else if (entry.key == "retries") {
        source.sets_retries = true;
        if (auto v = get_integer(value, what, 0)) spec.retry.retries = static_cast<int>(*v);
      } else if (entry.key == "retry_delay") {
        source.sets_retry_delay = true;
        if (auto v = get_duration(value, what)) spec.retry.retry_delay = *v;
      } else if (entry.key == "retry_backoff") {
        source.sets_retry_backoff = true;
        if (auto v = get_backoff(value, what)) spec.retry.retry_backoff = *v;
      } else if (entry.key == "max_retry_delay") {
        source.sets_max_retry_delay = true;
        if (auto v = get_duration(value, what)) spec.retry.max_retry_delay = *v;
      } else if (entry.key == "retry_on") {
        source.sets_retry_on = true;
        if (auto v = get_error_kinds(value, what)) spec.retry.retry_on = std::move(v);
      } else if (entry.key == "timeout") {
        source.sets_timeout = true;
        spec.timeout = get_duration(value, what);
      } else if (entry.key == "pool") {
        if (auto name = get_string(value, what)) {
          if (!is_workflow_name(*name)) {
            error(value, what +
                             " must be a pool name like 'gpu' (lowercase letters, digits, '_' "
                             "and '-'), got '" +
                             *name + "'");
          }
          spec.pool = *name;
        }
      } else if (entry.key == "description") {
        if (auto text = get_string(value, what)) spec.description = *text;
      } else if (entry.key == "with") {
        source.with = entry;
      }
    }
    if (!has_operator) {
      error(task_entry.key_node, "task '" + spec.id +
                                     "' has no 'operator:'; add one (known operators: " +
                                     join(operators_.names()) + ")");
    }
  }

  void apply_defaults(TaskSpec& spec, const TaskSource& source) {
    if (!source.sets_retries && defaults_.retries) spec.retry.retries = *defaults_.retries;
    if (!source.sets_retry_delay && defaults_.retry_delay) {
      spec.retry.retry_delay = *defaults_.retry_delay;
    }
    if (!source.sets_retry_backoff && defaults_.retry_backoff) {
      spec.retry.retry_backoff = *defaults_.retry_backoff;
    }
    if (!source.sets_max_retry_delay && defaults_.max_retry_delay) {
      spec.retry.max_retry_delay = *defaults_.max_retry_delay;
    }
    if (!source.sets_retry_on && defaults_.retry_on) spec.retry.retry_on = *defaults_.retry_on;
    if (!source.sets_timeout && defaults_.timeout) spec.timeout = defaults_.timeout;
    if (!source.sets_trigger_rule && defaults_.trigger_rule) {
      spec.trigger_rule = *defaults_.trigger_rule;
    }
  }

  std::vector<std::string> task_ids() const {
    std::vector<std::string> ids;
    for (const auto& task : workflow_.tasks) ids.push_back(task.id);
    return ids;
  }

  std::string unknown_task_hint(const std::string& name) {
    if (task_names_cache_.empty()) task_names_cache_ = task_ids();
    return did_you_mean(name, task_names_cache_);
  }

  void check_depends(std::size_t index) {
    TaskSpec& spec = workflow_.tasks[index];
    TaskSource& source = sources_[index];
    std::vector<std::string> kept;
    std::vector<YAML::Node> kept_nodes;
    std::unordered_set<std::string> seen;
    for (std::size_t i = 0; i < spec.depends.size(); ++i) {
      const std::string& name = spec.depends[i];
      const YAML::Node& item = source.depends_nodes[i];
      if (name == spec.id) {
        error(item, "task '" + spec.id + "' depends on itself; remove '" + name + "' from depends");
        continue;
      }
      if (!seen.insert(name).second) {
        error(item, "task '" + spec.id + "' lists '" + name + "' twice in depends; remove one");
        continue;
      }
      if (!task_index_.count(name)) {
        error(item, "task '" + spec.id + "' depends on unknown task '" + name + "'" +
                        unknown_task_hint(name));
        continue;
      }
      kept.push_back(name);
      kept_nodes.push_back(item);
    }
    spec.depends = std::move(kept);
    source.depends_nodes = std::move(kept_nodes);
  }

  // Depth-first search along depends; every back edge closes a cycle, reported once with its path.
  // Also leaves a topological order (dependencies first) in topo_order_ when there is no cycle.
  bool check_cycles() {
    const std::size_t n = workflow_.tasks.size();
    enum class Mark : std::uint8_t { fresh, active, done };
    std::vector<Mark> marks(n, Mark::fresh);
    std::vector<std::size_t> stack;                           // the active path
    std::vector<std::pair<std::size_t, std::size_t>> frames;  // task, next depends index
    bool acyclic = true;
    for (std::size_t start = 0; start < n; ++start) {
      if (marks[start] != Mark::fresh) continue;
      frames.push_back({start, 0});
      marks[start] = Mark::active;
      stack.push_back(start);
      while (!frames.empty()) {
        auto& [task, next] = frames.back();
        const auto& depends = workflow_.tasks[task].depends;
        if (next < depends.size()) {
          const std::size_t dep = task_index_.at(depends[next]);
          const std::size_t edge = next++;
          if (marks[dep] == Mark::fresh) {
            marks[dep] = Mark::active;
            stack.push_back(dep);
            frames.push_back({dep, 0});
          } else if (marks[dep] == Mark::active) {
            acyclic = false;
            auto first = std::find(stack.begin(), stack.end(), dep);
            std::string path;
            for (auto it = first; it != stack.end(); ++it) path += workflow_.tasks[*it].id + " -> ";
            path += workflow_.tasks[dep].id;
            error(sources_[task].depends_nodes[edge],
                  "cycle: " + path +
                      " (each task depends on the next); remove one of these dependencies");
          }
        } else {
          marks[task] = Mark::done;
          topo_order_.push_back(task);
          stack.pop_back();
          frames.pop_back();
        }
      }
    }
    return acyclic;
  }

  // Ancestor bit sets, computed once in topological order: a task's ancestors are its dependencies
  // and their ancestors. n^2/64 words, so a 1,000-task file costs about 16k words.
  const std::vector<std::uint64_t>& ancestors(std::size_t index) {
    if (ancestors_.empty()) {
      const std::size_t n = workflow_.tasks.size();
      const std::size_t words = (n + 63) / 64;
      ancestors_.assign(n, std::vector<std::uint64_t>(words, 0));
      for (const std::size_t task : topo_order_) {
        auto& bits = ancestors_[task];
        for (const auto& dep_id : workflow_.tasks[task].depends) {
          const std::size_t dep = task_index_.at(dep_id);
          bits[dep / 64] |= std::uint64_t{1} << (dep % 64);
          const auto& dep_bits = ancestors_[dep];
          for (std::size_t w = 0; w < words; ++w) bits[w] |= dep_bits[w];
        }
      }
    }
    return ancestors_[index];
  }

  bool is_upstream(std::size_t task, std::size_t candidate) {
    const auto& bits = ancestors(task);
    return (bits[candidate / 64] >> (candidate % 64)) & 1U;
  }

  // --- with: operator arguments ---------------------------------------------------------------

  void check_with(std::size_t index, bool acyclic) {
    TaskSpec& spec = workflow_.tasks[index];
    const Entry& with = *sources_[index].with;
    const std::string where = "tasks." + spec.id + ".with";
    if (with.value.IsNull()) return;
    if (!with.value.IsMap()) {
      error(with.value, where + " must be a map of operator arguments, got " + kind_of(with.value));
      return;
    }
    const OperatorSchema* schema = spec.op ? &spec.op->schema() : nullptr;
    std::vector<std::string> arg_names;
    if (schema) {
      for (const auto& arg : schema->args) arg_names.push_back(arg.name);
    }
    for (const auto& entry : entries(with.value, where)) {
      const ArgSpec* arg = schema ? schema->find_arg(entry.key) : nullptr;
      const std::string what = where + "." + entry.key;
      if (schema && !arg) {
        std::string hint = did_you_mean(entry.key, arg_names);
        if (hint.empty()) {
          hint = arg_names.empty() ? " (it takes no arguments)"
                                   : " (its arguments: " + join(arg_names) + ")";
        }
        error(entry.key_node,
              "operator '" + spec.operator_name + "' has no argument '" + entry.key + "'" + hint);
      }
      Json value = to_json(entry.value, what);
      check_arg_value(index, entry, arg, value, acyclic);
      spec.with[entry.key] = std::move(value);
    }
  }

  // Reported at `with:` when the task has one, else at the task's id.
  void check_required_args(std::size_t index) {
    const TaskSpec& spec = workflow_.tasks[index];
    if (!spec.op) return;
    const auto& with = sources_[index].with;
    const YAML::Node& place = with ? with->key_node : sources_[index].node;
    for (const auto& arg : spec.op->schema().args) {
      if (arg.required && !spec.with.contains(arg.name)) {
        error(place, "task '" + spec.id + "' is missing required argument '" + arg.name +
                         "' of operator '" + spec.operator_name + "'; add it under with:");
      }
    }
  }

  void fill_arg_defaults(TaskSpec& spec) {
    if (!spec.op) return;
    for (const auto& arg : spec.op->schema().args) {
      if (arg.default_value && !spec.with.contains(arg.name))
        spec.with[arg.name] = *arg.default_value;
    }
  }

  // The type of a literal value, then every template inside it.
  void check_arg_value(std::size_t index, const Entry& entry, const ArgSpec* arg, const Json& value,
                       bool acyclic) {
    const std::string what = "tasks." + workflow_.tasks[index].id + ".with." + entry.key;
    bool templated_top = false;
    if (arg && value.is_string()) {
      const auto& text = value.get_ref<const std::string&>();
      if (text.find("{{") != std::string::npos) {
        templated_top = true;
        auto parsed = parse_template(text);
        if (auto* tmpl = std::get_if<ParsedTemplate>(&parsed); tmpl && tmpl->has_refs()) {
          check_template_fit(entry, *arg, *tmpl, what);
        } else if (tmpl) {
          templated_top = false;  // only literal escapes: a plain string after all
        }
      }
    }
    if (arg && !templated_top && !json_fits(value, arg->type)) {
      std::string got = show(value);
      if (entry.value.IsScalar() && !is_plain(entry.value) && arg->type != ValueType::string &&
          json_fits(scalar_value(entry.value.Scalar(), /*plain=*/true), arg->type)) {
        got += " (quoted, so it is text; remove the quotes)";
      }
      error(entry.value, what + " must be " + type_phrase(arg->type) + ", got " + got);
    }
    walk_templates(index, entry.value, what, acyclic);
  }

  void check_template_fit(const Entry& entry, const ArgSpec& arg, const ParsedTemplate& tmpl,
                          const std::string& what) {
    if (!tmpl.whole_value()) {
      if (arg.type != ValueType::string && arg.type != ValueType::duration &&
          arg.type != ValueType::any) {
        error(entry.value, what + " is " + type_phrase(arg.type) +
                               ", so it cannot hold text mixed with a template; use a single "
                               "'{{ ... }}' as the whole value");
      }
      return;
    }
    const TemplateRef& ref = *tmpl.parts[0].ref;
    if (ref.scope == TemplateRef::Scope::params) {
      const ParamSpec* param = workflow_.find_param(ref.name);
      if (param && param->type != ValueType::any && !value_type_fits(param->type, arg.type)) {
        error(entry.value, what + " must be " + type_phrase(arg.type) + ", but param '" + ref.name +
                               "' is of type " + std::string(to_string(param->type)) +
                               "; change the param's type or the template");
      }
    } else if (ref.scope == TemplateRef::Scope::run || ref.scope == TemplateRef::Scope::env) {
      if (!value_type_fits(ValueType::string, arg.type)) {
        error(entry.value, what + " must be " + type_phrase(arg.type) + ", but {{ " +
                               (ref.scope == TemplateRef::Scope::run ? "run." : "env.") + ref.name +
                               " }} is text");
      }
    }
  }

  // Column of byte `offset` inside a scalar when the source shows the scalar's text unchanged on
  // one line (plain or quoted without escapes); else the scalar's own column.
  YAML::Mark mark_at(const YAML::Node& node, const std::string& text, int offset) {
    YAML::Mark mark = node.Mark();
    if (mark.is_null() || mark.pos < 0) return mark;
    std::size_t start = static_cast<std::size_t>(mark.pos);
    if (start < text_.size() && (text_[start] == '"' || text_[start] == '\'')) ++start;
    const std::size_t length = static_cast<std::size_t>(offset);
    if (start + length <= text_.size() && text_.compare(start, length, text, 0, length) == 0) {
      mark.column += static_cast<int>(start - static_cast<std::size_t>(mark.pos) + length);
    }
    return mark;
  }

  void walk_templates(std::size_t index, const YAML::Node& node, const std::string& what,
                      bool acyclic) {
    if (node.IsMap()) {
      for (auto it = node.begin(); it != node.end(); ++it) {
        walk_templates(index, it->second, what + "." + it->first.Scalar(), acyclic);
      }
      return;
    }
    if (node.IsSequence()) {
      std::size_t i = 0;
      for (const auto& item : node) {
        walk_templates(index, item, what + "[" + std::to_string(i++) + "]", acyclic);
      }
      return;
    }
    if (!node.IsScalar()) return;
    const std::string& text = node.Scalar();
    if (text.find("{{") == std::string::npos) return;
    auto parsed = parse_template(text);
    if (auto* bad = std::get_if<TemplateParseError>(&parsed)) {
      error_at(mark_at(node, text, bad->offset), what + ": " + bad->message);
      return;
    }
    for (const auto& part : std::get<ParsedTemplate>(parsed).parts) {
      if (part.ref) check_ref(index, node, text, *part.ref, what, acyclic);
    }
  }

  void check_ref(std::size_t index, const YAML::Node& node, const std::string& text,
                 const TemplateRef& ref, const std::string& what, bool acyclic) {
    const YAML::Mark mark = mark_at(node, text, ref.offset);
    const TaskSpec& spec = workflow_.tasks[index];
    switch (ref.scope) {
      case TemplateRef::Scope::literal:
      case TemplateRef::Scope::run:
        return;
      case TemplateRef::Scope::params: {
        if (workflow_.find_param(ref.name)) return;
        std::vector<std::string> names;
        for (const auto& param : workflow_.params) names.push_back(param.name);
        std::string hint = did_you_mean(ref.name, names);
        if (hint.empty()) hint = "; declare it under params:";
        error_at(mark, what + " reads unknown param '" + ref.name + "'" + hint);
        return;
      }
      case TemplateRef::Scope::env: {
        const auto& allowed = workflow_.env_allow;
        if (std::find(allowed.begin(), allowed.end(), ref.name) != allowed.end()) return;
        error_at(mark, what + " reads environment variable '" + ref.name +
                           "', which is not listed in env_allow; add it to env_allow");
        return;
      }
      case TemplateRef::Scope::tasks:
        break;
    }
    auto found = task_index_.find(ref.name);
    if (found == task_index_.end()) {
      error_at(mark, what + " reads outputs of unknown task '" + ref.name + "'" +
                         unknown_task_hint(ref.name));
      return;
    }
    const std::size_t source = found->second;
    if (source == index) {
      error_at(mark, "task '" + spec.id + "' reads its own outputs in " + what +
                         "; a task can only read outputs of tasks upstream of it");
      return;
    }
    if (acyclic && !is_upstream(index, source)) {
      error_at(mark, "task '" + spec.id + "' reads outputs of '" + ref.name +
                         "', which is not upstream of it; add '" + ref.name + "' to depends");
    }
    const TaskSpec& producer = workflow_.tasks[source];
    if (!producer.op) return;
    const OperatorSchema& schema = producer.op->schema();
    if (schema.open_outputs) return;
    if (std::find(schema.outputs.begin(), schema.outputs.end(), ref.output) !=
        schema.outputs.end()) {
      return;
    }
    std::string hint = did_you_mean(ref.output, schema.outputs);
    if (hint.empty()) {
      hint = schema.outputs.empty() ? " (it has no outputs)"
                                    : " (its outputs: " + join(schema.outputs) + ")";
    }
    error_at(mark, what + " reads output '" + ref.output + "' of task '" + ref.name +
                       "', but operator '" + producer.operator_name + "' has no such output" +
                       hint);
  }

  // --- on_failure / on_success ---------------------------------------------------------------

  std::vector<std::string> load_hook_list(const YAML::Node& node, const std::string& what) {
    std::vector<std::string> out;
    auto items = get_string_list(node, what);
    if (!items) return out;
    for (const auto& [name, item] : *items) {
      if (!task_index_.count(name)) {
        error(item, what + " names unknown task '" + name + "'" + unknown_task_hint(name) +
                        "; hooks must be tasks under tasks:");
        continue;
      }
      out.push_back(name);
    }
    return out;
  }

  // Hook tasks run only after every other task ended, so no other task may wait for one. (A task in
  // both lists runs either way.)
  void check_hooks() {
    const auto in = [](const std::vector<std::string>& list, const std::string& id) {
      return std::find(list.begin(), list.end(), id) != list.end();
    };
    for (std::size_t i = 0; i < workflow_.tasks.size() && i < sources_.size(); ++i) {
      const auto& task = workflow_.tasks[i];
      const bool task_is_hook =
          in(workflow_.on_failure, task.id) || in(workflow_.on_success, task.id);
      if (task_is_hook) continue;
      for (std::size_t d = 0; d < task.depends.size() && d < sources_[i].depends_nodes.size();
           ++d) {
        const auto& dep = task.depends[d];
        const char* list = in(workflow_.on_failure, dep)   ? "on_failure"
                           : in(workflow_.on_success, dep) ? "on_success"
                                                           : nullptr;
        if (list == nullptr) continue;
        error(sources_[i].depends_nodes[d],
              "task '" + task.id + "' depends on '" + dep + "', which is an " + list +
                  " hook and runs only after every other task ended; depend on it from another "
                  "hook task or remove it from " +
                  list);
      }
    }
  }

  std::string_view text_;
  const std::string& path_;
  const OperatorRegistry& operators_;
  Workflow workflow_;
  std::vector<Diagnostic> diagnostics_;
  TaskDefaults defaults_;
  std::vector<TaskSource> sources_;
  std::unordered_map<std::string, std::size_t> task_index_;
  std::vector<std::string> task_names_cache_;
  std::vector<std::size_t> topo_order_;
  std::vector<std::vector<std::uint64_t>> ancestors_;
};

}  // namespace

LoadResult load_workflow_text(std::string_view text, const std::string& display_path,
                              const OperatorRegistry& operators) {
  return Loader(text, display_path, operators).run();
}

LoadResult load_workflow_file(const std::filesystem::path& path,
                              const OperatorRegistry& operators) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::vector<Diagnostic>{
        {{path.string(), 0, 0}, "cannot read the workflow file; check that it exists"}};
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return load_workflow_text(buffer.str(), path.string(), operators);
}

std::variant<Json, std::string> parse_param_value(const ParamSpec& spec, std::string_view text) {
  const std::string prefix = "param '" + spec.name + "' must be ";
  // A secret's value never appears in a message, even when it is wrong.
  const std::string got = spec.secret ? ", got a value that is not shown (secret param)"
                                      : ", got '" + std::string(text) + "'";
  Json value;
  switch (spec.type) {
    case ValueType::string:
    case ValueType::any:
      value = std::string(text);
      break;
    case ValueType::integer: {
      auto parsed = looks_integer(text) ? parse_strict_integer(text) : std::nullopt;
      if (!parsed) return prefix + "an integer" + got;
      value = *parsed;
      break;
    }
    case ValueType::number: {
      auto parsed = looks_float(text) ? parse_strict_number(text) : std::nullopt;
      if (!parsed) return prefix + "a number" + got;
      value = *parsed;
      break;
    }
    case ValueType::boolean: {
      const std::string lower = lowercase(text);
      if (lower == "true" || lower == "yes" || lower == "1") {
        value = true;
      } else if (lower == "false" || lower == "no" || lower == "0") {
        value = false;
      } else {
        return prefix + "true or false" + got;
      }
      break;
    }
    case ValueType::array:
    case ValueType::object: {
      value = Json::parse(text, nullptr, /*allow_exceptions=*/false);
      const bool array = spec.type == ValueType::array;
      if (value.is_discarded() || (array ? !value.is_array() : !value.is_object())) {
        return prefix + (array ? "a JSON array like [1, 2]" : "a JSON object like {\"k\": 1}") +
               got;
      }
      break;
    }
    case ValueType::duration: {
      std::optional<Millis> parsed;
      if (looks_integer(text) && text.front() != '-') {
        if (auto seconds = parse_strict_integer(text);
            seconds && *seconds <= std::numeric_limits<std::int64_t>::max() / 1000) {
          parsed = std::chrono::duration_cast<Millis>(std::chrono::seconds(*seconds));
        }
      } else {
        parsed = parse_duration(text);
      }
      if (!parsed) return prefix + "a duration like 30s, 10m or 1h30m" + got;
      value = format_duration(*parsed);
      break;
    }
  }
  if (auto problem = check_param_value(spec, value)) return *problem;
  return value;
}

std::optional<std::string> check_param_value(const ParamSpec& spec, const Json& value) {
  const std::string prefix = "param '" + spec.name + "' must be ";
  const std::string got = ", got " + (spec.secret ? std::string("***") : show(value));
  if (!json_fits(value, spec.type)) return prefix + type_phrase(spec.type) + got;
  if (value.is_number()) {
    const double number = value.get<double>();
    if (spec.minimum && number < *spec.minimum) {
      return prefix + "at least " + show_number(*spec.minimum) + got;
    }
    if (spec.maximum && number > *spec.maximum) {
      return prefix + "at most " + show_number(*spec.maximum) + got;
    }
  }
  if (!spec.allowed.empty() &&
      std::find(spec.allowed.begin(), spec.allowed.end(), value) == spec.allowed.end()) {
    std::vector<std::string> shown;
    for (const auto& allowed : spec.allowed) shown.push_back(show(allowed));
    return prefix + "one of " + join(shown) + got;
  }
  return std::nullopt;
}

}  // namespace podflow::engine
