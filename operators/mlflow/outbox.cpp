// The MLflow outbox: records are stored before MLflow hears of them and delivered in order, each
// accepted call recorded, so nothing is lost while MLflow is down and nothing is sent twice.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <filesystem>
#include <thread>

#include "podflow/engine/digest.hpp"
#include "podflow/operators/mlflow.hpp"

namespace podflow::mlflow {
namespace {

namespace asio = boost::asio;
using engine::ErrorKind;
using engine::ResourceRecord;

Json key_values(const KeyValues& items) {
  Json out = Json::array();
  for (const auto& [key, value] : items) out.push_back(Json::array({key, value}));
  return out;
}

KeyValues key_values_from(const Json& json) {
  KeyValues out;
  for (const auto& item : json) out.emplace_back(item.at(0), item.at(1));
  return out;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Transient failures are retried this many times (about 8 hours with the background's backoff)
// before the entry is rejected, so one entry that can never succeed does not block the ones after
// it forever.
constexpr int kMaxAttempts = 100;

bool transient(const MlflowError& error) {
  return error.kind == ErrorKind::network || error.kind == ErrorKind::server ||
         error.kind == ErrorKind::timeout || error.kind == ErrorKind::rate_limited ||
         error.kind == ErrorKind::auth || error.kind == ErrorKind::cancelled;
}

// The MLflow server an entry is bound for (fixed when it was written).
std::string server_of(const ResourceRecord& entry) {
  if (!entry.detail.is_object()) return {};
  return entry.detail.value("delivery", Json::object()).value("tracking_uri", std::string());
}

}  // namespace

Json to_json(const Delivery& d) {
  Json metrics = Json::array();
  for (const auto& m : d.metrics) {
    metrics.push_back(Json::array({m.key, metric_value(m.value), m.timestamp_ms, m.step}));
  }
  return Json{{"tracking_uri", d.tracking_uri},
              {"experiment", d.experiment},
              {"run_name", d.run_name},
              {"run_id", d.run_id},
              {"identity", key_values(d.identity)},
              {"params", key_values(d.params)},
              {"tags", key_values(d.tags)},
              {"metrics", metrics},
              {"status", d.status},
              {"start_time_ms", d.start_time_ms},
              {"end_time_ms", d.end_time_ms}};
}

Delivery delivery_from_json(const Json& json) {
  Delivery d;
  d.tracking_uri = json.value("tracking_uri", std::string());
  d.experiment = json.value("experiment", std::string());
  d.run_name = json.value("run_name", std::string());
  d.run_id = json.value("run_id", std::string());
  d.identity = key_values_from(json.value("identity", Json::array()));
  d.params = key_values_from(json.value("params", Json::array()));
  d.tags = key_values_from(json.value("tags", Json::array()));
  for (const auto& m : json.value("metrics", Json::array())) {
    Metric metric;
    metric.key = m.at(0);
    const Json& value = m.at(1);
    if (value.is_number()) {
      metric.value = value.get<double>();
    } else if (value == "NaN") {
      metric.value = std::nan("");
    } else {
      metric.value = value == "Infinity" ? HUGE_VAL : -HUGE_VAL;
    }
    metric.timestamp_ms = m.at(2);
    metric.step = m.at(3);
    d.metrics.push_back(std::move(metric));
  }
  d.status = json.value("status", std::string("FINISHED"));
  d.start_time_ms = json.value("start_time_ms", std::int64_t{0});
  d.end_time_ms = json.value("end_time_ms", std::int64_t{0});
  return d;
}

DeliveryState delivery_state(const ResourceRecord& entry) {
  DeliveryState state;
  const Json detail = entry.detail.is_object() ? entry.detail : Json::object();
  state.delivered = entry.state == "delivered";
  state.rejected = entry.state == "rejected";
  state.experiment_id = detail.value("experiment_id", std::string());
  state.mlflow_run_id = detail.value("mlflow_run_id", std::string());
  state.run_url = detail.value("run_url", std::string());
  state.last_error = detail.value("last_error", std::string());
  return state;
}

void Outbox::attach(engine::RunStore& store, asio::any_io_executor executor,
                    std::filesystem::path lock_path) {
  std::lock_guard lock(mutex_);
  store_ = &store;
  lock_path_ = std::move(lock_path);
  // A strand: async_commit's wake-up timer must not be touched from two threads at once.
  executor_ = asio::make_strand(std::move(executor));
}

void Outbox::detach() {
  std::lock_guard lock(mutex_);
  wake_.reset();
  executor_ = {};
  store_ = nullptr;
}

std::vector<ResourceRecord> Outbox::pending_entries() const {
  engine::ResourceFilter filter;
  filter.kind = std::string(kOutboxKind);
  std::vector<ResourceRecord> out;
  for (auto& entry : store_->list_resources(filter)) {
    if (entry.state == "pending") out.push_back(std::move(entry));
  }
  return out;  // oldest first
}

std::optional<ResourceRecord> Outbox::find_entry(const std::string& name) const {
  engine::ResourceFilter filter;
  filter.kind = std::string(kOutboxKind);
  for (auto& entry : store_->list_resources(filter)) {
    if (entry.name == name) return std::move(entry);
  }
  return std::nullopt;
}

std::size_t Outbox::pending(const std::string& run_id) const {
  if (store_ == nullptr) return 0;
  std::size_t count = 0;
  for (const auto& entry : pending_entries()) {
    if (run_id.empty() || entry.run_id == run_id) ++count;
  }
  return count;
}

std::size_t Outbox::wait_for_run(const std::string& run_id,
                                 std::chrono::milliseconds timeout) const {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const std::size_t left = pending(run_id);
    if (left == 0 || std::chrono::steady_clock::now() >= until) return left;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void Outbox::start(std::chrono::milliseconds retry_every) {
  {
    std::lock_guard lock(mutex_);
    stopped_ = false;
    wake_ = std::make_shared<asio::steady_timer>(executor_);
  }
  asio::co_spawn(executor_, background(retry_every), [](const std::exception_ptr& error) {
    if (error) std::rethrow_exception(error);  // a bug: it must not pass silently
  });
}

void Outbox::stop() {
  std::shared_ptr<asio::steady_timer> timer;
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    timer = std::move(wake_);
  }
  if (timer) asio::post(timer->get_executor(), [timer] { timer->cancel(); });
}

asio::awaitable<void> Outbox::background(std::chrono::milliseconds retry_every) {
  std::shared_ptr<asio::steady_timer> timer;
  {
    std::lock_guard lock(mutex_);
    timer = wake_;
  }
  auto pause = retry_every;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopped_) co_return;
    }
    bool failed = false;
    std::set<std::string> blocked;  // servers with an older entry still pending: keep the order
    for (auto& entry : pending_entries()) {
      const std::string server = server_of(entry);
      if (blocked.contains(server)) continue;
      {
        std::lock_guard lock(mutex_);
        if (stopped_) co_return;
      }
      const DeliveryState state =
          co_await claim_and_deliver(entry.name, server, std::chrono::minutes(2));
      if (!state.delivered && !state.rejected) {
        failed = true;
        blocked.insert(server);
      }
    }
    // After a failure wait longer each time (MLflow is down); otherwise look for new entries at
    // the base interval.
    pause = failed ? std::min<std::chrono::milliseconds>(pause * 2, std::chrono::minutes(5))
                   : retry_every;
    {
      std::lock_guard lock(mutex_);
      if (stopped_) co_return;  // a stop() during the deliveries cancelled no wait
    }
    timer->expires_after(pause);
    co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<DeliveryState> Outbox::deliver(std::string entry_name,
                                               std::chrono::milliseconds deadline) {
  auto entries = pending_entries();
  auto self = std::find_if(entries.begin(), entries.end(),
                           [&](const ResourceRecord& e) { return e.name == entry_name; });
  if (self == entries.end()) {
    // Delivered or rejected already (a rerun of a task that finished its delivery).
    const auto entry = find_entry(entry_name);
    co_return entry ? delivery_state(*entry) : DeliveryState{};
  }
  const std::string server = server_of(*self);
  for (auto it = entries.begin(); it != self; ++it) {
    if (server_of(*it) == server) {
      DeliveryState state = delivery_state(*self);
      state.last_error = "an older MLflow record for the same server is still pending";
      co_return state;
    }
  }
  co_return co_await claim_and_deliver(entry_name, server, deadline);
}

namespace {

// This installation's delivery lock for one MLflow server: one process delivers to it at a time,
// so two `podflow run`s sharing PODFLOW_HOME never send one entry twice. Released when the object
// goes away.
class DeliveryLock {
 public:
  explicit DeliveryLock(const std::filesystem::path& path) {
    if (path.empty()) {
      held_ = true;  // no home to share: this process is alone
      return;
    }
    fd_ = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    held_ = fd_ >= 0 && ::flock(fd_, LOCK_EX | LOCK_NB) == 0;
  }
  DeliveryLock(const DeliveryLock&) = delete;
  DeliveryLock& operator=(const DeliveryLock&) = delete;
  ~DeliveryLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock
  }
  bool held() const { return held_; }

