// The simulated pods and their lifecycle, advanced lazily to the simulated time of each request.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "podflow/engine/json.hpp"
#include "script.hpp"

namespace podflow::runpod_sim {

struct LogEntry {
  std::uint64_t seq = 0;
  double at = 0;       // simulated seconds since the simulator started
  std::string source;  // "container" or "system"
  std::string line;
};

struct Pod {
  std::string id;
  std::string name;
  std::string image;
  std::string args;
  std::string template_id;
  std::string cloud = "SECURE";
  std::string data_center = "SIM-LOCAL-1";
  std::string machine_id;
  Json env = Json::object();
  Json ports = Json::array();
  Json mounts = Json::object();
  int disk = 50;
  std::string gpu_id;
  int gpu_count = 1;
  std::string api;  // "rest" or "graphql": which API created it
  bool spot = false;
  double bid_per_gpu = 0;
  double price_per_gpu = 0;
  double min_bid_per_gpu = 0;

  double created_at = 0;
  std::optional<double> terminated_at;
  bool running = true;                         // desired status RUNNING (else EXITED)
  double run_started_at = 0;                   // create, start or resume
  std::optional<double> container_started_at;  // in the current run
  std::optional<double> cycle_started_at;      // the current container (restarts start new ones)
  std::optional<double> stopped_at;
  std::size_t next_line = 0;
  int container_starts = 0;
  int preemptions = 0;
  std::string last_status_change;
  std::vector<LogEntry> logs;
  std::uint64_t next_seq = 1;
};

}  // namespace podflow::runpod_sim
