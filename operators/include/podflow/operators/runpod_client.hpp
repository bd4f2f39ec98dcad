// The RunPod API client: REST v2 for on-demand pods, status, actions, logs and the GPU catalog;
// GraphQL for spot pods, bid resume and the pod facts REST lacks. Callers never see which API
// served.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "podflow/engine/error.hpp"
#include "podflow/engine/json.hpp"

namespace podflow::runpod {

// An expected failure of a RunPod call. The message names the call, the HTTP status and RunPod's
// own text; it never contains the API key.
struct RunPodError {
  engine::ErrorKind kind = engine::ErrorKind::client;
  int http_status = 0;  // 0 when no HTTP answer was read (network, timeout) or GraphQL said it
  std::string message;
  std::optional<std::chrono::milliseconds> retry_after;
  bool not_found = false;  // REST 404 or GraphQL `pod: null` (kind is client)
};

template <typename T>
using Result = std::variant<T, RunPodError>;

template <typename T>
bool ok(const Result<T>& result) {
  return result.index() == 0;
}

struct Config {
  std::string rest_url = "https://api.runpod.io";             // server; paths start with /v2/
  std::string graphql_url = "https://api.runpod.io/graphql";  // empty: GraphQL is off
  std::string api_key;
  std::chrono::milliseconds timeout{30000};  // per call
};

// Reads RUNPOD_REST_URL, RUNPOD_GRAPHQL_URL (`off` disables GraphQL), RUNPOD_API_KEY or
// RUNPOD_API_KEY_FILE (whitespace trimmed). Returns an error message when no key can be read.
std::variant<Config, std::string> config_from_env();

// What a pod should be. Field names follow the workflow format; the client maps them to each API.
struct PodSpec {
  std::string name;
  std::string image;  // or template_id (or both: the template with another image)
  std::string template_id;
  std::string gpu_type_id;  // "NVIDIA RTX A4000"
  int gpu_count = 1;
  std::string cloud_type = "SECURE";  // SECURE | COMMUNITY (ALL: GraphQL only; REST uses SECURE)
  std::vector<std::string> data_center_ids;
  std::map<std::string, std::string> env;
  std::optional<int> container_disk_gb;
  std::optional<int> volume_gb;  // persistent volume; REST requires at least 10
  std::string volume_mount_path = "/workspace";
  std::string network_volume_id;
  std::vector<std::string> ports;  // "8888/http", "22/tcp"
  std::string args;                // docker start arguments
  std::vector<std::string> allowed_cuda_versions;
  bool start_ssh = false;
  std::string terminate_after;  // ISO-8601 UTC; GraphQL creates only (spot)
};

struct Pod {
  std::string id;
  std::string name;
  std::string status;  // REST v2: PROVISIONING STARTING RUNNING EXITED ERROR TERMINATED
  std::optional<double> cost_per_hr;
  std::string image;
  std::string gpu_type_id;
  int gpu_count = 0;
  std::string data_center_id;
  bool has_runtime = false;  // runtime is non-null: the container runs
  std::optional<long long> uptime_seconds;
  std::string api;  // "rest" or "graphql": which API answered
};

// Facts only GraphQL has. Empty, with `warning` set, when GraphQL is off or the pod is gone.
struct PodFacts {
  std::string machine_id;
  std::string pod_type;  // INTERRUPTABLE | RESERVED | BID | BACKGROUND
  std::string last_status_change;
  std::optional<double> cost_per_hr;
  std::string warning;
};

struct TerminateResult {
  bool already_gone = false;
};

struct GpuType {
  std::string id;
  std::string name;
  int memory_gb = 0;
  std::optional<double> secure_price;
  std::optional<double> community_price;
  std::string availability;  // HIGH MEDIUM LOW NONE, or empty when not asked
};

// One log line from GET /v2/pods/{id}/logs.
struct LogLine {
  std::string event_id;  // resume after it with Last-Event-ID
  std::string source;    // container | system
  std::string text;
  std::string ts;
};

struct LogStreamOptions {
  std::string last_event_id;  // resume after this event (empty: from the tail)
  std::optional<int> tail;
  std::chrono::milliseconds read_timeout{60000};  // silence longer than this fails the stream
};

// How a log stream ended without an error.
struct LogStreamEnd {
  std::string last_event_id;  // pass to the next stream_logs to resume
  bool stopped_by_callback = false;
};

// Incremental Server-Sent Events parser (WHATWG HTML "server-sent events" processing model).
class SseParser {
 public:
  struct Event {
    std::string id;  // the last event id in effect when the event was dispatched
    std::string type;
    std::string data;
  };
  // Feeds the next bytes; calls `on_event` for each complete event. Returns false as soon as
  // `on_event` does.
  bool feed(std::string_view bytes, const std::function<bool(const Event&)>& on_event);
  const std::string& last_event_id() const { return last_event_id_; }
  std::optional<std::chrono::milliseconds> retry() const { return retry_; }