 private:
  int fd_ = -1;
  bool held_ = false;
};

}  // namespace

asio::awaitable<DeliveryState> Outbox::claim_and_deliver(std::string entry_name, std::string server,
                                                         std::chrono::milliseconds deadline) {
  {
    std::lock_guard lock(mutex_);
    if (in_flight_.contains(entry_name)) {
      DeliveryState busy;
      busy.last_error = "being delivered by this process";
      co_return busy;
    }
    in_flight_.insert(entry_name);
  }
  // One lock per MLflow server: a server that is down never delays deliveries to another one.
  const std::filesystem::path lock_path =
      lock_path_.empty() ? std::filesystem::path()
                         : std::filesystem::path(lock_path_.string() + "." +
                                                 engine::sha256_hex(server).substr(0, 16));
  DeliveryState state;
  {
    DeliveryLock lock(lock_path);
    // Read under the lock: another delivery may have moved it on since it was listed.
    std::optional<ResourceRecord> fresh = find_entry(entry_name);
    if (!lock.held()) {
      state = fresh ? delivery_state(*fresh) : DeliveryState{};
      state.last_error = "another podflow process is delivering MLflow records";
    } else if (fresh && fresh->state == "pending") {
      std::string broken;
      std::optional<DeliveryState> delivered;
      try {
        delivered = co_await deliver_entry(*fresh, deadline);
      } catch (const std::exception& error) {
        broken = error.what();
      }
      if (delivered) {
        state = *delivered;
      } else {
        // A stored entry that cannot be read would fail every later process too: set it aside.
        fresh->state = "rejected";
        fresh->detail["last_error"] = "the outbox entry cannot be read: " + broken;
        fresh->updated_at = now_ms();
        engine::StoreBatch batch;
        batch.resources.push_back(*fresh);
        co_await engine::async_commit(*store_, std::move(batch));
        state = delivery_state(*fresh);
      }
    } else if (fresh) {
      state = delivery_state(*fresh);
    }
  }
  {
    std::lock_guard lock(mutex_);
    in_flight_.erase(entry_name);
  }
  co_return state;
}

asio::awaitable<DeliveryState> Outbox::deliver_entry(ResourceRecord entry,
                                                     std::chrono::milliseconds deadline) {
  if (!entry.detail.is_object()) entry.detail = Json::object();
  Json& detail = entry.detail;
  const Delivery delivery = delivery_from_json(detail.value("delivery", Json::object()));
  // One budget for the whole delivery: the task that waits on it must not hold up what follows
  // (the pod's termination) for long. What is left over stays pending for the background.
  const auto until = std::chrono::steady_clock::now() + deadline;
  auto time_left = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(until -
                                                                 std::chrono::steady_clock::now());
  };
  // Progress is only real once stored: a failed save ends this attempt.
  auto save = [&]() -> asio::awaitable<bool> {
    entry.updated_at = now_ms();
    engine::StoreBatch batch;
    batch.resources.push_back(entry);
    co_return !(co_await engine::async_commit(*store_, std::move(batch)));
  };
  std::optional<Client> client;
  // A failed step: transient errors leave the entry pending for the next attempt (until
  // kMaxAttempts); anything else is MLflow refusing the records for good.
  auto fail = [&](const MlflowError& error) -> asio::awaitable<DeliveryState> {
    const int attempts = detail.value("attempts", 0) + 1;
    detail["attempts"] = attempts;
    detail["last_error"] = error.message;
    if (!transient(error) || attempts >= kMaxAttempts) {
      entry.state = "rejected";
      if (transient(error)) {
        detail["last_error"] =
            "gave up after " + std::to_string(attempts) + " attempts; the last: " + error.message;
      }
      // A run podflow created and left RUNNING would look alive forever: close it as failed.
      // A run the workflow named (run_id) is the user's, and is left as it is.
      const std::string made = detail.value("mlflow_run_id", std::string());
      if (client && !made.empty() && delivery.run_id.empty()) {
        auto closed = co_await client->update_run(made, "FAILED", now_ms());
        (void)closed;  // best effort: the rejection is what the task reports
      }
    }
    co_await save();
    co_return delivery_state(entry);
  };
  auto out_of_time = [&]() -> asio::awaitable<DeliveryState> {
    MlflowError error;
    error.kind = ErrorKind::timeout;
    error.error_code = "DEADLINE";
    error.message =
        "MLflow did not take every record within " + std::to_string(deadline.count() / 1000) + " s";
    co_return co_await fail(error);
  };

