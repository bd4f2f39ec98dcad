// Tests of the run stores: the behaviour both share, and what only the SQLite file guarantees.
#include "podflow/engine/store.hpp"

#include <doctest/doctest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <system_error>
#include <variant>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace podflow::engine;
using podflow::Json;

// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    std::random_device random;
    path_ =
        fs::temp_directory_path() / ("podflow-store-test-" + std::to_string(::getpid()) + "-" +
                                     std::to_string(counter++) + "-" + std::to_string(random()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A batch from its parts (designated initializers would trip -Wmissing-field-initializers).
StoreBatch batch_of(std::vector<RunRecord> runs, std::vector<TaskRecord> tasks = {},
                    std::vector<TryRecord> tries = {}, std::vector<LeaseUpdate> leases = {}) {
  StoreBatch batch;
  batch.runs = std::move(runs);
  batch.tasks = std::move(tasks);
  batch.tries = std::move(tries);
  batch.leases = std::move(leases);
  return batch;
}

SqliteOptions options_for(std::string path, int migrate_to_version = 0) {
  SqliteOptions options;
  options.path = std::move(path);
  options.migrate_to_version = migrate_to_version;
  return options;
}

RunFilter runs_of(std::string workflow, int limit = 50) {
  RunFilter filter;
  filter.workflow = std::move(workflow);
  filter.limit = limit;
  return filter;
}

std::unique_ptr<RunStore> open_or_fail(const SqliteOptions& options) {
  auto opened = open_sqlite_store(options);
  if (auto* error = std::get_if<StoreOpenError>(&opened)) FAIL(error->message);
  return std::move(std::get<std::unique_ptr<RunStore>>(opened));
}

std::string open_error(const SqliteOptions& options) {
  auto opened = open_sqlite_store(options);
  REQUIRE(std::holds_alternative<StoreOpenError>(opened));
  return std::get<StoreOpenError>(opened).message;
}

struct SqliteFactory {
  TempDir dir;
  std::string db_path() const { return (dir.path() / "podflow.db").string(); }
  std::unique_ptr<RunStore> open() { return open_or_fail(options_for(db_path())); }
};

struct MemoryFactory {
  std::unique_ptr<RunStore> open() { return make_memory_store(); }
};

// Submits one batch and waits for its commit handler.
std::error_code commit(RunStore& store, StoreBatch batch) {
  std::promise<std::error_code> done;
  auto result = done.get_future();
  store.submit(std::move(batch), [&done](std::error_code ec) { done.set_value(ec); });
  return result.get();
}

RunRecord make_run(std::string id, EpochMillis created_at = 1000, std::string workflow = "train") {
  RunRecord run;
  run.id = std::move(id);
  run.workflow = std::move(workflow);
  run.created_at = created_at;
  return run;
}

TaskRecord make_task(std::string run_id, std::string task_id) {
  TaskRecord task;
  task.run_id = std::move(run_id);
  task.task_id = std::move(task_id);
  return task;
}

TryRecord make_try(std::string run_id, std::string task_id, int try_number) {
  TryRecord attempt;
  attempt.run_id = std::move(run_id);
  attempt.task_id = std::move(task_id);
  attempt.try_number = try_number;
  return attempt;
}

// Every field set, none to its default, with text that needs quoting and non-ASCII.
RunRecord full_run() {
  RunRecord run;
  run.id = "run-20240101T000000-ab12";
  run.workflow = "train-llm";
  run.state = RunState::cancelled;
  run.params =
      Json::parse(R"({"zeta": 1, "alpha": {"lr": 0.001, "tags": ["a", "b"]}, "key": "***"})");
  run.source_path = "/home/user/workflows/train.yaml";
  run.definition = "name: train-llm\ntasks:\n  - id: 'say \"hi\"' # ünïcødé\n";
  run.definition_hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  run.logical_date = "2024-01-01T00:00:00Z";
  run.reason = "cancelled by alice";
  run.created_at = 1'704'067'200'000;
  run.started_at = 1'704'067'201'234;
  run.ended_at = 9'007'199'254'740'993;  // beyond a double's exact integers
  run.owner = "host-a:4242:1704067200";
  run.lease_expires_at = 1'704'067'230'000;
  return run;
}

TaskRecord full_task(const std::string& run_id) {
  TaskRecord task;
  task.run_id = run_id;
  task.task_id = "train_model";
  task.state = TaskState::up_for_retry;
  task.try_number = 3;
  task.max_tries = 5;
  task.error_kind = "capacity";
  task.error_message = "no H100 available in EU-RO-1; 'retrying'";
  task.outputs = Json::parse(R"({"pod_id": "abc123", "metrics": {"loss": 0.25}, "n": null})");
  task.started_at = 1'704'067'300'000;
  task.ended_at = 1'704'067'400'000;
  task.next_try_at = 1'704'067'460'000;
  return task;
}

TryRecord full_try(const std::string& run_id, const std::string& task_id) {
  TryRecord attempt;
  attempt.run_id = run_id;
  attempt.task_id = task_id;
  attempt.try_number = 2;
  attempt.state = TaskState::failed;
  attempt.error_kind = "preempted";
  attempt.error_message = "spot pod outbid";
  attempt.started_at = 1'704'067'300'000;
  attempt.ended_at = 1'704'067'350'000;
  attempt.pid = 31337;
  return attempt;
}

void check_same(const RunRecord& got, const RunRecord& want) {
  CHECK(got.id == want.id);
  CHECK(got.workflow == want.workflow);
  CHECK(got.state == want.state);
  CHECK(got.params.dump() == want.params.dump());  // dump: key order is kept too
  CHECK(got.source_path == want.source_path);
  CHECK(got.definition == want.definition);
  CHECK(got.definition_hash == want.definition_hash);
  CHECK(got.logical_date == want.logical_date);
  CHECK(got.reason == want.reason);
  CHECK(got.created_at == want.created_at);
  CHECK(got.started_at == want.started_at);
  CHECK(got.ended_at == want.ended_at);
  CHECK(got.owner == want.owner);
  CHECK(got.lease_expires_at == want.lease_expires_at);
}

void check_same(const TaskRecord& got, const TaskRecord& want) {
  CHECK(got.run_id == want.run_id);
  CHECK(got.task_id == want.task_id);
  CHECK(got.state == want.state);
  CHECK(got.try_number == want.try_number);
  CHECK(got.max_tries == want.max_tries);
  CHECK(got.error_kind == want.error_kind);
  CHECK(got.error_message == want.error_message);
  CHECK(got.outputs.dump() == want.outputs.dump());
  CHECK(got.started_at == want.started_at);
  CHECK(got.ended_at == want.ended_at);
  CHECK(got.next_try_at == want.next_try_at);
}

void check_same(const TryRecord& got, const TryRecord& want) {
  CHECK(got.run_id == want.run_id);
  CHECK(got.task_id == want.task_id);
  CHECK(got.try_number == want.try_number);
  CHECK(got.state == want.state);
  CHECK(got.error_kind == want.error_kind);
  CHECK(got.error_message == want.error_message);
  CHECK(got.started_at == want.started_at);
  CHECK(got.ended_at == want.ended_at);
  CHECK(got.pid == want.pid);
}

std::vector<std::string> run_ids(const std::vector<RunRecord>& runs) {
  std::vector<std::string> ids;
  for (const auto& run : runs) ids.push_back(run.id);
  return ids;
}

// A raw connection to inspect or prepare a database file behind the store's back.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    REQUIRE(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                            nullptr) == SQLITE_OK);
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void exec(const std::string& sql) {
    char* message = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
    const std::string text = message != nullptr ? message : "";
    sqlite3_free(message);
    REQUIRE_MESSAGE(rc == SQLITE_OK, text);
  }
  // The first column of the first row, as text.
  std::string query(const std::string& sql) {
    sqlite3_stmt* statement = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK);
    std::string value;
    if (sqlite3_step(statement) == SQLITE_ROW) {
      const auto* text = sqlite3_column_text(statement, 0);
      if (text != nullptr) value = reinterpret_cast<const char*>(text);
    }
    sqlite3_finalize(statement);
    return value;
  }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace

// ---- behaviour shared by both stores ------------------------------------------------------------

TEST_CASE_TEMPLATE("Store.round_trip_keeps_every_field" * doctest::timeout(10), Factory,
                   SqliteFactory, MemoryFactory) {
  Factory factory;
  auto store = factory.open();
  const auto run = full_run();
  const auto task = full_task(run.id);
  const auto attempt = full_try(run.id, task.task_id);
  REQUIRE_FALSE(commit(*store, batch_of({run}, {task}, {attempt})));

  const auto got_run = store->get_run(run.id);
  REQUIRE(got_run);
  check_same(*got_run, run);
  const auto tasks = store->get_tasks(run.id);
  REQUIRE(tasks.size() == 1);
  check_same(tasks[0], task);
  const auto tries = store->get_tries(run.id, task.task_id);
  REQUIRE(tries.size() == 1);
  check_same(tries[0], attempt);
  CHECK_FALSE(store->get_run("no-such-run"));
  CHECK(store->get_tasks("no-such-run").empty());
  CHECK(store->get_tries(run.id, "no-such-task").empty());
}

TEST_CASE_TEMPLATE("Store.upsert_replaces_the_whole_row" * doctest::timeout(10), Factory,
                   SqliteFactory, MemoryFactory) {
  Factory factory;
  auto store = factory.open();
  const auto first = full_run();
  REQUIRE_FALSE(commit(
      *store, batch_of({first}, {full_task(first.id)}, {full_try(first.id, "train_model")})));

  // The same keys with every other field back to its default: nothing of the old row survives.
  auto second = make_run(first.id, 5, "other");
  auto task = make_task(first.id, "train_model");
  auto attempt = make_try(first.id, "train_model", 2);
  REQUIRE_FALSE(commit(*store, batch_of({second}, {task}, {attempt})));

  check_same(*store->get_run(first.id), second);
  const auto tasks = store->get_tasks(first.id);
  REQUIRE(tasks.size() == 1);
  check_same(tasks[0], task);
  const auto tries = store->get_tries(first.id, "train_model");
  REQUIRE(tries.size() == 1);
  check_same(tries[0], attempt);
}

TEST_CASE_TEMPLATE("Store.reads_are_ordered" * doctest::timeout(10), Factory, SqliteFactory,
                   MemoryFactory) {
  Factory factory;
  auto store = factory.open();
  StoreBatch batch;
  batch.runs = {make_run("r1", 100, "train"), make_run("r2", 300, "eval"),
                make_run("r3", 200, "train"), make_run("r4", 300, "train"),
                make_run("other", 50, "train")};
  batch.tasks = {make_task("r1", "c"), make_task("r1", "a"), make_task("r1", "b"),
                 make_task("r2", "a")};
  batch.tries = {make_try("r1", "a", 3), make_try("r1", "a", 1), make_try("r1", "a", 2),
                 make_try("r1", "b", 1)};
  REQUIRE_FALSE(commit(*store, std::move(batch)));

  // Newest first; equal created_at broken by id, also newest (greatest) first.
  CHECK(run_ids(store->list_runs({})) == std::vector<std::string>{"r4", "r2", "r3", "r1", "other"});
  CHECK(run_ids(store->list_runs(runs_of("train"))) ==
        std::vector<std::string>{"r4", "r3", "r1", "other"});
  CHECK(run_ids(store->list_runs(runs_of("train", 2))) == std::vector<std::string>{"r4", "r3"});
  CHECK(run_ids(store->list_runs(runs_of("nope"))).empty());

  std::vector<std::string> task_ids;
  for (const auto& task : store->get_tasks("r1")) task_ids.push_back(task.task_id);
  CHECK(task_ids == std::vector<std::string>{"a", "b", "c"});
  std::vector<int> try_numbers;
  for (const auto& attempt : store->get_tries("r1", "a")) try_numbers.push_back(attempt.try_number);
  CHECK(try_numbers == std::vector<int>{1, 2, 3});
}

TEST_CASE_TEMPLATE("Store.batches_commit_in_submission_order" * doctest::timeout(20), Factory,
                   SqliteFactory, MemoryFactory) {
  Factory factory;
  auto store = factory.open();
  REQUIRE_FALSE(commit(*store, batch_of({make_run("r")}, {make_task("r", "t")})));

  // Submitted back to back, so the writer groups many of them into one transaction.
  constexpr int kBatches = 500;
  std::mutex mutex;
  std::vector<int> handled;
  std::vector<std::error_code> errors;
  for (int i = 1; i <= kBatches; ++i) {
    auto task = make_task("r", "t");
    task.try_number = i;
    store->submit(batch_of({}, {task}), [&, i](std::error_code ec) {
      std::lock_guard lock(mutex);
      handled.push_back(i);
      if (ec) errors.push_back(ec);
    });
  }
  store->flush();

  std::lock_guard lock(mutex);
  CHECK(errors.empty());
  REQUIRE(handled.size() == kBatches);  // every handler once, before flush returned
  for (int i = 1; i <= kBatches; ++i) CHECK(handled[static_cast<std::size_t>(i - 1)] == i);
  CHECK(store->get_tasks("r").at(0).try_number == kBatches);  // the last write wins
}

TEST_CASE_TEMPLATE("Store.failed_batch_changes_nothing" * doctest::timeout(10), Factory,
                   SqliteFactory, MemoryFactory) {
  Factory factory;
  auto store = factory.open();
  auto kept = make_run("kept");
  kept.reason = "before";
  REQUIRE_FALSE(commit(*store, batch_of({kept}, {make_task("kept", "t")})));

  // Valid records first, then a task of a run that does not exist: the whole batch is refused.
  auto changed = kept;
  changed.reason = "after";
  auto bad =
      batch_of({changed, make_run("new")}, {make_task("new", "t"), make_task("missing-run", "t")});
  // Neighbours submitted around it (likely in the same transaction) are not affected by it.
  std::promise<std::error_code> before_done, bad_done, after_done;
  store->submit(batch_of({make_run("before")}),
                [&](std::error_code ec) { before_done.set_value(ec); });
  store->submit(std::move(bad), [&](std::error_code ec) { bad_done.set_value(ec); });
  store->submit(batch_of({make_run("after")}),
                [&](std::error_code ec) { after_done.set_value(ec); });

  const auto error = bad_done.get_future().get();
  CHECK(error);
  CHECK(error.message().find("FOREIGN KEY") != std::string::npos);
  CHECK_FALSE(before_done.get_future().get());
  CHECK_FALSE(after_done.get_future().get());
  CHECK(store->get_run("kept")->reason == "before");
  CHECK_FALSE(store->get_run("new"));
  CHECK(store->get_tasks("new").empty());
  CHECK(store->get_run("before"));
  CHECK(store->get_run("after"));

  // A try needs its task.
  const auto try_error = commit(*store, batch_of({}, {}, {make_try("kept", "no-such-task", 1)}));
  CHECK(try_error);
  CHECK(store->get_tries("kept", "no-such-task").empty());
}

TEST_CASE_TEMPLATE("Store.leases" * doctest::timeout(10), Factory, SqliteFactory, MemoryFactory) {
  Factory factory;
  auto store = factory.open();
  REQUIRE_FALSE(commit(*store, batch_of({make_run("r")})));
  using Takeover = RunStore::Takeover;

  SUBCASE("a run with no owner is taken") {
    CHECK(store->acquire_lease("r", "a", 1000, 2000, Takeover::if_expired));
    CHECK(store->get_run("r")->owner == "a");
    CHECK(store->get_run("r")->lease_expires_at == 2000);
  }
  SUBCASE("a live lease of another owner is kept") {
    REQUIRE(store->acquire_lease("r", "a", 1000, 2000, Takeover::if_expired));
    CHECK_FALSE(store->acquire_lease("r", "b", 1999, 5000, Takeover::if_expired));
    CHECK(store->get_run("r")->owner == "a");
    CHECK(store->get_run("r")->lease_expires_at == 2000);
  }
  SUBCASE("the owner renews its own lease") {
    REQUIRE(store->acquire_lease("r", "a", 1000, 2000, Takeover::if_expired));
    CHECK(store->acquire_lease("r", "a", 1500, 3500, Takeover::if_expired));
    CHECK(store->get_run("r")->lease_expires_at == 3500);
  }
  SUBCASE("an expired lease is taken over") {
    REQUIRE(store->acquire_lease("r", "a", 1000, 2000, Takeover::if_expired));
    CHECK(store->acquire_lease("r", "b", 2000, 4000, Takeover::if_expired));
    CHECK(store->get_run("r")->owner == "b");
    CHECK(store->get_run("r")->lease_expires_at == 4000);
  }
  SUBCASE("force takes a live lease") {
    REQUIRE(store->acquire_lease("r", "a", 1000, 2000, Takeover::if_expired));
    CHECK(store->acquire_lease("r", "b", 1001, 9000, Takeover::force));
    CHECK(store->get_run("r")->owner == "b");
  }
  SUBCASE("a released lease (lease update with no owner) is free again") {
    REQUIRE(store->acquire_lease("r", "a", 1000, 2000, Takeover::if_expired));
    REQUIRE_FALSE(commit(
        *store, batch_of({}, {}, {}, {{.run_id = "r", .owner = "", .lease_expires_at = 0}})));
    CHECK(store->get_run("r")->owner.empty());
    CHECK(store->acquire_lease("r", "b", 1001, 3000, Takeover::if_expired));
  }
  SUBCASE("an unknown run cannot be taken") {
    CHECK_FALSE(store->acquire_lease("nope", "a", 1000, 2000, Takeover::force));
    CHECK_FALSE(store->get_run("nope"));
  }
}

// ---- the SQLite file ----------------------------------------------------------------------------

TEST_CASE_TEMPLATE("Store.resources_are_kept_by_kind_and_name" * doctest::timeout(10), Factory,
                   SqliteFactory, MemoryFactory) {
  Factory factory;
  auto store = factory.open();
  ResourceRecord pod;
  pod.kind = "runpod.pod";
  pod.name = "podflow-ab12-run1-create-1";
  pod.run_id = "run1";
  pod.task_id = "create";
  pod.try_number = 1;
  pod.state = "intent";
  pod.detail = Json{{"gpu_type", "NVIDIA A40"}, {"note", "quoted \"text\" \u00e9"}};
  pod.created_at = 10;
  pod.updated_at = 10;
  StoreBatch intent;
  intent.resources = {pod};
  REQUIRE_FALSE(commit(*store, intent));
  // The intent becomes a created pod: same key, new id and state.
  pod.external_id = "pod-123";
  pod.state = "created";
  pod.updated_at = 20;
  ResourceRecord other = pod;
  other.name = "podflow-ab12-run2-create-1";
  other.run_id = "run2";
  other.created_at = 5;
  StoreBatch created;
  created.resources = {pod, other};
  REQUIRE_FALSE(commit(*store, created));

  ResourceFilter all;
  const auto listed = store->list_resources(all);
  REQUIRE(listed.size() == 2);
  CHECK(listed[0].name == other.name);  // oldest first
  const auto& got = listed[1];
  CHECK(got.kind == pod.kind);
  CHECK(got.run_id == "run1");
  CHECK(got.task_id == "create");
  CHECK(got.try_number == 1);
  CHECK(got.external_id == "pod-123");
  CHECK(got.state == "created");
  CHECK(got.detail == pod.detail);
  CHECK(got.created_at == 10);
  CHECK(got.updated_at == 20);
  ResourceFilter of_run1;
  of_run1.run_id = "run1";
  of_run1.task_id = "create";
  CHECK(store->list_resources(of_run1).size() == 1);
  ResourceFilter other_kind;
  other_kind.kind = "mlflow.run";
  CHECK(store->list_resources(other_kind).empty());
}

TEST_CASE_TEMPLATE("Store.tokens_are_kept_by_id_and_found_by_hash" * doctest::timeout(10), Factory,
                   SqliteFactory, MemoryFactory) {
  Factory factory;
  auto store = factory.open();
  TokenRecord ci{"tok_00000002", "ci", "operator", std::string(64, 'b'), 20, 0};
  TokenRecord laptop{"tok_00000001", "laptop", "admin", std::string(64, 'a'), 10, 0};
  StoreBatch made;
  made.tokens = {ci, laptop};
  REQUIRE_FALSE(commit(*store, made));
  auto listed = store->list_tokens();
  REQUIRE(listed.size() == 2);
  CHECK(listed[0].id == "tok_00000001");  // oldest first
  CHECK(listed[1].name == "ci");
  CHECK(listed[1].role == "operator");
  auto found = store->find_token(std::string(64, 'b'));
  REQUIRE(found);
  CHECK(found->id == "tok_00000002");
  CHECK(found->revoked_at == 0);
  CHECK_FALSE(store->find_token(std::string(64, 'c')));
  // Revoking is an upsert of the same id with revoked_at set; the row stays for the record.
  ci.revoked_at = 30;
  StoreBatch revoked;
  revoked.tokens = {ci};
  REQUIRE_FALSE(commit(*store, revoked));
  CHECK(store->find_token(std::string(64, 'b'))->revoked_at == 30);
  CHECK(store->list_tokens().size() == 2);
}

TEST_CASE_TEMPLATE("Store.metric_points_need_their_task_and_replace_by_step" * doctest::timeout(10),
                   Factory, SqliteFactory, MemoryFactory) {
  Factory factory;
  auto store = factory.open();
  auto point = [](std::string name, std::int64_t step, double value) {
    MetricPoint p;
    p.run_id = "run1";
    p.task_id = "wait";
    p.name = std::move(name);
    p.step = step;
    p.value = value;
    p.timestamp = 1000 + step;
    return p;
  };
  StoreBatch orphan;
  orphan.metrics = {point("loss", 1, 0.5)};
  CHECK(commit(*store, orphan));  // no such task: refused like any foreign key

  auto batch = batch_of({make_run("run1")}, {make_task("run1", "wait")});
  batch.metrics = {point("loss", 2, 0.4), point("loss", 1, 0.5), point("accuracy", 1, 0.7)};
  REQUIRE_FALSE(commit(*store, batch));
  StoreBatch again;
  again.metrics = {point("loss", 2, 0.25)};  // a re-attached stream sends step 2 again
  REQUIRE_FALSE(commit(*store, again));

  const auto points = store->list_metrics("run1", "wait");
  REQUIRE(points.size() == 3);
  CHECK(points[0].name == "accuracy");
  CHECK(points[1].name == "loss");
  CHECK(points[1].step == 1);
  CHECK(points[2].step == 2);
  CHECK(points[2].value == doctest::Approx(0.25));
  CHECK(points[2].timestamp == 1002);
  CHECK(store->list_metrics("run1", "other").empty());
}

TEST_CASE_TEMPLATE("Store.fenced_batches_apply_only_for_the_owner" * doctest::timeout(10), Factory,
                   SqliteFactory, MemoryFactory) {
  Factory factory;
  auto store = factory.open();
  auto run = make_run("run1");
  run.owner = "a";
  auto first = batch_of({run}, {make_task("run1", "t")});
  first.fence_run = "run1";
  first.fence_owner = "a";  // the run does not exist yet: the fence lets its creation through
  REQUIRE_FALSE(commit(*store, first));
  REQUIRE(store->acquire_lease("run1", "b", 0, 1, RunStore::Takeover::force));

  auto task = make_task("run1", "t");
  task.state = TaskState::success;
  auto stale = batch_of({}, {task});
  stale.fence_run = "run1";
  stale.fence_owner = "a";
  CHECK(commit(*store, stale) == make_error_code(StoreErrc::lease_lost));
  CHECK(store->get_tasks("run1")[0].state == TaskState::none);
  stale.fence_owner = "b";
  CHECK_FALSE(commit(*store, stale));
  CHECK(store->get_tasks("run1")[0].state == TaskState::success);
}

TEST_CASE("SqliteStore.survives_reopening" * doctest::timeout(10)) {
  SqliteFactory factory;
  const auto run = full_run();
  const auto task = full_task(run.id);
  const auto attempt = full_try(run.id, task.task_id);
  {
    auto store = factory.open();
    // Not waited for: closing the store must still commit it.
    store->submit(batch_of({run}, {task}, {attempt}), nullptr);
  }
  auto store = factory.open();
  const auto got = store->get_run(run.id);
  REQUIRE(got);
  check_same(*got, run);
  REQUIRE(store->get_tasks(run.id).size() == 1);
  check_same(store->get_tasks(run.id)[0], task);
  REQUIRE(store->get_tries(run.id, task.task_id).size() == 1);
  check_same(store->get_tries(run.id, task.task_id)[0], attempt);
}

TEST_CASE("SqliteStore.file_is_wal_and_consistent" * doctest::timeout(10)) {
  SqliteFactory factory;
  auto store = factory.open();
  for (int i = 0; i < 50; ++i) {
    const auto id = "r" + std::to_string(i);
    store->submit(batch_of({make_run(id, i)}, {make_task(id, "a"), make_task(id, "b")},
                           {make_try(id, "a", 1)}),
                  nullptr);
  }
  store->flush();

  RawDb raw(factory.db_path());  // alongside the open store: WAL lets it read
  CHECK(raw.query("PRAGMA journal_mode") == "wal");
  CHECK(raw.query("PRAGMA integrity_check") == "ok");
  CHECK(raw.query("PRAGMA foreign_key_check").empty());
  CHECK(raw.query("PRAGMA user_version") == std::to_string(sqlite_schema_version()));
  CHECK(raw.query("SELECT count(*) FROM task_instances") == "100");
  // The reads the CLI and the UI make use indexes, not scans or sorts.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(factory.db_path().c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
          SQLITE_OK);
  auto plan = [&](const char* sql) {
    sqlite3_stmt* statement = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql, -1, &statement, nullptr) == SQLITE_OK);
    std::string details;
    while (sqlite3_step(statement) == SQLITE_ROW) {
      details += reinterpret_cast<const char*>(sqlite3_column_text(statement, 3));
      details += "\n";
    }
    sqlite3_finalize(statement);
    return details;
  };
  const auto runs_plan = plan(
      "EXPLAIN QUERY PLAN SELECT id FROM runs WHERE workflow = 'x' ORDER BY created_at DESC, id "
      "DESC LIMIT 5");
  CHECK_MESSAGE(runs_plan.find("INDEX runs_by_workflow") != std::string::npos, runs_plan);
  CHECK_MESSAGE(runs_plan.find("TEMP B-TREE") == std::string::npos, runs_plan);
  const auto tasks_plan =
      plan("EXPLAIN QUERY PLAN SELECT * FROM task_instances WHERE run_id = 'x' ORDER BY task_id");
  CHECK_MESSAGE(tasks_plan.find("PRIMARY KEY") != std::string::npos, tasks_plan);
  sqlite3_close_v2(db);
}

