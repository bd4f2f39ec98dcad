// Names of task and run states.
#include "podflow/engine/states.hpp"

#include <array>
#include <utility>

#include "enum_names.hpp"

namespace podflow::engine {
namespace {

constexpr std::array<std::pair<TaskState, std::string_view>, 10> kTaskStates{{
    {TaskState::none, "none"},
    {TaskState::scheduled, "scheduled"},
    {TaskState::queued, "queued"},
    {TaskState::running, "running"},
    {TaskState::success, "success"},
    {TaskState::failed, "failed"},
    {TaskState::up_for_retry, "up_for_retry"},
    {TaskState::upstream_failed, "upstream_failed"},
    {TaskState::skipped, "skipped"},
    {TaskState::removed, "removed"},
}};

constexpr std::array<std::pair<RunState, std::string_view>, 6> kRunStates{{
    {RunState::queued, "queued"},
    {RunState::running, "running"},
    {RunState::success, "success"},
    {RunState::failed, "failed"},
    {RunState::cancelled, "cancelled"},
    {RunState::skipped, "skipped"},
}};

}  // namespace

std::string_view to_string(TaskState state) { return detail::name_of(kTaskStates, state); }

std::optional<TaskState> parse_task_state(std::string_view text) {
  return detail::value_of(kTaskStates, text);
}

bool is_terminal(TaskState state) {
  return state == TaskState::success || state == TaskState::failed ||
         state == TaskState::upstream_failed || state == TaskState::skipped ||
         state == TaskState::removed;
}

std::string_view to_string(RunState state) { return detail::name_of(kRunStates, state); }

std::optional<RunState> parse_run_state(std::string_view text) {
  return detail::value_of(kRunStates, text);
}

bool is_terminal(RunState state) {
  return state == RunState::success || state == RunState::failed || state == RunState::cancelled ||
         state == RunState::skipped;
}

}  // namespace podflow::engine
