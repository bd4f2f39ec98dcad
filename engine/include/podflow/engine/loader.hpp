// Loads workflow YAML files into validated Workflow structs, reporting every error with its
// position.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "podflow/engine/error.hpp"
#include "podflow/engine/operator.hpp"
#include "podflow/engine/workflow.hpp"

namespace podflow::engine {

using LoadResult = std::variant<Workflow, std::vector<Diagnostic>>;

// `display_path` is the name used in FILE:LINE:COL messages and as the default workflow name (its
// stem).
LoadResult load_workflow_text(std::string_view text, const std::string& display_path,
                              const OperatorRegistry& operators);
LoadResult load_workflow_file(const std::filesystem::path& path, const OperatorRegistry& operators);

// Parses a --param value according to the declared type (integer "16", boolean "true", array as
// JSON, duration "30s"...) and checks minimum/maximum/enum. Returns the error text on failure.
std::variant<Json, std::string> parse_param_value(const ParamSpec& spec, std::string_view text);
// Checks an already-typed JSON value against the spec (used for defaults and API-supplied params).
std::optional<std::string> check_param_value(const ParamSpec& spec, const Json& value);

}  // namespace podflow::engine
