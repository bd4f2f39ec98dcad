// Task and run states, with Airflow's names so users recognise them.
#pragma once

#include <optional>
#include <string_view>

namespace podflow::engine {

enum class TaskState {
  none,
  scheduled,
  queued,
  running,
  success,
  failed,
  up_for_retry,
  upstream_failed,
  skipped,
  removed,
};
std::string_view to_string(TaskState state);
std::optional<TaskState> parse_task_state(std::string_view text);
// success, failed, upstream_failed, skipped, removed: no further transition in this run.
bool is_terminal(TaskState state);

enum class RunState { queued, running, success, failed, cancelled, skipped };
std::string_view to_string(RunState state);
std::optional<RunState> parse_run_state(std::string_view text);
bool is_terminal(RunState state);

}  // namespace podflow::engine
