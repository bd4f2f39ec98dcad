// The `podflow reap` subcommand: finds and terminates this installation's orphaned pods.
#pragma once

#include <CLI/CLI.hpp>

namespace podflow::app {

void add_reap_command(CLI::App& app, int& exit_code);

}  // namespace podflow::app
