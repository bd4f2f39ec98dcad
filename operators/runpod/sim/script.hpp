// The simulator's script: GPU catalog, pod lifecycle timings, printed lines and injected faults.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "podflow/engine/json.hpp"

namespace podflow::runpod_sim {

struct GpuTypeSpec {
  std::string id;
  std::string name;
  std::string pool;
  int memory_gb = 24;
  double secure_price = 0.0;
  double community_price = 0.0;
  double secure_spot_price = 0.0;  // the minimum bid per GPU
  double community_spot_price = 0.0;
  int max_count = 8;
  bool capacity = true;  // false: every create answers with RunPod's capacity error
};

enum class OnExit { stop_pod, restart, keep_running };

struct LifecycleSpec {
  double provision_seconds = 1;  // REST status PROVISIONING this long after create
  double start_seconds = 2;      // runtime appears and the container starts this long after create
  double line_interval_seconds = 1;
  double run_seconds =
      0;  // container exits this long after it starts (0: right after the last line)
  double restart_delay_seconds = 1;
  OnExit on_exit = OnExit::stop_pod;
  std::optional<double> preempt_after_seconds;  // spot pods only, counted from create/resume
  std::int64_t preempt_times = -1;  // how often one pod is preempted; -1: after every (re)start
  std::vector<std::string> lines;
};

struct FaultSpec {
  std::string route;            // "POST /v2/pods", "GET /v2/pods/{id}", "POST /graphql", ...
  unsigned status = 0;          // 0: no status override (delay only)
  std::int64_t delay_ms = 0;    // real milliseconds before answering
  std::int64_t skip = 0;        // matching requests to let through first
  std::int64_t times = -1;      // how many matching requests to affect; -1: all
  bool after_handling = false;  // handle the request (create the pod), then answer `status`
};

struct Script {
  double time_scale = 1.0;  // simulated seconds per real second
  std::vector<GpuTypeSpec> gpu_types;
  LifecycleSpec lifecycle;
  std::int64_t rate_limit_every = 0;  // every Nth request answers 429; 0: never
  std::int64_t retry_after_seconds = 1;
  std::vector<FaultSpec> faults;
};

// Parses and checks a script JSON (null: all defaults). Returns the error text on failure.
std::optional<std::string> parse_script(const Json& json, Script& out);

}  // namespace podflow::runpod_sim
