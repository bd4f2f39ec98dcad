// The run store interface: durable run history (SQLite) or in memory (tests, benchmarks).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <variant>
#include <vector>

#include "podflow/engine/json.hpp"
#include "podflow/engine/states.hpp"

namespace podflow::engine {

// Times are milliseconds since the Unix epoch (UTC); 0 means "not yet".
using EpochMillis = std::int64_t;

struct RunRecord {
  std::string id;
  std::string workflow;  // workflow name
  RunState state = RunState::queued;
  Json params = Json::object();  // secret params stored masked
  std::string source_path;
  std::string definition;       // the exact YAML text the run started with
  std::string definition_hash;  // hex SHA-256 of definition
  std::string logical_date;     // ISO-8601 UTC
  std::string reason;           // why it ended the way it did ("task 'x' failed", "cancelled")
  EpochMillis created_at = 0;
  EpochMillis started_at = 0;
  EpochMillis ended_at = 0;
  std::string owner;  // "host:pid:start" of the process driving it; empty when none
  EpochMillis lease_expires_at = 0;
};

struct TaskRecord {
  std::string run_id;
  std::string task_id;
  TaskState state = TaskState::none;
  int try_number = 0;      // tries started so far; never reused
  int max_tries = 1;       // retries + 1
  std::string error_kind;  // empty when none
  std::string error_message;
  Json outputs = Json::object();
  EpochMillis started_at = 0;  // of the latest try
  EpochMillis ended_at = 0;
  EpochMillis next_try_at = 0;  // up_for_retry: when the next try starts
};

// One attempt of one task, kept for history (`podflow runs show` lists them).
struct TryRecord {
  std::string run_id;
  std::string task_id;
  int try_number = 1;
  TaskState state = TaskState::running;  // running, success, failed
  std::string error_kind;
  std::string error_message;
  EpochMillis started_at = 0;
  EpochMillis ended_at = 0;
  std::int64_t pid = 0;  // process group leader of a shell try, 0 otherwise
};

// Something a task creates outside podflow (a RunPod pod), recorded before it is created (the
// intent) and updated as it changes, so that a crash, retry or rerun never loses track of it or
// makes it twice.
struct ResourceRecord {
  std::string kind;  // "runpod.pod"
  std::string name;  // unique within its kind: the name podflow chose for it
  std::string run_id;
  std::string task_id;
  int try_number = 0;
  std::string external_id;  // the id the provider gave it; empty until known
  std::string state;        // the operator's words: intent, created, terminated, gone ...
  Json detail = Json::object();
  EpochMillis created_at = 0;
  EpochMillis updated_at = 0;
};

struct ResourceFilter {  // empty fields match everything
  std::string kind;
  std::string run_id;
  std::string task_id;
};

// One point of a metric series a task reported (training_accuracy at step 3).
struct MetricPoint {
  std::string run_id;
  std::string task_id;
  std::string name;
  std::int64_t step = 0;
  double value = 0.0;
  EpochMillis timestamp = 0;
};

// An API token of `podflow serve`. Only the SHA-256 of its secret is kept: the secret is shown
// once, when it is made.
struct TokenRecord {
  std::string id;    // public, for list and revoke: "tok_" + 8 hex digits
  std::string name;  // what the user called it
  std::string role;  // viewer, operator or admin
  std::string hash;  // hex SHA-256 of the secret
  EpochMillis created_at = 0;
  EpochMillis revoked_at = 0;  // 0 while it is valid
};

struct LeaseUpdate {
  std::string run_id;
  std::string owner;
  EpochMillis lease_expires_at = 0;
};

// Everything one event changes: committed in one transaction, all or nothing. Records are upserts
// of whole rows (insert or replace by primary key).
struct StoreBatch {
  std::vector<RunRecord> runs;
  std::vector<TaskRecord> tasks;
  std::vector<TryRecord> tries;
  std::vector<LeaseUpdate> leases;
  std::vector<ResourceRecord> resources;  // upserts by (kind, name)
  std::vector<MetricPoint> metrics;       // upserts by (run, task, name, step); need their task
  std::vector<TokenRecord> tokens;        // upserts by id
  // Fencing: when set, the batch applies only while `fence_run` is owned by `fence_owner` (or does
  // not exist yet); otherwise it fails with StoreErrc::lease_lost and changes nothing. A process
  // that was paused past its lease can then never overwrite the run another process took over.
  std::string fence_run;
  std::string fence_owner;
  bool empty() const {
    return runs.empty() && tasks.empty() && tries.empty() && leases.empty() && resources.empty() &&
           metrics.empty() && tokens.empty();
  }
};

enum class StoreErrc { lease_lost = 1 };
const std::error_category& store_category();
std::error_code make_error_code(StoreErrc code);

struct RunFilter {
  std::string workflow;  // empty: all
  int limit = 50;
};

class RunStore {
 public:
  using CommitHandler = std::function<void(std::error_code)>;
  virtual ~RunStore() = default;

  // Queues a batch for the writer. `on_commit` runs on the writer thread after the transaction that
  // holds the batch committed (or failed); callers post back to their own executor. Batches
  // submitted close together may share one transaction (group commit), always in submission order.
  virtual void submit(StoreBatch batch, CommitHandler on_commit) = 0;
  // Blocks until every batch submitted before the call has committed.
  virtual void flush() = 0;

  virtual std::optional<RunRecord> get_run(const std::string& run_id) const = 0;
  virtual std::vector<RunRecord> list_runs(const RunFilter& filter) const = 0;     // newest first
  virtual std::vector<TaskRecord> get_tasks(const std::string& run_id) const = 0;  // by task_id
  virtual std::vector<TryRecord> get_tries(const std::string& run_id,
                                           const std::string& task_id) const = 0;

  // Oldest first (created_at, then name).
  virtual std::vector<ResourceRecord> list_resources(const ResourceFilter& filter) const = 0;
  // By metric name, then step.
  virtual std::vector<MetricPoint> list_metrics(const std::string& run_id,
                                                const std::string& task_id) const = 0;

  // Oldest first, revoked ones included.
  virtual std::vector<TokenRecord> list_tokens() const = 0;
  // The token whose secret hashes to `hash`, revoked or not (the caller checks revoked_at).
  virtual std::optional<TokenRecord> find_token(const std::string& hash) const = 0;

  // Takes ownership of a run when it has no owner, its lease expired before `now`, or `force` is
  // set. Returns false (and changes nothing) when another owner holds a live lease. Synchronous:
  // the writer commits it before returning.
  enum class Takeover { if_expired, force };
  virtual bool acquire_lease(const std::string& run_id, const std::string& owner, EpochMillis now,
                             EpochMillis lease_expires_at, Takeover mode) = 0;
};

// In-memory store: same semantics, no disk. Commit handlers run on a writer thread of its own so
// callers see the same threading as with SQLite.
std::unique_ptr<RunStore> make_memory_store();

struct SqliteOptions {
  std::string path;  // file; created when missing
  // Tests only: stop migrating at this schema version, to build an old database.
  int migrate_to_version = 0;  // 0: latest
};

struct StoreOpenError {
  std::string message;
};

// Opens (creating or migrating) a SQLite store. A database from a newer podflow is refused.
std::variant<std::unique_ptr<RunStore>, StoreOpenError> open_sqlite_store(
    const SqliteOptions& options);
int sqlite_schema_version();  // the version this build writes

}  // namespace podflow::engine
