// The `podflow runpod-sim` subcommand: serves the RunPod simulator in the foreground.
#pragma once

#include <CLI/CLI.hpp>

namespace podflow::app {

void add_runpod_sim_command(CLI::App& app, int& exit_code);

}  // namespace podflow::app
