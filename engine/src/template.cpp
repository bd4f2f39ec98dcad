// Parsing of {{ ... }} templates in operator arguments and rendering them against a run's values.
#include "podflow/engine/template.hpp"

#include <array>

namespace podflow::engine {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

bool is_path_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

constexpr std::array<std::string_view, 3> kRunFields{"id", "logical_date", "workflow"};

std::string quoted(std::string_view expr) { return "'{{ " + std::string(expr) + " }}'"; }

std::variant<TemplateRef, std::string> parse_reference(std::string_view expr);

// The position of a '|' outside quotes, or npos.
std::size_t find_filter_bar(std::string_view expr) {
  char quote = 0;
  for (std::size_t i = 0; i < expr.size(); ++i) {
    if (quote != 0) {
      if (expr[i] == quote) quote = 0;
    } else if (expr[i] == '\'' || expr[i] == '"') {
      quote = expr[i];
    } else if (expr[i] == '|') {
      return i;
    }
  }
  return std::string_view::npos;
}

// `default(VALUE)` after a '|': VALUE is a quoted string or a JSON scalar.
std::variant<Json, std::string> parse_default(std::string_view filter, std::string_view expr) {
  const std::string usage = " in " + quoted(expr) +
                            "; the one filter is default(VALUE), VALUE a quoted string, a number, "
                            "true, false or null";
  if (!filter.starts_with("default(") || !filter.ends_with(")")) {
    return "unknown filter '" + std::string(filter) + "'" + usage;
  }
  const std::string_view value = trim(filter.substr(8, filter.size() - 9));
  if (value.size() >= 2 && (value.front() == '\'' || value.front() == '"') &&
      value.back() == value.front()) {
    return Json(std::string(value.substr(1, value.size() - 2)));
  }
  Json parsed = Json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || parsed.is_structured() || parsed.is_string()) {
    return "bad default value '" + std::string(value) + "'" + usage;
  }
  return parsed;
}

// Reads `scope.a.b [| default(VALUE)]` into a reference; the caller has trimmed the expression.
std::variant<TemplateRef, std::string> parse_expression(std::string_view expr) {
  const std::size_t bar = find_filter_bar(expr);
  if (bar == std::string_view::npos) return parse_reference(expr);
  auto ref = parse_reference(trim(expr.substr(0, bar)));
  if (auto* message = std::get_if<std::string>(&ref)) return std::move(*message);
  auto fallback = parse_default(trim(expr.substr(bar + 1)), expr);
  if (auto* message = std::get_if<std::string>(&fallback)) return std::move(*message);
  auto& out = std::get<TemplateRef>(ref);
  if (out.scope == TemplateRef::Scope::literal) {
    return "a literal needs no default in " + quoted(expr);
  }
  out.fallback = std::move(std::get<Json>(fallback));
  return out;
}

std::variant<TemplateRef, std::string> parse_reference(std::string_view expr) {
  if (expr.empty())
    return std::string("empty template '{{ }}'; write a reference like {{ params.NAME }}");
  TemplateRef ref;
  if (expr.front() == '\'' || expr.front() == '"') {
    if (expr.size() < 2 || expr.back() != expr.front() ||
        expr.substr(1, expr.size() - 2).find(expr.front()) != std::string_view::npos) {
      return "unterminated string literal in " + quoted(expr);
    }
    ref.scope = TemplateRef::Scope::literal;
    ref.name = std::string(expr.substr(1, expr.size() - 2));
    return ref;
  }
  std::vector<std::string_view> segments;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = expr.find('.', start);
    const std::string_view segment =
        expr.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (segment.empty()) return "bad path " + quoted(expr) + ": empty name between dots";
    for (const char c : segment) {
      if (!is_path_char(c)) {
        return "bad path " + quoted(expr) + ": unexpected character '" + std::string(1, c) +
               "' (names are letters, digits, '_' and '-', separated by '.')";
      }
    }
    segments.push_back(segment);
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  const std::string_view scope = segments[0];
  if (scope == "params" || scope == "env" || scope == "run") {
    if (segments.size() != 2) {
      return "bad path " + quoted(expr) + ": expected {{ " + std::string(scope) + ".NAME }}";
    }
    ref.name = std::string(segments[1]);
    if (scope == "params") {
      ref.scope = TemplateRef::Scope::params;
    } else if (scope == "env") {
      ref.scope = TemplateRef::Scope::env;
    } else {
      ref.scope = TemplateRef::Scope::run;
      bool known = false;
      for (const auto field : kRunFields) known = known || field == segments[1];
      if (!known) {
        return "unknown run field '" + ref.name + "' in " + quoted(expr) +
               " (run has id, logical_date, workflow)";
      }
    }
    return ref;
  }
  if (scope == "tasks") {
    if (segments.size() < 4 || segments[2] != "outputs") {
      return "bad path " + quoted(expr) + ": expected {{ tasks.ID.outputs.KEY }}";
    }
    ref.scope = TemplateRef::Scope::tasks;
    ref.name = std::string(segments[1]);
    ref.output = std::string(segments[3]);
    for (std::size_t i = 4; i < segments.size(); ++i) ref.path.emplace_back(segments[i]);
    return ref;
  }
  return "unknown scope '" + std::string(scope) + "' in " + quoted(expr) +
         " (use params, run, tasks or env)";
}

