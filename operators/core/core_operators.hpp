// Factories of the core operators (private to the operators module and its tests).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>

#include "podflow/engine/operator.hpp"

namespace podflow::operators {

// Timings of the shell operator; tests shorten them, production uses the defaults.
struct ShellOptions {
  // After SIGTERM (cancel or timeout), how long the process group has to exit before SIGKILL.
  std::chrono::milliseconds kill_grace{5000};
  // After the shell exits, how long processes it left behind may keep the output pipe open before
  // the rest of the group is killed (so `sleep 100 &` cannot hold a task forever).
  std::chrono::milliseconds output_drain{1000};
};

// Limits of the http operator.
struct HttpOptions {
  std::size_t body_limit = std::size_t{10} * 1024 * 1024;  // larger responses fail the task
};

std::shared_ptr<const engine::Operator> make_noop_operator();
std::shared_ptr<const engine::Operator> make_shell_operator(ShellOptions options = {});
std::shared_ptr<const engine::Operator> make_http_operator(HttpOptions options = {});

}  // namespace podflow::operators