TEST_CASE("SqliteStore.migrates_a_version_1_database" * doctest::timeout(10)) {
  SqliteFactory factory;
  open_or_fail(options_for(factory.db_path(), 1)).reset();
  {
    // A run and a task written by a podflow that knew schema 1 only.
    RawDb raw(factory.db_path());
    REQUIRE(raw.query("PRAGMA user_version") == "1");
    REQUIRE(raw.query("SELECT name FROM sqlite_master WHERE name = 'task_tries'").empty());
    raw.exec(
        "INSERT INTO runs VALUES ('old', 'train', 'running', '{\"epochs\":3}', 'w.yaml', "
        "'name: train', 'abc', '2023-05-01T00:00:00Z', '', 10, 11, 0);"
        "INSERT INTO task_instances VALUES ('old', 'fit', 'running', 1, 2, '', '', '{}', 11, 0, "
        "0);");
  }

  auto store = factory.open();
  {
    RawDb raw(factory.db_path());
    CHECK(raw.query("PRAGMA user_version") == std::to_string(sqlite_schema_version()));
  }
  const auto run = store->get_run("old");
  REQUIRE(run);
  CHECK(run->workflow == "train");
  CHECK(run->state == RunState::running);
  CHECK(run->params.dump() == R"({"epochs":3})");
  CHECK(run->created_at == 10);
  CHECK(run->owner.empty());
  CHECK(run->lease_expires_at == 0);
  REQUIRE(store->get_tasks("old").size() == 1);
  CHECK(store->get_tasks("old")[0].max_tries == 2);

  // What version 2 added works on the old run.
  CHECK(store->acquire_lease("old", "me", 100, 200, RunStore::Takeover::if_expired));
  CHECK(store->get_run("old")->owner == "me");
  REQUIRE_FALSE(commit(*store, batch_of({}, {}, {make_try("old", "fit", 1)})));
  CHECK(store->get_tries("old", "fit").size() == 1);
  // And what version 4 added.
  StoreBatch token;
  token.tokens = {TokenRecord{"tok_1", "old", "viewer", "h", 1, 0}};
  REQUIRE_FALSE(commit(*store, token));
  CHECK(store->list_tokens().size() == 1);
}