std::string ref_text(const TemplateRef& ref) {
  std::string out = "{{ ";
  switch (ref.scope) {
    case TemplateRef::Scope::params:
      out += "params." + ref.name;
      break;
    case TemplateRef::Scope::run:
      out += "run." + ref.name;
      break;
    case TemplateRef::Scope::env:
      out += "env." + ref.name;
      break;
    case TemplateRef::Scope::tasks:
      out += "tasks." + ref.name + ".outputs." + ref.output;
      for (const auto& key : ref.path) out += "." + key;
      break;
    case TemplateRef::Scope::literal:
      out += "'" + ref.name + "'";
      break;
  }
  if (ref.fallback) out += " | default(" + ref.fallback->dump() + ")";
  return out + " }}";
}

TaskError missing(const TemplateRef& ref, const std::string& why) {
  return TaskError{ErrorKind::bad_input, "template " + ref_text(ref) + ": " + why};
}

std::variant<Json, TaskError> resolve_reference(const TemplateRef& ref, const TemplateScope& scope);

std::variant<Json, TaskError> resolve(const TemplateRef& ref, const TemplateScope& scope) {
  auto value = resolve_reference(ref, scope);
  if (ref.fallback && std::holds_alternative<TaskError>(value)) return *ref.fallback;
  return value;
}

std::variant<Json, TaskError> resolve_reference(const TemplateRef& ref,
                                                const TemplateScope& scope) {
  switch (ref.scope) {
    case TemplateRef::Scope::literal:
      return Json(ref.name);
    case TemplateRef::Scope::params: {
      auto it = scope.params.find(ref.name);
      if (it == scope.params.end()) return missing(ref, "param '" + ref.name + "' has no value");
      return *it;
    }
    case TemplateRef::Scope::run: {
      auto it = scope.run.find(ref.name);
      if (it == scope.run.end()) return missing(ref, "run has no '" + ref.name + "'");
      return *it;
    }
    case TemplateRef::Scope::env: {
      auto it = scope.env.find(ref.name);
      if (it == scope.env.end()) {
        return missing(
            ref, "environment variable '" + ref.name + "' is not set (or not listed in env_allow)");
      }
      return Json(it->second);
    }
    case TemplateRef::Scope::tasks: {
      auto task = scope.task_outputs.find(ref.name);
      if (task == scope.task_outputs.end()) {
        return missing(ref, "task '" + ref.name + "' has no outputs (it has not succeeded)");
      }
      if (!task->second.is_object() || !task->second.contains(ref.output)) {
        return missing(ref, "task '" + ref.name + "' has no output '" + ref.output + "'");
      }
      const Json* value = &task->second.at(ref.output);
      std::string walked = ref.output;
      for (const auto& key : ref.path) {
        if (!value->is_object() || !value->contains(key)) {
          return missing(
              ref, "output '" + walked + "' of task '" + ref.name + "' has no key '" + key + "'");
        }
        value = &value->at(key);
        walked += "." + key;
      }
      return *value;
    }
  }
  return missing(ref, "unknown reference");
}

