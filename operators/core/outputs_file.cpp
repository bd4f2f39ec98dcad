// Parser of the $PODFLOW_OUTPUTS file written by shell commands.
#include "operators/core/outputs_file.hpp"

#include <fstream>
#include <sstream>

namespace podflow::operators {
namespace {

using OutputsResult = boost::system::result<Json, std::string>;

// Json converts from strings, so the error side has to be named explicitly.
OutputsResult fail(std::string message) {
  return OutputsResult(boost::system::in_place_error, std::move(message));
}

std::string_view without_cr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace

boost::system::result<Json, std::string> parse_outputs(std::string_view text) {
  Json outputs = Json::object();
  std::size_t line_number = 0;
  std::size_t pos = 0;
  auto next_line = [&](std::string_view& line) {
    if (pos >= text.size()) return false;
    auto end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    line = without_cr(text.substr(pos, end - pos));
    pos = end + 1;
    ++line_number;
    return true;
  };

  std::string_view line;
  while (next_line(line)) {
    if (line.empty()) continue;
    const auto eq = line.find('=');
    const auto heredoc = line.find("<<");
    if (eq != std::string_view::npos && (heredoc == std::string_view::npos || eq < heredoc)) {
      const auto key = line.substr(0, eq);
      if (key.empty()) {
        return fail("outputs line " + std::to_string(line_number) + ": empty key before '='");
      }
      outputs[std::string(key)] = std::string(line.substr(eq + 1));
      continue;
    }
    if (heredoc == std::string_view::npos) {
      return fail("outputs line " + std::to_string(line_number) +
                  ": expected key=value or key<<DELIMITER, got '" + std::string(line) + "'");
    }
    const auto key = line.substr(0, heredoc);
    const auto delimiter = line.substr(heredoc + 2);
    if (key.empty() || delimiter.empty()) {
      return fail("outputs line " + std::to_string(line_number) +
                  ": key<<DELIMITER needs both a key and a delimiter");
    }
    const std::size_t start_line = line_number;
    std::string value;
    bool closed = false;
    bool first = true;
    while (next_line(line)) {
      if (line == delimiter) {
        closed = true;
        break;
      }
      if (!first) value += '\n';
      value += line;
      first = false;
    }
    if (!closed) {
      return fail("outputs line " + std::to_string(start_line) + ": value of '" + std::string(key) +
                  "' is not closed by a line '" + std::string(delimiter) + "'");
    }
    outputs[std::string(key)] = std::move(value);
  }
  return OutputsResult(boost::system::in_place_value, std::move(outputs));
}

boost::system::result<Json, std::string> read_outputs_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail("cannot read the outputs file " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  auto parsed = parse_outputs(text.str());
  if (!parsed) return fail(path.string() + ": " + parsed.error());
  return parsed;
}

}  // namespace podflow::operators
