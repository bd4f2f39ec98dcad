// Names of the pods podflow creates: they mark the installation, run, task and try, so a lost
// create answer can be looked up and the reaper can tell this installation's pods from anyone
// else's.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace podflow::runpod {

// RunPod documents no limit; 64 keeps names readable in its console and safe for any later limit.
inline constexpr std::size_t kMaxPodNameLength = 64;

// `podflow-<install>-<run>-<task>-<try>`, lower-cased, with characters outside [a-z0-9-] turned
// into
// '-'. A longer name keeps its start and ends with a hash of the whole name, so it stays unique and
// is the same every time it is computed.
std::string pod_name(std::string_view install_id, std::string_view run_id, std::string_view task_id,
                     int try_number);

// The prefix every pod of this installation starts with (`podflow-<install>-`).
std::string pod_name_prefix(std::string_view install_id);

}  // namespace podflow::runpod
