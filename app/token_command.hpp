// The `podflow token` subcommands: API tokens for `podflow serve`, stored as hashes.
#pragma once

#include <CLI/CLI.hpp>

namespace podflow::app {

void add_token_command(CLI::App& app, int& exit_code);

}  // namespace podflow::app
