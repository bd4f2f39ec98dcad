// Template parsing and rendering (being implemented).
#include "podflow/engine/template.hpp"

namespace podflow::engine {

bool ParsedTemplate::whole_value() const { return parts.size() == 1 && parts[0].ref.has_value(); }
bool ParsedTemplate::has_refs() const {
  for (const auto& part : parts) {
    if (part.ref) return true;
  }
  return false;
}
std::variant<ParsedTemplate, TemplateParseError> parse_template(std::string_view text) {
  ParsedTemplate out;
  out.parts.push_back({std::string(text), std::nullopt});
  return out;
}
std::variant<Json, TaskError> render(const Json& value, const TemplateScope&) { return value; }

}  // namespace podflow::engine
