// The durable run store: one SQLite file in WAL mode, written by one thread, read by the others.
#include <sqlite3.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "podflow/engine/store.hpp"
#include "sqlite_error.hpp"
#include "store_writer.hpp"

namespace podflow::engine {
namespace {

using detail::LeaseRequest;
using detail::make_sqlite_error;

// Schema migrations, oldest first: the database's `PRAGMA user_version` is how many have run.
// Never edit a step that has shipped; append a new one.
constexpr std::array<std::string_view, 4> kMigrations{
    // 1: runs and their task instances.
    R"sql(
CREATE TABLE runs (
  id TEXT PRIMARY KEY NOT NULL,
  workflow TEXT NOT NULL,
  state TEXT NOT NULL,
  params TEXT NOT NULL,
  source_path TEXT NOT NULL,
  definition TEXT NOT NULL,
  definition_hash TEXT NOT NULL,
  logical_date TEXT NOT NULL,
  reason TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  ended_at INTEGER NOT NULL
);
CREATE INDEX runs_by_created ON runs (created_at, id);
CREATE INDEX runs_by_workflow ON runs (workflow, created_at, id);
-- The primary key (run_id, task_id) is also the index for "tasks of a run".
CREATE TABLE task_instances (
  run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  task_id TEXT NOT NULL,
  state TEXT NOT NULL,
  try_number INTEGER NOT NULL,
  max_tries INTEGER NOT NULL,
  error_kind TEXT NOT NULL,
  error_message TEXT NOT NULL,
  outputs TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  ended_at INTEGER NOT NULL,
  next_try_at INTEGER NOT NULL,
  PRIMARY KEY (run_id, task_id)
) WITHOUT ROWID;
)sql",
    // 2: the history of tries, and run ownership (leases).
    R"sql(
ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN lease_expires_at INTEGER NOT NULL DEFAULT 0;
CREATE TABLE task_tries (
  run_id TEXT NOT NULL,
  task_id TEXT NOT NULL,
  try_number INTEGER NOT NULL,
  state TEXT NOT NULL,
  error_kind TEXT NOT NULL,
  error_message TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  ended_at INTEGER NOT NULL,
  pid INTEGER NOT NULL,
  PRIMARY KEY (run_id, task_id, try_number),
  FOREIGN KEY (run_id, task_id) REFERENCES task_instances (run_id, task_id) ON DELETE CASCADE
) WITHOUT ROWID;
)sql",
    // 3: what tasks created outside podflow (pods), and the metric series they reported. Resources
    // have no foreign key: the reaper must still find a pod after its run was pruned.
    R"sql(
CREATE TABLE resources (
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  run_id TEXT NOT NULL,
  task_id TEXT NOT NULL,
  try_number INTEGER NOT NULL,
  external_id TEXT NOT NULL,
  state TEXT NOT NULL,
  detail TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (kind, name)
) WITHOUT ROWID;
CREATE INDEX resources_by_task ON resources (run_id, task_id, kind);
CREATE TABLE metrics (
  run_id TEXT NOT NULL,
  task_id TEXT NOT NULL,
  name TEXT NOT NULL,
  step INTEGER NOT NULL,
  value REAL NOT NULL,
  timestamp INTEGER NOT NULL,
  PRIMARY KEY (run_id, task_id, name, step),
  FOREIGN KEY (run_id, task_id) REFERENCES task_instances (run_id, task_id) ON DELETE CASCADE
) WITHOUT ROWID;
)sql",
    // 4: API tokens of podflow serve, kept as hashes.
    R"sql(
CREATE TABLE api_tokens (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER NOT NULL
) WITHOUT ROWID;
)sql",
};

// Every statement the store runs more than once; prepared on first use and kept on the connection.
// Preparing lazily lets a test open an old schema (SqliteOptions::migrate_to_version) without the
// statements of newer columns failing at open.
enum class Sql : std::size_t {
  begin_immediate,
  commit,
  rollback,
  savepoint,
  release,
  rollback_to,
  upsert_run,
  upsert_task,
  upsert_try,
  update_lease,
  acquire_lease,
  upsert_resource,
  upsert_metric,
  select_resources,
  select_metrics,
  select_owner,
  select_run,
  select_runs,
  select_runs_of_workflow,
  select_tasks,
  select_tries,
  upsert_token,
  select_tokens,
  select_token_by_hash,
  count,
};