std::variant<Json, TaskError> render_string(const std::string& text, const TemplateScope& scope) {
  if (text.find("{{") == std::string::npos) return Json(text);
  auto parsed = parse_template(text);
  if (auto* error = std::get_if<TemplateParseError>(&parsed)) {
    return TaskError{ErrorKind::bad_input, "template in '" + text + "': " + error->message};
  }
  const auto& tmpl = std::get<ParsedTemplate>(parsed);
  if (tmpl.whole_value()) return resolve(*tmpl.parts[0].ref, scope);
  std::string out;
  for (const auto& part : tmpl.parts) {
    if (!part.ref) {
      out += part.literal;
      continue;
    }
    auto value = resolve(*part.ref, scope);
    if (auto* error = std::get_if<TaskError>(&value)) return std::move(*error);
    const auto& json = std::get<Json>(value);
    out += json.is_string() ? json.get<std::string>() : json.dump();
  }
  return Json(std::move(out));
}

}  // namespace

// The literal escape {{ '{{' }} is plain text, not a reference: it neither makes a string a
// whole-value template nor counts as a reference.
bool ParsedTemplate::whole_value() const {
  return parts.size() == 1 && parts[0].ref.has_value() &&
         parts[0].ref->scope != TemplateRef::Scope::literal;
}

bool ParsedTemplate::has_refs() const {
  for (const auto& part : parts) {
    if (part.ref && part.ref->scope != TemplateRef::Scope::literal) return true;
  }
  return false;
}

std::variant<ParsedTemplate, TemplateParseError> parse_template(std::string_view text) {
  ParsedTemplate out;
  std::string literal;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t open = text.find("{{", i);
    if (open == std::string_view::npos) {
      literal.append(text.substr(i));
      break;
    }
    literal.append(text.substr(i, open - i));
    // Find the closing braces, stepping over a quoted literal so that {{ '}}' }} works.
    std::size_t j = open + 2;
    while (j < text.size() && is_space(text[j])) ++j;
    if (j < text.size() && (text[j] == '\'' || text[j] == '"')) {
      const std::size_t close_quote = text.find(text[j], j + 1);
      if (close_quote != std::string_view::npos) j = close_quote + 1;
    }
    const std::size_t close = text.find("}}", j);
    if (close == std::string_view::npos) {
      return TemplateParseError{static_cast<int>(open),
                                "unterminated '{{': add '}}' to close it, or write {{ '{{' }} "
                                "for a literal '{{'"};
    }
    auto ref = parse_expression(trim(text.substr(open + 2, close - open - 2)));
    if (auto* message = std::get_if<std::string>(&ref)) {
      return TemplateParseError{static_cast<int>(open), std::move(*message)};
    }
    if (!literal.empty()) out.parts.push_back({std::move(literal), std::nullopt});
    literal.clear();
    auto& parsed_ref = std::get<TemplateRef>(ref);
    parsed_ref.offset = static_cast<int>(open);
    out.parts.push_back({{}, std::move(parsed_ref)});
    i = close + 2;
  }
  if (!literal.empty() || out.parts.empty())
    out.parts.push_back({std::move(literal), std::nullopt});
  return out;
}

std::variant<Json, TaskError> render(const Json& value, const TemplateScope& scope) {
  if (value.is_string()) return render_string(value.get_ref<const std::string&>(), scope);
  if (value.is_array()) {
    Json out = Json::array();
    for (const auto& item : value) {
      auto rendered = render(item, scope);
      if (auto* error = std::get_if<TaskError>(&rendered)) return std::move(*error);
      out.push_back(std::move(std::get<Json>(rendered)));
    }
    return out;
  }
  if (value.is_object()) {
    Json out = Json::object();
    for (const auto& [key, item] : value.items()) {
      auto rendered = render(item, scope);
      if (auto* error = std::get_if<TaskError>(&rendered)) return std::move(*error);
      out[key] = std::move(std::get<Json>(rendered));
    }
    return out;
  }
  return value;
}

}  // namespace podflow::engine
