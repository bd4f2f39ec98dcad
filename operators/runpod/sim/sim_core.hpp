// The simulator's request handling without sockets: routes, auth, faults, pods and the state
// report.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "graphql.hpp"
#include "podflow/engine/json.hpp"
#include "pods.hpp"
#include "script.hpp"

namespace podflow::runpod_sim {

struct IncomingRequest {
  std::string method;
  std::string target;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

struct LogStreamRequest {
  std::string pod_id;
  std::uint64_t after_seq = 0;
  std::optional<std::string> after_ts;  // Last-Event-ID given as a bare timestamp
  std::optional<std::string> since;
  std::string source;  // empty: both sources
};

struct LogBatch {
  std::string text;  // SSE events, possibly empty
  bool finished = false;
};

struct Outcome {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::int64_t delay_ms = 0;
  std::optional<LogStreamRequest> stream_logs;
};

class Core {
 public:
  explicit Core(std::string api_key) : api_key_(std::move(api_key)) {}
  void configure(Script script);
  Outcome handle(const IncomingRequest& request);
  LogBatch next_log_events(LogStreamRequest& request);
  Json state();  // advances every pod to now before reporting

 private:
  Json state_locked();
  using Lock = std::lock_guard<std::mutex>;
  struct FaultCounter {
    std::int64_t matched = 0;
    std::int64_t applied = 0;
  };

  double now() const;  // simulated seconds since configure()
  std::string iso(double sim_seconds) const;
  std::string new_id();
  const GpuTypeSpec* gpu(const std::string& id) const;

  // Lifecycle.
  void advance(Pod& pod, double until);
  void stop_pod(Pod& pod, double at, const std::string& reason);
  void start_run(Pod& pod, double at);
  void add_log(Pod& pod, double at, std::string source, std::string line);
  Pod* find_live(const std::string& id);
  std::string rest_status(const Pod& pod, double t) const;
  bool has_runtime(const Pod& pod, double t) const;
  double cost_per_hr(const Pod& pod) const;

  // REST v2.
  Outcome route_rest(const IncomingRequest& request, const std::string& path,
                     const std::map<std::string, std::string>& query, std::string& route);
  Outcome create_pod_rest(const std::string& body);
  Outcome pod_action(const std::string& id, const std::string& body);
  Outcome list_gpus(const std::map<std::string, std::string>& query);
  Json rest_pod(const Pod& pod, double t) const;
  Json rest_gpu(const GpuTypeSpec& gpu, bool with_availability) const;

  // GraphQL.
  Outcome handle_graphql(const IncomingRequest& request, std::string& route);
  Json graphql_pod(const Pod& pod, double t) const;
  Json graphql_gpu(const GpuTypeSpec& gpu) const;
  Json execute_root(const graphql::Field& field, const Json& input, const std::string& kind,
                    Json& errors);

  std::string api_key_;
  Script script_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::system_clock::time_point wall_start_;
  mutable std::mutex mutex_;
  std::vector<Pod> pods_;
  std::map<std::string, std::int64_t> route_counts_;
  Json requests_ = Json::array();
  std::int64_t request_count_ = 0;
  std::int64_t rate_limited_ = 0;  // requests answered 429 by the script's rate_limit
  std::int64_t requests_dropped_ = 0;
  std::vector<FaultCounter> fault_counters_;
  std::mt19937_64 random_{std::random_device{}()};
};

// RFC 9457 problem body with RunPod's key order (detail, errors, status, title).
Outcome problem(unsigned status, const std::string& detail, const Json& errors = nullptr);

}  // namespace podflow::runpod_sim