#define PODFLOW_RUN_COLUMNS                                                                       \
  "id, workflow, state, params, source_path, definition, definition_hash, logical_date, reason, " \
  "created_at, started_at, ended_at, owner, lease_expires_at"
#define PODFLOW_TASK_COLUMNS                                                            \
  "run_id, task_id, state, try_number, max_tries, error_kind, error_message, outputs, " \
  "started_at, ended_at, next_try_at"
#define PODFLOW_RESOURCE_COLUMNS \
  "kind, name, run_id, task_id, try_number, external_id, state, detail, created_at, updated_at"
#define PODFLOW_METRIC_COLUMNS "run_id, task_id, name, step, value, timestamp"
#define PODFLOW_TOKEN_COLUMNS "id, name, role, hash, created_at, revoked_at"
#define PODFLOW_TRY_COLUMNS \
  "run_id, task_id, try_number, state, error_kind, error_message, started_at, ended_at, pid"

constexpr std::array<const char*, static_cast<std::size_t>(Sql::count)> kSql{
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT batch",
    "RELEASE batch",
    "ROLLBACK TO batch",
    "INSERT INTO runs (" PODFLOW_RUN_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    " ON CONFLICT (id) DO UPDATE SET workflow = excluded.workflow, state = excluded.state,"
    " params = excluded.params, source_path = excluded.source_path,"
    " definition = excluded.definition, definition_hash = excluded.definition_hash,"
    " logical_date = excluded.logical_date, reason = excluded.reason,"
    " created_at = excluded.created_at, started_at = excluded.started_at,"
    " ended_at = excluded.ended_at, owner = excluded.owner,"
    " lease_expires_at = excluded.lease_expires_at",
    "INSERT INTO task_instances (" PODFLOW_TASK_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    " ON CONFLICT (run_id, task_id) DO UPDATE SET state = excluded.state,"
    " try_number = excluded.try_number, max_tries = excluded.max_tries,"
    " error_kind = excluded.error_kind, error_message = excluded.error_message,"
    " outputs = excluded.outputs, started_at = excluded.started_at,"
    " ended_at = excluded.ended_at, next_try_at = excluded.next_try_at",
    "INSERT INTO task_tries (" PODFLOW_TRY_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    " ON CONFLICT (run_id, task_id, try_number) DO UPDATE SET state = excluded.state,"
    " error_kind = excluded.error_kind, error_message = excluded.error_message,"
    " started_at = excluded.started_at, ended_at = excluded.ended_at, pid = excluded.pid",
    "UPDATE runs SET owner = ?2, lease_expires_at = ?3 WHERE id = ?1",
    // A lease is live while now < lease_expires_at; the same owner may always renew.
    "UPDATE runs SET owner = ?2, lease_expires_at = ?4 WHERE id = ?1"
    " AND (?5 OR owner = '' OR owner = ?2 OR lease_expires_at <= ?3)",
    "INSERT INTO resources (" PODFLOW_RESOURCE_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    " ON CONFLICT (kind, name) DO UPDATE SET run_id = excluded.run_id,"
    " task_id = excluded.task_id, try_number = excluded.try_number,"
    " external_id = excluded.external_id, state = excluded.state, detail = excluded.detail,"
    " created_at = excluded.created_at, updated_at = excluded.updated_at",
    "INSERT INTO metrics (" PODFLOW_METRIC_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    " ON CONFLICT (run_id, task_id, name, step) DO UPDATE SET value = excluded.value,"
    " timestamp = excluded.timestamp",
    "SELECT " PODFLOW_RESOURCE_COLUMNS
    " FROM resources WHERE (?1 = '' OR kind = ?1) AND (?2 = '' OR run_id = ?2)"
    " AND (?3 = '' OR task_id = ?3) ORDER BY created_at, name",
    "SELECT " PODFLOW_METRIC_COLUMNS
    " FROM metrics WHERE run_id = ?1 AND task_id = ?2 ORDER BY name, step",
    "SELECT owner FROM runs WHERE id = ?1",
    "SELECT " PODFLOW_RUN_COLUMNS " FROM runs WHERE id = ?1",
    "SELECT " PODFLOW_RUN_COLUMNS " FROM runs ORDER BY created_at DESC, id DESC LIMIT ?1",
    "SELECT " PODFLOW_RUN_COLUMNS
    " FROM runs WHERE workflow = ?2 ORDER BY created_at DESC, id DESC LIMIT ?1",
    "SELECT " PODFLOW_TASK_COLUMNS " FROM task_instances WHERE run_id = ?1 ORDER BY task_id",
    "SELECT " PODFLOW_TRY_COLUMNS
    " FROM task_tries WHERE run_id = ?1 AND task_id = ?2 ORDER BY try_number",
    "INSERT INTO api_tokens (" PODFLOW_TOKEN_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    " ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role,"
    " hash = excluded.hash, created_at = excluded.created_at, revoked_at = excluded.revoked_at",
    "SELECT " PODFLOW_TOKEN_COLUMNS " FROM api_tokens ORDER BY created_at, id",
    "SELECT " PODFLOW_TOKEN_COLUMNS " FROM api_tokens WHERE hash = ?1",
};

