// The podflow command line (being implemented).
#include "app/cli.hpp"

#include <CLI/CLI.hpp>

namespace podflow::app {
int run_cli(int argc, char** argv) {
  CLI::App app{"podflow"};
  CLI11_PARSE(app, argc, argv);
  return 0;
}
}  // namespace podflow::app
