// Workflow loading and validation (being implemented).
#include "podflow/engine/loader.hpp"

namespace podflow::engine {

LoadResult load_workflow_text(std::string_view, const std::string& display_path,
                              const OperatorRegistry&) {
  return std::vector<Diagnostic>{{{display_path, 0, 0}, "loader not implemented"}};
}
LoadResult load_workflow_file(const std::filesystem::path& path, const OperatorRegistry& ops) {
  return load_workflow_text("", path.string(), ops);
}
std::variant<Json, std::string> parse_param_value(const ParamSpec&, std::string_view text) {
  return Json(std::string(text));
}
std::optional<std::string> check_param_value(const ParamSpec&, const Json&) { return std::nullopt; }

}  // namespace podflow::engine
