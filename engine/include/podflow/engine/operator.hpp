// The interface every operator implements, with the argument schema the loader checks at load time.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "podflow/engine/error.hpp"
#include "podflow/engine/json.hpp"
#include "podflow/engine/store.hpp"
#include "podflow/engine/workflow.hpp"

namespace podflow::engine {

struct ArgSpec {
  std::string name;
  ValueType type = ValueType::string;
  bool required = false;
  std::optional<Json> default_value;
  std::string description;
};

struct OperatorSchema {
  std::vector<ArgSpec> args;
  // Output keys the operator always returns. Template references to other keys are load errors,
  // unless open_outputs is set (shell: the command writes whatever keys it likes).
  std::vector<std::string> outputs;
  bool open_outputs = false;

  const ArgSpec* find_arg(std::string_view name) const;
};

// What an operator records about its task, durably, through the run store. Thread-safe.
class TaskRecorder {
 public:
  virtual ~TaskRecorder() = default;
  // Completes once the record is committed: write the intent before the side effect (a pod's name
  // before the create call). Run, task and try are filled in when left empty; times are set.
  virtual boost::asio::awaitable<std::error_code> record_resource(ResourceRecord resource) = 0;
  // Resources recorded by `task_id` of this run, in every try (all tries of a rerun included).
  virtual std::vector<ResourceRecord> resources(const std::string& task_id) const = 0;
  // Queued and committed in order, without waiting (a log stream must not stall on the disk).
  virtual void record_metrics(std::vector<MetricPoint> points) = 0;
  virtual std::vector<MetricPoint> metrics() const = 0;  // this task's points so far
  // The points another task of this run recorded (mlflow.log's metrics_from).
  virtual std::vector<MetricPoint> metrics_of(const std::string& task_id) const = 0;
  // A short random id of this installation, made once, that marks the pods it creates.
  virtual const std::string& install_id() const = 0;
};

// Submits `batch` and completes once it committed (or failed), without blocking a thread. The
// calling coroutine must run on a strand (or a one-thread context).
boost::asio::awaitable<std::error_code> async_commit(RunStore& store, StoreBatch batch);

// Where an operator writes its task log. Thread-safe; text is masked for secrets before it is
// stored.
class TaskLog {
 public:
  virtual ~TaskLog() = default;
  virtual void write(std::string_view text) = 0;
};

struct TaskContext {
  std::string run_id;
  std::string task_id;
  int try_number = 1;
  Json args = Json::object();  // rendered, schema defaults filled in
  std::shared_ptr<TaskLog> log;
  // Per try, for files like the shell operator's outputs file; operators create it when they need
  // it.
  std::filesystem::path scratch_dir;
  // Extra environment for child processes (PODFLOW_RUN_ID, PODFLOW_TASK_ID, PODFLOW_TRY_NUMBER...).
  std::map<std::string, std::string> env;
  // Operators that start a process group report its id, so that a resumed run can kill what a dead
  // engine left running. Thread-safe; may be empty.
  std::function<void(std::int64_t process_group)> on_process_started;
  std::shared_ptr<TaskRecorder> recorder;  // set by the executor
  // State of each direct upstream task when this try started ("success", "failed", ...), for
  // operators that report how the run went (mlflow.log's status: auto).
  std::map<std::string, std::string> upstream_states;
};

struct TaskOutcome {
  Json outputs = Json::object();
  std::optional<TaskError> error;

  static TaskOutcome success(Json outputs = Json::object()) { return {std::move(outputs), {}}; }
  static TaskOutcome failure(ErrorKind kind, std::string message) {
    return {Json::object(), TaskError{kind, std::move(message)}};
  }
};

// Operators run as coroutines on the engine's io_context. Cancellation (timeout, run cancel)
// arrives as a terminal cancellation on the coroutine; an operator then stops its work (kills its
// processes, aborts its requests) and returns or throws. Operators may throw: the executor records
// the exception as a task_failed error.
class Operator {
 public:
  virtual ~Operator() = default;
  virtual std::string_view name() const = 0;
  virtual const OperatorSchema& schema() const = 0;
  virtual boost::asio::awaitable<TaskOutcome> execute(TaskContext ctx) const = 0;
};

class OperatorRegistry {
 public:
  void add(std::shared_ptr<const Operator> op);
  std::shared_ptr<const Operator> find(std::string_view name) const;
  std::vector<std::string> names() const;

 private:
  std::map<std::string, std::shared_ptr<const Operator>, std::less<>> ops_;
};

}  // namespace podflow::engine