#undef PODFLOW_RUN_COLUMNS
#undef PODFLOW_TASK_COLUMNS
#undef PODFLOW_TRY_COLUMNS
#undef PODFLOW_RESOURCE_COLUMNS
#undef PODFLOW_METRIC_COLUMNS
#undef PODFLOW_TOKEN_COLUMNS

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StatementFinalizer {
  void operator()(sqlite3_stmt* statement) const { sqlite3_finalize(statement); }
};

// One SQLite connection and its cached statements. Used by one thread at a time.
class Connection {
 public:
  Connection(std::unique_ptr<sqlite3, DbCloser> db, std::string path)
      : db_(std::move(db)), path_(std::move(path)) {}

  sqlite3* db() const { return db_.get(); }
  const std::string& path() const { return path_; }

  // The cached statement, or nullptr (with the error logged) when it does not prepare.
  sqlite3_stmt* statement(Sql which) {
    auto& slot = statements_[static_cast<std::size_t>(which)];
    if (!slot) {
      sqlite3_stmt* prepared = nullptr;
      const int rc = sqlite3_prepare_v3(db_.get(), kSql[static_cast<std::size_t>(which)], -1,
                                        SQLITE_PREPARE_PERSISTENT, &prepared, nullptr);
      if (rc != SQLITE_OK) {
        log_error("preparing a statement");
        return nullptr;
      }
      slot.reset(prepared);
    }
    return slot.get();
  }

  // Runs SQL without results (pragmas, migrations); returns the SQLite result code.
  int exec(const char* sql) { return sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr); }

  void log_error(std::string_view doing) const {
    std::fprintf(stderr, "podflow: %s: sqlite error while %.*s: %s (code %d)\n", path_.c_str(),
                 static_cast<int>(doing.size()), doing.data(), sqlite3_errmsg(db_.get()),
                 sqlite3_extended_errcode(db_.get()));
  }

 private:
  std::unique_ptr<sqlite3, DbCloser> db_;
  std::string path_;
  // Declared after db_: finalized before the connection closes.
  std::array<std::unique_ptr<sqlite3_stmt, StatementFinalizer>,
             static_cast<std::size_t>(Sql::count)>
      statements_;
};

// One execution of a cached statement: bind, step, and reset when it goes out of scope.
class Execution {
 public:
  Execution(Connection& connection, Sql which)
      : connection_(connection), statement_(connection.statement(which)) {
    if (statement_ == nullptr) rc_ = sqlite3_extended_errcode(connection.db());
  }
  ~Execution() {
    if (statement_ == nullptr) return;
    sqlite3_reset(statement_);
    // Text is bound without a copy; drop the pointers before the strings go away.
    sqlite3_clear_bindings(statement_);
  }
  Execution(const Execution&) = delete;
  Execution& operator=(const Execution&) = delete;

  // The string must outlive the step.
  void bind(int index, std::string_view text) {
    if (rc_ == SQLITE_OK) {
      rc_ = sqlite3_bind_text64(statement_, index, text.data(), text.size(), nullptr, SQLITE_UTF8);
    }
  }
  void bind(int index, std::int64_t value) {
    if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_int64(statement_, index, value);
  }
  void bind(int index, double value) {
    if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_double(statement_, index, value);
  }

  // SQLITE_ROW, SQLITE_DONE or an error code (logged).
  int step() {
    if (rc_ != SQLITE_OK) return rc_;
    const int rc = sqlite3_step(statement_);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      connection_.log_error("running a statement");
      return sqlite3_extended_errcode(connection_.db());
    }
    return rc;
  }

  std::string text(int column) const {
    const auto* data = sqlite3_column_text(statement_, column);
    const int size = sqlite3_column_bytes(statement_, column);
    if (data == nullptr) return {};
    return {reinterpret_cast<const char*>(data), static_cast<std::size_t>(size)};
  }
  std::int64_t integer(int column) const { return sqlite3_column_int64(statement_, column); }
  double real(int column) const { return sqlite3_column_double(statement_, column); }
  int small_integer(int column) const { return sqlite3_column_int(statement_, column); }

 private:
  Connection& connection_;
  sqlite3_stmt* statement_;
  int rc_ = SQLITE_OK;
};

