// Reads the outputs a shell command appended to $PODFLOW_OUTPUTS (GitHub Actions' $GITHUB_OUTPUT
// form).
#pragma once

#include <boost/system/result.hpp>
#include <filesystem>
#include <string>
#include <string_view>

#include "podflow/engine/json.hpp"

namespace podflow::operators {

// `key=value` lines and multi-line values written as
//   key<<DELIMITER
//   line 1
//   line 2
//   DELIMITER
// Values are strings; a later line for the same key wins; empty lines are skipped. The error names
// the line that cannot be read.
boost::system::result<Json, std::string> parse_outputs(std::string_view text);
boost::system::result<Json, std::string> read_outputs_file(const std::filesystem::path& path);

}  // namespace podflow::operators