  auto config = config_from_env(delivery.tracking_uri);
  if (auto* problem = std::get_if<std::string>(&config)) {
    MlflowError error;
    error.kind = ErrorKind::auth;  // transient: the environment may be fixed before the next try
    error.error_code = "CONFIG";
    error.message = *problem;
    co_return co_await fail(error);
  }
  Config& settings = std::get<Config>(config);
  settings.timeout = std::min(settings.timeout, deadline);
  settings.max_retries = 1;  // the outbox retries whole deliveries itself
  settings.backoff = std::chrono::milliseconds(500);
  settings.max_backoff = std::chrono::seconds(5);
  client.emplace(settings);

  std::string experiment_id = detail.value("experiment_id", std::string());
  if (experiment_id.empty()) {
    auto got = co_await client->get_or_create_experiment(delivery.experiment);
    if (auto* error = std::get_if<MlflowError>(&got)) co_return co_await fail(*error);
    experiment_id = std::get<std::string>(got);
    detail["experiment_id"] = experiment_id;
    if (!co_await save()) co_return delivery_state(entry);
  }
  std::string run_id = detail.value("mlflow_run_id", delivery.run_id);
  if (run_id.empty()) {
    if (time_left().count() <= 0) co_return co_await out_of_time();
    auto created = co_await client->create_run(
        experiment_id, delivery.run_name, delivery.start_time_ms, delivery.tags, delivery.identity);
    if (auto* error = std::get_if<MlflowError>(&created)) co_return co_await fail(*error);
    run_id = std::get<std::string>(created);
  }
  if (detail.value("mlflow_run_id", std::string()) != run_id) {
    detail["mlflow_run_id"] = run_id;
    detail["run_url"] = client->run_url(experiment_id, run_id);
    if (!co_await save()) co_return delivery_state(entry);
  }