std::string dump_json(const Json& value) {
  // Replace invalid UTF-8 rather than throw on the writer thread.
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json parse_json(const std::string& text, const std::string& where) {
  auto value = Json::parse(text, nullptr, false);
  if (value.is_discarded()) {
    std::fprintf(stderr, "podflow: %s holds invalid JSON; read as {}\n", where.c_str());
    return Json::object();
  }
  return value;
}

RunRecord read_run(const Execution& row) {
  RunRecord run;
  run.id = row.text(0);
  run.workflow = row.text(1);
  // Unknown state names can only come from a hand-edited file (newer schemas are refused at open).
  run.state = parse_run_state(row.text(2)).value_or(RunState::failed);
  run.params = parse_json(row.text(3), "params of run " + run.id);
  run.source_path = row.text(4);
  run.definition = row.text(5);
  run.definition_hash = row.text(6);
  run.logical_date = row.text(7);
  run.reason = row.text(8);
  run.created_at = row.integer(9);
  run.started_at = row.integer(10);
  run.ended_at = row.integer(11);
  run.owner = row.text(12);
  run.lease_expires_at = row.integer(13);
  return run;
}

TaskRecord read_task(const Execution& row) {
  TaskRecord task;
  task.run_id = row.text(0);
  task.task_id = row.text(1);
  task.state = parse_task_state(row.text(2)).value_or(TaskState::none);
  task.try_number = row.small_integer(3);
  task.max_tries = row.small_integer(4);
  task.error_kind = row.text(5);
  task.error_message = row.text(6);
  task.outputs = parse_json(row.text(7), "outputs of task " + task.run_id + "/" + task.task_id);
  task.started_at = row.integer(8);
  task.ended_at = row.integer(9);
  task.next_try_at = row.integer(10);
  return task;
}

TryRecord read_try(const Execution& row) {
  TryRecord attempt;
  attempt.run_id = row.text(0);
  attempt.task_id = row.text(1);
  attempt.try_number = row.small_integer(2);
  attempt.state = parse_task_state(row.text(3)).value_or(TaskState::failed);
  attempt.error_kind = row.text(4);
  attempt.error_message = row.text(5);
  attempt.started_at = row.integer(6);
  attempt.ended_at = row.integer(7);
  attempt.pid = row.integer(8);
  return attempt;
}

int upsert(Connection& connection, const RunRecord& run) {
  const auto params = dump_json(run.params);
  Execution upsert(connection, Sql::upsert_run);
  upsert.bind(1, run.id);
  upsert.bind(2, run.workflow);
  upsert.bind(3, to_string(run.state));
  upsert.bind(4, params);
  upsert.bind(5, run.source_path);
  upsert.bind(6, run.definition);
  upsert.bind(7, run.definition_hash);
  upsert.bind(8, run.logical_date);
  upsert.bind(9, run.reason);
  upsert.bind(10, run.created_at);
  upsert.bind(11, run.started_at);
  upsert.bind(12, run.ended_at);
  upsert.bind(13, run.owner);
  upsert.bind(14, run.lease_expires_at);
  return upsert.step();
}

int upsert(Connection& connection, const TaskRecord& task) {
  const auto outputs = dump_json(task.outputs);
  Execution upsert(connection, Sql::upsert_task);
  upsert.bind(1, task.run_id);
  upsert.bind(2, task.task_id);
  upsert.bind(3, to_string(task.state));
  upsert.bind(4, std::int64_t{task.try_number});
  upsert.bind(5, std::int64_t{task.max_tries});
  upsert.bind(6, task.error_kind);
  upsert.bind(7, task.error_message);
  upsert.bind(8, outputs);
  upsert.bind(9, task.started_at);
  upsert.bind(10, task.ended_at);
  upsert.bind(11, task.next_try_at);
  return upsert.step();
}

int upsert(Connection& connection, const TryRecord& attempt) {
  Execution upsert(connection, Sql::upsert_try);
  upsert.bind(1, attempt.run_id);
  upsert.bind(2, attempt.task_id);
  upsert.bind(3, std::int64_t{attempt.try_number});
  upsert.bind(4, to_string(attempt.state));
  upsert.bind(5, attempt.error_kind);
  upsert.bind(6, attempt.error_message);
  upsert.bind(7, attempt.started_at);
  upsert.bind(8, attempt.ended_at);
  upsert.bind(9, attempt.pid);
  return upsert.step();
}

ResourceRecord read_resource(const Execution& row) {
  ResourceRecord resource;
  resource.kind = row.text(0);
  resource.name = row.text(1);
  resource.run_id = row.text(2);
  resource.task_id = row.text(3);
  resource.try_number = row.small_integer(4);
  resource.external_id = row.text(5);
  resource.state = row.text(6);
  resource.detail = parse_json(row.text(7), "detail of " + resource.kind + " " + resource.name);
  resource.created_at = row.integer(8);
  resource.updated_at = row.integer(9);
  return resource;
}

MetricPoint read_metric(const Execution& row) {
  MetricPoint point;
  point.run_id = row.text(0);
  point.task_id = row.text(1);
  point.name = row.text(2);
  point.step = row.integer(3);
  point.value = row.real(4);
  point.timestamp = row.integer(5);
  return point;
}

int upsert(Connection& connection, const ResourceRecord& resource) {
  const auto detail = dump_json(resource.detail);
  Execution upsert(connection, Sql::upsert_resource);
  upsert.bind(1, resource.kind);
  upsert.bind(2, resource.name);
  upsert.bind(3, resource.run_id);
  upsert.bind(4, resource.task_id);
  upsert.bind(5, std::int64_t{resource.try_number});
  upsert.bind(6, resource.external_id);
  upsert.bind(7, resource.state);
  upsert.bind(8, detail);
  upsert.bind(9, resource.created_at);
  upsert.bind(10, resource.updated_at);
  return upsert.step();
}

int upsert(Connection& connection, const MetricPoint& point) {
  Execution upsert(connection, Sql::upsert_metric);
  upsert.bind(1, point.run_id);
  upsert.bind(2, point.task_id);
  upsert.bind(3, point.name);
  upsert.bind(4, point.step);
  upsert.bind(5, point.value);
  upsert.bind(6, point.timestamp);
  return upsert.step();
}

int upsert(Connection& connection, const TokenRecord& token) {
  Execution upsert(connection, Sql::upsert_token);
  upsert.bind(1, token.id);
  upsert.bind(2, token.name);
  upsert.bind(3, token.role);
  upsert.bind(4, token.hash);
  upsert.bind(5, token.created_at);
  upsert.bind(6, token.revoked_at);
  return upsert.step();
}

TokenRecord read_token(const Execution& row) {
  TokenRecord token;
  token.id = row.text(0);
  token.name = row.text(1);
  token.role = row.text(2);
  token.hash = row.text(3);
  token.created_at = row.integer(4);
  token.revoked_at = row.integer(5);
  return token;
}

int upsert(Connection& connection, const LeaseUpdate& lease) {
  Execution update(connection, Sql::update_lease);
  update.bind(1, lease.run_id);
  update.bind(2, lease.owner);
  update.bind(3, lease.lease_expires_at);
  return update.step();
}

// Not an SQLite code: the batch's fence did not hold.
constexpr int kLeaseLost = -1;

// SQLITE_DONE when every record of the batch was written, else the first error.
int apply(Connection& connection, const StoreBatch& batch) {
  if (!batch.fence_owner.empty()) {
    Execution select(connection, Sql::select_owner);
    select.bind(1, batch.fence_run);
    const int rc = select.step();
    if (rc == SQLITE_ROW && select.text(0) != batch.fence_owner) return kLeaseLost;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return rc;
  }
  auto write_all = [&](const auto& records) {
    for (const auto& record : records) {
      if (const int rc = upsert(connection, record); rc != SQLITE_DONE) return rc;
    }
    return SQLITE_DONE;
  };
  // Parents before children, so foreign keys hold statement by statement.
  int rc = write_all(batch.runs);
  if (rc == SQLITE_DONE) rc = write_all(batch.tasks);
  if (rc == SQLITE_DONE) rc = write_all(batch.tries);
  if (rc == SQLITE_DONE) rc = write_all(batch.leases);
  if (rc == SQLITE_DONE) rc = write_all(batch.resources);
  if (rc == SQLITE_DONE) rc = write_all(batch.metrics);
  if (rc == SQLITE_DONE) rc = write_all(batch.tokens);
  return rc;
}

// Runs a statement without parameters or rows (transaction control).
int run_simple(Connection& connection, Sql which) { return Execution(connection, which).step(); }

// The writer thread's half: the write connection and transactions.
class SqliteWriter final : public detail::StoreBackend {
 public:
  explicit SqliteWriter(Connection connection) : connection_(std::move(connection)) {}

  void commit_group(std::span<const StoreBatch* const> batches,
                    std::span<std::error_code> results) override {
    auto fail_all = [&](int rc) {
      for (auto& result : results) result = make_sqlite_error(rc);
    };
    if (const int rc = run_simple(connection_, Sql::begin_immediate); rc != SQLITE_DONE) {
      fail_all(rc);
      return;
    }
    // Each batch in a savepoint: a bad batch is rolled back alone, so whether a batch commits does
    // not depend on which neighbours happened to share its transaction.
    for (std::size_t i = 0; i < batches.size(); ++i) {
      int rc = run_simple(connection_, Sql::savepoint);
      if (rc == SQLITE_DONE) rc = apply(connection_, *batches[i]);
      if (rc == SQLITE_DONE) rc = run_simple(connection_, Sql::release);
      if (rc == SQLITE_DONE) continue;
      if (sqlite3_get_autocommit(connection_.db()) != 0) {
        // SQLite rolled the whole transaction back itself (I/O error, disk full): nothing
        // committed.
        fail_all(rc);
        return;
      }
      results[i] =
          rc == kLeaseLost ? make_error_code(StoreErrc::lease_lost) : make_sqlite_error(rc);
      if (run_simple(connection_, Sql::rollback_to) != SQLITE_DONE ||
          run_simple(connection_, Sql::release) != SQLITE_DONE) {
        abandon();
        fail_all(rc);
        return;
      }
    }
    if (const int rc = run_simple(connection_, Sql::commit); rc != SQLITE_DONE) {
      abandon();
      fail_all(rc);
    }
  }

  bool acquire_lease(const LeaseRequest& request) override {
    if (run_simple(connection_, Sql::begin_immediate) != SQLITE_DONE) return false;
    bool taken = false;
    {
      Execution update(connection_, Sql::acquire_lease);
      update.bind(1, request.run_id);
      update.bind(2, request.owner);
      update.bind(3, request.now);
      update.bind(4, request.lease_expires_at);
      update.bind(5, std::int64_t{request.mode == RunStore::Takeover::force ? 1 : 0});
      if (update.step() != SQLITE_DONE) {
        abandon();
        return false;
      }
      taken = sqlite3_changes(connection_.db()) == 1;
    }
    if (run_simple(connection_, Sql::commit) != SQLITE_DONE) {
      abandon();
      return false;
    }
    return taken;
  }

 private:
  // Rolls back whatever is still open after a failure.
  void abandon() {
    if (sqlite3_get_autocommit(connection_.db()) == 0) run_simple(connection_, Sql::rollback);
  }

  Connection connection_;
};

class SqliteStore final : public RunStore {
 public:
  SqliteStore(Connection write_connection, Connection read_connection)
      : backend_(std::move(write_connection)), reader_(std::move(read_connection)) {}

  void submit(StoreBatch batch, CommitHandler on_commit) override {
    writer_.submit(std::move(batch), std::move(on_commit));
  }
  void flush() override { writer_.flush(); }

  std::optional<RunRecord> get_run(const std::string& run_id) const override {
    std::lock_guard lock(reader_mutex_);
    Execution select(reader_, Sql::select_run);
    select.bind(1, run_id);
    if (select.step() != SQLITE_ROW) return std::nullopt;
    return read_run(select);
  }

  std::vector<RunRecord> list_runs(const RunFilter& filter) const override {
    std::lock_guard lock(reader_mutex_);
    Execution select(reader_,
                     filter.workflow.empty() ? Sql::select_runs : Sql::select_runs_of_workflow);
    // LIMIT -1 is SQLite for "no limit".
    select.bind(1, std::int64_t{filter.limit > 0 ? filter.limit : -1});
    if (!filter.workflow.empty()) select.bind(2, filter.workflow);
    std::vector<RunRecord> runs;
    while (select.step() == SQLITE_ROW) runs.push_back(read_run(select));
    return runs;
  }

  std::vector<TaskRecord> get_tasks(const std::string& run_id) const override {
    std::lock_guard lock(reader_mutex_);
    Execution select(reader_, Sql::select_tasks);
    select.bind(1, run_id);
    std::vector<TaskRecord> tasks;
    while (select.step() == SQLITE_ROW) tasks.push_back(read_task(select));
    return tasks;
  }

  std::vector<TryRecord> get_tries(const std::string& run_id,
                                   const std::string& task_id) const override {
    std::lock_guard lock(reader_mutex_);
    Execution select(reader_, Sql::select_tries);
    select.bind(1, run_id);
    select.bind(2, task_id);
    std::vector<TryRecord> tries;
    while (select.step() == SQLITE_ROW) tries.push_back(read_try(select));
    return tries;
  }

  std::vector<ResourceRecord> list_resources(const ResourceFilter& filter) const override {
    std::lock_guard lock(reader_mutex_);
    Execution select(reader_, Sql::select_resources);
    select.bind(1, filter.kind);
    select.bind(2, filter.run_id);
    select.bind(3, filter.task_id);
    std::vector<ResourceRecord> resources;
    while (select.step() == SQLITE_ROW) resources.push_back(read_resource(select));
    return resources;
  }

  std::vector<TokenRecord> list_tokens() const override {
    std::lock_guard lock(reader_mutex_);
    Execution select(reader_, Sql::select_tokens);
    std::vector<TokenRecord> tokens;
    while (select.step() == SQLITE_ROW) tokens.push_back(read_token(select));
    return tokens;
  }

  std::optional<TokenRecord> find_token(const std::string& hash) const override {
    std::lock_guard lock(reader_mutex_);
    Execution select(reader_, Sql::select_token_by_hash);
    select.bind(1, hash);
    if (select.step() == SQLITE_ROW) return read_token(select);
    return std::nullopt;
  }

  std::vector<MetricPoint> list_metrics(const std::string& run_id,
                                        const std::string& task_id) const override {
    std::lock_guard lock(reader_mutex_);
    Execution select(reader_, Sql::select_metrics);
    select.bind(1, run_id);
    select.bind(2, task_id);
    std::vector<MetricPoint> points;
    while (select.step() == SQLITE_ROW) points.push_back(read_metric(select));
    return points;
  }

  bool acquire_lease(const std::string& run_id, const std::string& owner, EpochMillis now,
                     EpochMillis lease_expires_at, Takeover mode) override {
    return writer_.acquire_lease(LeaseRequest{.run_id = run_id,
                                              .owner = owner,
                                              .now = now,
                                              .lease_expires_at = lease_expires_at,
                                              .mode = mode});
  }

 private:
  SqliteWriter backend_;
  mutable std::mutex reader_mutex_;
  mutable Connection reader_;
  // Last: its destructor commits what is queued and joins before the connections close.
  detail::StoreWriter writer_{backend_};
};

// ---- opening ------------------------------------------------------------------------------------

struct OpenFailure {
  std::string message;
};

std::string sqlite_message(sqlite3* db) {
  return db != nullptr ? sqlite3_errmsg(db) : "out of memory";
}

std::variant<Connection, OpenFailure> open_connection(const std::string& path) {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  std::unique_ptr<sqlite3, DbCloser> db(raw);
  if (rc != SQLITE_OK) {
    return OpenFailure{path + ": cannot open the run database: " + sqlite_message(db.get()) +
                       " (does the directory exist, and may podflow write to it?)"};
  }
  sqlite3_extended_result_codes(db.get(), 1);
  // Another podflow process may hold the write lock for a moment; wait rather than fail.
  sqlite3_busy_timeout(db.get(), 5000);
  return Connection(std::move(db), path);
}

// Reads one integer pragma; nullopt when the file cannot be read as a database.
std::optional<std::int64_t> read_pragma(Connection& connection, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(connection.db(), sql, -1, &raw, nullptr) != SQLITE_OK) return std::nullopt;
  std::unique_ptr<sqlite3_stmt, StatementFinalizer> statement(raw);
  if (sqlite3_step(statement.get()) != SQLITE_ROW) return std::nullopt;
  return sqlite3_column_int64(statement.get(), 0);
}

