// MLflow in podflow: the durable outbox that delivers MLflow records, and the mlflow.log operator.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "podflow/engine/operator.hpp"
#include "podflow/engine/store.hpp"
#include "podflow/operators/mlflow_client.hpp"

namespace podflow::mlflow {

// Outbox entries are resources of this kind, named "<run>/<task>": recorded durably before MLflow
// hears of them, updated after every call that MLflow accepted, and marked delivered at the end.
inline constexpr std::string_view kOutboxKind = "mlflow.outbox";

// One MLflow run's worth of records: what mlflow.log sends.
struct Delivery {
  std::string tracking_uri;  // empty: MLFLOW_TRACKING_URI at delivery time
  std::string experiment;
  std::string run_name;
  std::string run_id;  // add to this existing MLflow run instead of creating one
  KeyValues identity;  // tags that make run creation idempotent
  KeyValues params;
  KeyValues tags;
  std::vector<Metric> metrics;
  std::string status;  // FINISHED, FAILED, KILLED; RUNNING leaves the run open
  std::int64_t start_time_ms = 0;
  std::int64_t end_time_ms = 0;
};

Json to_json(const Delivery& delivery);
Delivery delivery_from_json(const Json& json);

// What became of an entry.
struct DeliveryState {
  bool delivered = false;
  bool rejected = false;  // MLflow refused it for good (4xx); never retried
  std::string experiment_id;
  std::string mlflow_run_id;
  std::string run_url;
  std::string last_error;
};
DeliveryState delivery_state(const engine::ResourceRecord& entry);

// Delivers outbox entries in order, each at most once per accepted call. One per process; attach a
// store before use. Thread-safe.
class Outbox : public std::enable_shared_from_this<Outbox> {
 public:
  Outbox() = default;

  // `lock_path`: where processes sharing the store lock while delivering (one file per MLflow
  // server, named after it).
  void attach(engine::RunStore& store, boost::asio::any_io_executor executor,
              std::filesystem::path lock_path = {});
  // Forgets the store and executor; call after the executor's threads were joined.
  void detach();
  // Starts delivering every pending entry in the background, oldest first, retrying with backoff
  // (first retry after `retry_every`, doubling up to 5 minutes) until MLflow accepts it.
  void start(std::chrono::milliseconds retry_every = std::chrono::seconds(5));
  void stop();

  // Delivers one entry now, unless an older entry for the same server is still pending (then the
  // background loop keeps the order). Returns its state afterwards.
  boost::asio::awaitable<DeliveryState> deliver(std::string entry_name,
                                                std::chrono::milliseconds deadline);

  // Entries of `run_id` (all runs when empty) not yet delivered or rejected.
  std::size_t pending(const std::string& run_id = {}) const;
  // Blocks (a caller's thread, not the executor's) until no entry of `run_id` is pending or the
  // timeout passed; returns how many are still pending.
  std::size_t wait_for_run(const std::string& run_id, std::chrono::milliseconds timeout) const;

 private:
  boost::asio::awaitable<void> background(std::chrono::milliseconds retry_every);
  // Takes the entry (in this process and across processes), reads it again and delivers it if it
  // is still pending; otherwise returns its state.
  boost::asio::awaitable<DeliveryState> claim_and_deliver(std::string entry_name,
                                                          std::string server,
                                                          std::chrono::milliseconds deadline);
  std::optional<engine::ResourceRecord> find_entry(const std::string& name) const;
  // One delivery attempt of one entry: every remaining step, saving progress after each.
  boost::asio::awaitable<DeliveryState> deliver_entry(engine::ResourceRecord entry,
                                                      std::chrono::milliseconds deadline);
  std::vector<engine::ResourceRecord> pending_entries() const;

  engine::RunStore* store_ = nullptr;
  std::filesystem::path lock_path_;
  boost::asio::any_io_executor executor_;
  mutable std::mutex mutex_;
  std::set<std::string> in_flight_;  // entry names being delivered right now
  bool stopped_ = false;
  std::shared_ptr<boost::asio::steady_timer>
      wake_;  // the background loop's timer; stop() cancels it
};

// mlflow.log, delivering through `outbox` (which app/ attaches to the run store).
void register_mlflow_operators(engine::OperatorRegistry& registry, std::shared_ptr<Outbox> outbox);

}  // namespace podflow::mlflow
