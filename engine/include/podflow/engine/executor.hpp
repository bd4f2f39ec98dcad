// The event-driven DAG executor: runs workflows on an Asio thread pool with durable state
// transitions.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "podflow/engine/clock.hpp"
#include "podflow/engine/error.hpp"
#include "podflow/engine/secrets.hpp"
#include "podflow/engine/states.hpp"
#include "podflow/engine/store.hpp"
#include "podflow/engine/workflow.hpp"

namespace podflow::engine {

// Delay before the try after `failed_try` (1-based): retry_delay * retry_backoff^(failed_try-1),
// capped at max_retry_delay, then full jitter (uniform in [0, capped]) with `random01` in [0, 1).
Millis compute_retry_delay(const RetryPolicy& policy, int failed_try, double random01);

// What the executor tells whoever drives a run (the CLI prints it; the web server will stream it).
// Called on the run's strand, one call at a time per run.
class RunObserver {
 public:
  virtual ~RunObserver() = default;
  virtual void on_task_state(const RunRecord& /*run*/, const TaskRecord& /*task*/) {}
  virtual void on_log_line(const std::string& /*run_id*/, const std::string& /*task_id*/,
                           int /*try_number*/, std::string_view /*line*/) {}
  virtual void on_run_state(const RunRecord& /*run*/) {}
};

struct ExecutorOptions {
  std::filesystem::path home;  // logs in home/logs, scratch files in home/scratch
  std::string owner;           // lease owner ("host:pid:start"); default made from this process
  Millis lease_duration = std::chrono::seconds(30);
  Millis lease_renew_every = std::chrono::seconds(10);
  // How long an operator may take to stop after a cancel or timeout before it is abandoned.
  Millis cancel_grace = std::chrono::seconds(30);
  std::function<double()> random01;            // jitter source; default: a seeded PRNG
  std::shared_ptr<const SecretMasker> masker;  // default: from the environment
  std::string install_id;                      // default: load_or_create_install_id(home)
};

// The installation's id, kept in home/install-id: 8 lowercase letters and digits, made on first
// use.
std::string load_or_create_install_id(const std::filesystem::path& home);

struct RunRequest {
  std::shared_ptr<const Workflow> workflow;
  Json params = Json::object();  // validated, defaults filled (see resolve_params)
  std::string run_id;            // empty: generated
  std::string logical_date;      // empty: now
};

// Checks `--param` style overrides against the workflow's params and fills defaults. Errors name
// the param and the fix; all are reported.
std::variant<Json, std::vector<std::string>> resolve_params(
    const Workflow& workflow, const std::vector<std::pair<std::string, std::string>>& overrides);

class RunHandle {
 public:
  virtual ~RunHandle() = default;
  virtual const std::string& id() const = 0;
  virtual void cancel() = 0;  // thread-safe; cleanup tasks (all_done, always) still run
  // Blocks until the run reaches a terminal state (its final record committed).
  virtual RunRecord wait() = 0;
  virtual void on_done(std::function<void(const RunRecord&)> fn) = 0;
};

class Executor {
 public:
  Executor(boost::asio::any_io_executor io, RunStore& store, std::shared_ptr<Clock> clock,
           ExecutorOptions options);
  ~Executor();

  std::shared_ptr<RunHandle> start(RunRequest request, std::shared_ptr<RunObserver> observer = {});

  // Adopts a run whose owner died (the caller took its lease): interrupted tries are recorded as
  // failed and retried under the task's policy; finished tasks keep their results.
  std::shared_ptr<RunHandle> resume(std::shared_ptr<const Workflow> workflow, RunRecord run,
                                    std::vector<TaskRecord> tasks,
                                    std::shared_ptr<RunObserver> observer = {});

  const ExecutorOptions& options() const { return options_; }

 private:
  boost::asio::any_io_executor io_;
  RunStore& store_;
  std::shared_ptr<Clock> clock_;
  ExecutorOptions options_;
};

std::string default_owner_id();
EpochMillis to_epoch_millis(SysTime t);
std::string format_utc(EpochMillis t);  // 2026-12-03T18:25:00Z (milliseconds dropped)

}  // namespace podflow::engine