std::optional<std::string> read_text_pragma(Connection& connection, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(connection.db(), sql, -1, &raw, nullptr) != SQLITE_OK) return std::nullopt;
  std::unique_ptr<sqlite3_stmt, StatementFinalizer> statement(raw);
  if (sqlite3_step(statement.get()) != SQLITE_ROW) return std::nullopt;
  const auto* text = sqlite3_column_text(statement.get(), 0);
  return text == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(text));
}

std::optional<OpenFailure> configure(Connection& connection) {
  const auto& path = connection.path();
  const auto journal = read_text_pragma(connection, "PRAGMA journal_mode = WAL");
  if (!journal || *journal != "wal") {
    return OpenFailure{
        path + ": cannot switch the run database to WAL mode: " +
        (journal ? "journal mode stays " + *journal : sqlite_message(connection.db()))};
  }
  if (connection.exec("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON") != SQLITE_OK) {
    return OpenFailure{path +
                       ": cannot configure the run database: " + sqlite_message(connection.db())};
  }
  return std::nullopt;
}

std::optional<OpenFailure> migrate(Connection& connection, int target_version) {
  const auto& path = connection.path();
  for (;;) {
    // Re-read the version inside the write lock: another process may be migrating the same file.
    if (connection.exec("BEGIN IMMEDIATE") != SQLITE_OK) {
      return OpenFailure{path + ": cannot lock the run database to migrate it: " +
                         sqlite_message(connection.db())};
    }
    const auto version = read_pragma(connection, "PRAGMA user_version");
    if (!version) {
      OpenFailure failure{path +
                          ": cannot read the schema version: " + sqlite_message(connection.db())};
      connection.exec("ROLLBACK");
      return failure;
    }
    if (*version >= target_version) {
      connection.exec("ROLLBACK");
      return std::nullopt;
    }
    const auto next = static_cast<std::size_t>(*version);
    const std::string step = std::string(kMigrations[next]) +
                             "; PRAGMA user_version = " + std::to_string(next + 1) + ";";
    if (connection.exec(step.c_str()) != SQLITE_OK || connection.exec("COMMIT") != SQLITE_OK) {
      OpenFailure failure{path + ": cannot migrate the run database to schema version " +
                          std::to_string(next + 1) + ": " + sqlite_message(connection.db())};
      if (sqlite3_get_autocommit(connection.db()) == 0) connection.exec("ROLLBACK");
      return failure;
    }
  }
}

}  // namespace

