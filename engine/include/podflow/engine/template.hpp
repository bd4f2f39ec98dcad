// Templates in operator arguments: {{ params.x }}, {{ run.id }}, {{ run.logical_date }},
// {{ tasks.<id>.outputs.<key> }}, {{ env.NAME }}, each optionally `| default(VALUE)`, and the
// literal escape {{ '{{' }}.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "podflow/engine/error.hpp"
#include "podflow/engine/json.hpp"

namespace podflow::engine {

struct TemplateRef {
  enum class Scope { params, run, tasks, env, literal };
  Scope scope = Scope::literal;
  std::string name;    // param name, run field, task id, env name; literal text for literal
  std::string output;  // tasks scope: output key
  std::vector<std::string> path;  // tasks scope: further keys into an object output (a.b.c)
  int offset = 0;                 // byte offset of the `{{` within the string, for error columns
  // `| default(VALUE)`: what the reference renders to when it cannot be resolved (an upstream that
  // failed has no outputs); VALUE is a quoted string, a number, true, false or null.
  std::optional<Json> fallback;
};

// A string split into literal text and references. A whole-value template is exactly one reference
// with nothing around it (whitespace inside the braces allowed); it renders to the JSON type of the
// value it names.
struct ParsedTemplate {
  struct Part {
    std::string literal;  // used when ref is empty
    std::optional<TemplateRef> ref;
  };
  std::vector<Part> parts;
  bool whole_value() const;
  bool has_refs() const;
};

struct TemplateParseError {
  int offset = 0;
  std::string message;
};

// Parses one string. Unknown scopes, unterminated braces and malformed paths are errors.
std::variant<ParsedTemplate, TemplateParseError> parse_template(std::string_view text);

// Values a template can read while a run executes.
struct TemplateScope {
  Json params = Json::object();
  Json run = Json::object();                              // id, logical_date, workflow
  std::map<std::string, Json, std::less<>> task_outputs;  // task id -> outputs object
  std::map<std::string, std::string, std::less<>> env;    // only env_allow names
};

// Renders every string in `value` (recursively through arrays and objects). A reference that cannot
// be resolved is an error of kind bad_input naming the reference; never an empty string.
std::variant<Json, TaskError> render(const Json& value, const TemplateScope& scope);

}  // namespace podflow::engine