 private:
  bool process_line(std::string_view line, const std::function<bool(const Event&)>& on_event);
  std::string pending_;   // bytes after the last line end
  bool skip_lf_ = false;  // the previous chunk ended with CR: a leading LF belongs to it
  bool started_ = false;
  std::string last_event_id_;
  std::string type_;
  std::string data_;
  bool has_data_ = false;
  std::optional<std::chrono::milliseconds> retry_;
};

// Receives warnings (GraphQL off, facts unavailable). Never gets the key.
using WarningSink = std::function<void(std::string_view)>;

class Client {
 public:
  explicit Client(Config config, WarningSink warn = {});

  const Config& config() const { return config_; }
  bool graphql_enabled() const { return !config_.graphql_url.empty(); }

  boost::asio::awaitable<Result<Pod>> create_pod(PodSpec spec) const;
  boost::asio::awaitable<Result<Pod>> create_spot_pod(PodSpec spec, double bid_per_gpu) const;
  boost::asio::awaitable<Result<Pod>> get_pod(std::string pod_id) const;
  // Every pod of the account; with `name`, only pods with exactly that name.
  boost::asio::awaitable<Result<std::vector<Pod>>> list_pods(
      std::optional<std::string> name = std::nullopt) const;
  // For look-up-before-create: the pod with exactly that name, or nullopt.
  boost::asio::awaitable<Result<std::optional<Pod>>> find_pod_by_name(std::string name) const;
  boost::asio::awaitable<Result<Pod>> stop_pod(std::string pod_id) const;
  boost::asio::awaitable<Result<Pod>> start_pod(std::string pod_id) const;
  // A pod that is already gone is a success with already_gone set.
  boost::asio::awaitable<Result<TerminateResult>> terminate_pod(std::string pod_id) const;
  boost::asio::awaitable<Result<Pod>> bid_resume(std::string pod_id, double bid_per_gpu,
                                                 int gpu_count) const;
  boost::asio::awaitable<Result<PodFacts>> pod_facts(std::string pod_id) const;
  boost::asio::awaitable<Result<std::vector<GpuType>>> gpu_types() const;
  // Streams the pod's log lines to `on_line` (return false to stop) until the server ends the
  // stream, the callback stops it, a read exceeds options.read_timeout, or the caller cancels.
  boost::asio::awaitable<Result<LogStreamEnd>> stream_logs(
      std::string pod_id, LogStreamOptions options,
      std::function<bool(const LogLine&)> on_line) const;

 private:
  void warn(std::string_view text) const;
  Config config_;
  WarningSink warn_;
};

// Shares pod status polling between tasks: one GET /v2/pods per interval serves every subscriber;
// a pod missing from the list is fetched on its own. Runs on the executor it was made with.
class PodPoller : public std::enable_shared_from_this<PodPoller> {
 public:
  using Callback = std::function<void(const Result<Pod>&)>;

  // Unsubscribes when destroyed.
  class Subscription {
   public:
    Subscription() = default;
    Subscription(std::weak_ptr<PodPoller> poller, std::uint64_t id);
    Subscription(Subscription&& other) noexcept;
    Subscription& operator=(Subscription&& other) noexcept;
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;
    ~Subscription();
    void reset();

   private:
    std::weak_ptr<PodPoller> poller_;
    std::uint64_t id_ = 0;
  };

  // The poller for this client's API key and REST URL on `executor`, made on first use.
  static std::shared_ptr<PodPoller> shared(boost::asio::any_io_executor executor,
                                           std::shared_ptr<const Client> client);
  PodPoller(boost::asio::any_io_executor executor, std::shared_ptr<const Client> client);
  ~PodPoller();

  // Calls `callback` with the pod's status about every `interval`, from the poller's executor.
  Subscription subscribe(std::string pod_id, std::chrono::milliseconds interval, Callback callback);
  std::size_t list_calls() const;

  struct State;  // defined in poller.cpp

 private:
  void unsubscribe(std::uint64_t id);
  std::shared_ptr<State> state_;
};

}  // namespace podflow::runpod