int sqlite_schema_version() { return static_cast<int>(kMigrations.size()); }

std::variant<std::unique_ptr<RunStore>, StoreOpenError> open_sqlite_store(
    const SqliteOptions& options) {
  const auto& path = options.path;
  const int latest = sqlite_schema_version();
  if (path.empty()) return StoreOpenError{"no path given for the run database"};
  if (options.migrate_to_version < 0 || options.migrate_to_version > latest) {
    return StoreOpenError{"migrate_to_version " + std::to_string(options.migrate_to_version) +
                          " is not a schema version of this podflow (1 to " +
                          std::to_string(latest) + ")"};
  }
  const int target = options.migrate_to_version == 0 ? latest : options.migrate_to_version;

  auto opened = open_connection(path);
  if (auto* failure = std::get_if<OpenFailure>(&opened)) return StoreOpenError{failure->message};
  auto& writer = std::get<Connection>(opened);

  // The first read tells a database from any other file.
  const auto version = read_pragma(writer, "PRAGMA user_version");
  if (!version) {
    return StoreOpenError{path +
                          ": cannot read it as a podflow database: " + sqlite_message(writer.db()) +
                          " (move the file away or point PODFLOW_HOME elsewhere)"};
  }
  if (*version > latest) {
    return StoreOpenError{path + ": schema version " + std::to_string(*version) +
                          " is newer than this podflow supports (" + std::to_string(latest) +
                          "); upgrade podflow or point PODFLOW_HOME elsewhere"};
  }
  if (auto failure = configure(writer)) return StoreOpenError{failure->message};
  if (auto failure = migrate(writer, target)) return StoreOpenError{failure->message};

  auto reader_opened = open_connection(path);
  if (auto* failure = std::get_if<OpenFailure>(&reader_opened)) {
    return StoreOpenError{failure->message};
  }
  auto& reader = std::get<Connection>(reader_opened);
  // The read connection never writes; say so, so a mistake fails loudly.
  if (reader.exec("PRAGMA query_only = ON") != SQLITE_OK) {
    return StoreOpenError{path +
                          ": cannot configure the run database: " + sqlite_message(reader.db())};
  }
  return std::unique_ptr<RunStore>(
      std::make_unique<SqliteStore>(std::move(writer), std::move(reader)));
}

}  // namespace podflow::engine