  // The tags of a run that already existed (run_id given) go in the batches.
  std::vector<std::string> warnings;
  const auto bodies = batch_bodies(run_id, delivery.metrics, delivery.params,
                                   delivery.run_id.empty() ? KeyValues{} : delivery.tags, warnings);
  for (std::size_t done = detail.value("batches_done", std::size_t{0}); done < bodies.size();
       ++done) {
    if (time_left().count() <= 0) co_return co_await out_of_time();
    auto sent = co_await client->call("POST", "runs/log-batch", bodies[done]);
    if (auto* error = std::get_if<MlflowError>(&sent)) co_return co_await fail(*error);
    detail["batches_done"] = done + 1;
    if (!co_await save()) co_return delivery_state(entry);
  }
  if (delivery.status != "RUNNING") {
    if (time_left().count() <= 0) co_return co_await out_of_time();
    auto updated = co_await client->update_run(run_id, delivery.status, delivery.end_time_ms);
    if (auto* error = std::get_if<MlflowError>(&updated)) co_return co_await fail(*error);
  }
  // Delivered: keep what the outputs and views need, not the records themselves.
  detail.erase("delivery");
  detail["server"] = delivery.tracking_uri;
  detail.erase("last_error");
  detail["metric_points"] = delivery.metrics.size();
  entry.state = "delivered";
  co_await save();
  co_return delivery_state(entry);
}

}  // namespace podflow::mlflow
