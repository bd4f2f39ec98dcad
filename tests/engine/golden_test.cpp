// Data-driven loader tests: each bad workflow in testdata/workflows/invalid/ sits beside the exact
// diagnostics it must produce; each file in testdata/workflows/valid/ must load cleanly.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "fake_operators.hpp"
#include "podflow/engine/loader.hpp"

namespace fs = std::filesystem;
using namespace podflow::engine;

namespace {

const fs::path kTestsDir = PODFLOW_TESTS_DIR;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::vector<fs::path> yaml_files(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".yaml") out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Loads by the path relative to tests/, which is how the diagnostics show the file.
LoadResult load(const fs::path& file, const OperatorRegistry& registry) {
  const std::string shown = fs::relative(file, kTestsDir).generic_string();
  return load_workflow_text(read_text(file), shown, registry);
}

std::string diagnostics_text(const LoadResult& result) {
  std::string out;
  if (const auto* diagnostics = std::get_if<std::vector<Diagnostic>>(&result)) {
    for (const auto& d : *diagnostics) out += d.to_string() + "\n";
  }
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// "- expected" / "+ actual" lines for every line that differs, in order.
std::string diff(const std::string& expected, const std::string& actual) {
  const auto want = lines_of(expected);
  const auto got = lines_of(actual);
  std::string out;
  for (std::size_t i = 0; i < std::max(want.size(), got.size()); ++i) {
    const std::string* w = i < want.size() ? &want[i] : nullptr;
    const std::string* g = i < got.size() ? &got[i] : nullptr;
    if (w && g && *w == *g) {
      out += "  " + *w + "\n";
      continue;
    }
    if (w) out += "- " + *w + "\n";
    if (g) out += "+ " + *g + "\n";
  }
  return out;
}

}  // namespace

TEST_CASE("Loader.golden_invalid_files" * doctest::timeout(60)) {
  const auto registry = podflow::engine::testing::fake_registry();
  const bool update = std::getenv("PODFLOW_UPDATE_GOLDEN") != nullptr &&
                      std::string(std::getenv("PODFLOW_UPDATE_GOLDEN")) == "1";
  const auto files = yaml_files(kTestsDir / "testdata/workflows/invalid");
  CHECK(files.size() >= 35);
  int checked = 0;
  for (const auto& file : files) {
    const auto result = load(file, registry);
    const std::string actual = diagnostics_text(result);
    fs::path expected_path = file;
    expected_path.replace_extension(".expected");
    if (update) {
      std::ofstream(expected_path, std::ios::binary) << actual;
      continue;
    }
    INFO("golden file ", file.filename().string(),
         " (run with PODFLOW_UPDATE_GOLDEN=1 to rewrite)");
    CHECK_MESSAGE(!actual.empty(), "the file loaded without errors");
    const std::string expected = read_text(expected_path);
    CHECK_MESSAGE(expected == actual, "diagnostics differ (- expected, + actual):\n"
                                          << diff(expected, actual));
    ++checked;
  }
  if (!update) CHECK(checked >= 33);
}

TEST_CASE("Loader.golden_valid_files" * doctest::timeout(60)) {
  const auto registry = podflow::engine::testing::fake_registry();
  const auto files = yaml_files(kTestsDir / "testdata/workflows/valid");
  CHECK(files.size() >= 3);
  for (const auto& file : files) {
    const auto result = load(file, registry);
    INFO("valid file ", file.filename().string());
    CHECK_MESSAGE(std::holds_alternative<Workflow>(result), "unexpected diagnostics:\n"
                                                                << diagnostics_text(result));
  }
}