TEST_CASE("SqliteStore.refuses_a_newer_schema" * doctest::timeout(10)) {
  SqliteFactory factory;
  {
    RawDb raw(factory.db_path());
    raw.exec("CREATE TABLE future (x); PRAGMA user_version = 7;");
  }
  CHECK(open_error(options_for(factory.db_path())) ==
        factory.db_path() + ": schema version 7 is newer than this podflow supports (" +
            std::to_string(sqlite_schema_version()) +
            "); upgrade podflow or point PODFLOW_HOME elsewhere");
  RawDb raw(factory.db_path());
  CHECK(raw.query("PRAGMA user_version") == "7");  // left as it was
}

TEST_CASE("SqliteStore.refuses_a_file_that_is_not_a_database" * doctest::timeout(10)) {
  SqliteFactory factory;
  {
    std::ofstream file(factory.db_path());
    for (int i = 0; i < 100; ++i) file << "this is a text file, not a database\n";
  }
  const auto message = open_error(options_for(factory.db_path()));
  CHECK(message.find(factory.db_path()) == 0);
  CHECK(message.find("not a database") != std::string::npos);
}

TEST_CASE("SqliteStore.names_a_path_it_cannot_open" * doctest::timeout(10)) {
  SqliteFactory factory;
  const auto path = (factory.dir.path() / "missing-dir" / "podflow.db").string();
  const auto message = open_error(options_for(path));
  CHECK(message.find(path + ": cannot open the run database") == 0);
}
