// The `podflow serve` subcommand: the API server over this installation's run store.
#pragma once

#include <CLI/CLI.hpp>

namespace podflow::app {

void add_serve_command(CLI::App& app, int& exit_code);

}  // namespace podflow::app
