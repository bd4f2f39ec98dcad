// The MLflow tracking client: experiments, runs, batched params/metrics/tags and run status over
// MLflow's REST API (/api/2.0/mlflow/), configured like MLflow's own Python client.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "podflow/engine/error.hpp"
#include "podflow/engine/json.hpp"

namespace podflow::mlflow {

struct Config {
  std::string tracking_uri;   // http(s)://host[:port][/prefix]
  std::string token;          // MLFLOW_TRACKING_TOKEN: Authorization: Bearer
  std::string username;       // MLFLOW_TRACKING_USERNAME/PASSWORD: Basic (wins over the token,
  std::string password;       // as in MLflow's client)
  bool insecure_tls = false;  // MLFLOW_TRACKING_INSECURE_TLS=true
  std::string ca_file;        // MLFLOW_TRACKING_SERVER_CERT_PATH
  std::chrono::milliseconds timeout{120000};  // per request (MLFLOW_HTTP_REQUEST_TIMEOUT)
  int max_retries = 7;                        // MLFLOW_HTTP_REQUEST_MAX_RETRIES
  std::chrono::milliseconds backoff{2000};    // first retry delay, doubled each time, capped
  std::chrono::milliseconds max_backoff{120000};
};

// From MLflow's environment variables; `tracking_uri` (a workflow argument) wins over
// MLFLOW_TRACKING_URI. An error names the variable to fix.
std::variant<Config, std::string> config_from_env(const std::string& tracking_uri = {});

struct MlflowError {
  engine::ErrorKind kind = engine::ErrorKind::client;
  unsigned http_status = 0;  // 0: no HTTP answer (network, timeout)
  std::string error_code;    // MLflow's error_code, or one derived from the status
  std::string message;
  std::optional<std::chrono::milliseconds> retry_after;
};

template <typename T>
using Result = std::variant<T, MlflowError>;

struct Done {};

struct Metric {
  std::string key;
  double value = 0;
  std::int64_t timestamp_ms = 0;
  std::int64_t step = 0;
};
using KeyValues = std::vector<std::pair<std::string, std::string>>;

// MLflow's per-request limits for runs/log-batch.
inline constexpr std::size_t kMaxMetricsPerBatch = 1000;
inline constexpr std::size_t kMaxParamsOrTagsPerBatch = 100;
inline constexpr std::size_t kMaxEntitiesPerBatch = 1000;
inline constexpr std::size_t kMaxBatchBytes = 900 * 1024;  // under the documented 1 MB
inline constexpr std::size_t kMaxParamValue = 6000;
inline constexpr std::size_t kMaxTagValue = 5000;  // experiment tags; run tags allow 8000

// `items` with every value cut to `limit` characters (as MLflow counts them); each cut is described
// in `warnings`.
KeyValues cut_values(const KeyValues& items, std::size_t limit, const char* what,
                     std::vector<std::string>& warnings);

// The runs/log-batch bodies for one run, each within every limit: params and tags first (100 of
// each), metrics filling the rest, as MLflow's Python client splits them. Over-long param and tag
// values are cut at a character boundary; each cut is described in `warnings`.
std::vector<Json> batch_bodies(const std::string& run_id, const std::vector<Metric>& metrics,
                               const KeyValues& params, const KeyValues& tags,
                               std::vector<std::string>& warnings);

// A double as MLflow's protobuf JSON takes it: NaN and infinities as "NaN", "Infinity",
// "-Infinity".
Json metric_value(double value);

using WarningSink = std::function<void(const std::string&)>;

class Client {
 public:
  explicit Client(Config config, WarningSink warn = {});

  // Returns the experiment id; creates the experiment when missing (losing a creation race to
  // another client is not an error). A deleted experiment is an error that says how to restore it.
  boost::asio::awaitable<Result<std::string>> get_or_create_experiment(std::string name) const;

  // The id of the newest active run in `experiment_id` carrying every tag in `tags`, if any.
  boost::asio::awaitable<Result<std::optional<std::string>>> find_run(std::string experiment_id,
                                                                      KeyValues tags) const;

  // Creates a run (status RUNNING, `start_time_ms`). With `idempotency_tags`, a run that already
  // carries them is returned instead, and after an ambiguous failure (5xx, timeout) the client
  // looks for one before creating again: a retry never leaves two runs.
  boost::asio::awaitable<Result<std::string>> create_run(std::string experiment_id,
                                                         std::string run_name,
                                                         std::int64_t start_time_ms, KeyValues tags,
                                                         KeyValues idempotency_tags) const;

  boost::asio::awaitable<Result<Done>> log_batch(std::string run_id, std::vector<Metric> metrics,
                                                 KeyValues params, KeyValues tags) const;

  // status: RUNNING, SCHEDULED, FINISHED, FAILED or KILLED.
  boost::asio::awaitable<Result<Done>> update_run(std::string run_id, std::string status,
                                                  std::optional<std::int64_t> end_time_ms) const;

  boost::asio::awaitable<Result<Json>> get_run(std::string run_id) const;
  boost::asio::awaitable<Result<std::vector<Metric>>> metric_history(std::string run_id,
                                                                     std::string key) const;

  // The UI address of a run.
  std::string run_url(const std::string& experiment_id, const std::string& run_id) const;

  // One call with the client's retries: 408, 429 (after Retry-After), 5xx and network errors.
  // `query` for GET, `body` for POST. Public for tests and for calls this class does not wrap.
  boost::asio::awaitable<Result<Json>> call(std::string method, std::string path, Json body,
                                            KeyValues query = {}) const;

  const Config& config() const { return config_; }

 private:
  boost::asio::awaitable<Result<Json>> call_once(const std::string& method, const std::string& path,
                                                 const Json& body, const KeyValues& query) const;
  Config config_;
  WarningSink warn_;
};

}  // namespace podflow::mlflow
