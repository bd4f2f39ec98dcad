// Executor behaviour: trigger rules, retries and delays, timeouts, cancellation, outputs, hooks,
// secrets and resume, on a real thread pool with a manual clock (no sleeps).
#include "podflow/engine/executor.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <future>
#include <mutex>

#include "podflow/engine/operator.hpp"

namespace podflow::engine {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Records every try that started: "task#try".
struct StartLog {
  std::mutex mutex;
  std::vector<std::string> starts;
  std::vector<Json> args;
  void add(const TaskContext& ctx) {
    std::lock_guard lock(mutex);
    starts.push_back(ctx.task_id + "#" + std::to_string(ctx.try_number));
    args.push_back(ctx.args);
  }
  std::vector<std::string> snapshot() {
    std::lock_guard lock(mutex);
    return starts;
  }
};

// test.op: `fail_times` tries fail with `kind`, then it succeeds with `outputs`; `hang: true` (or
// the first `hang_tries` tries) waits until cancelled.
class TestOperator final : public Operator {
 public:
  explicit TestOperator(std::shared_ptr<StartLog> log) : log_(std::move(log)) {
    schema_.args = {{"outputs", ValueType::object, false, Json::object(), ""},
                    {"fail_times", ValueType::integer, false, 0, ""},
                    {"kind", ValueType::string, false, "task_failed", ""},
                    {"retry_after_ms", ValueType::integer, false, 0, ""},
                    {"hang", ValueType::boolean, false, false, ""},
                    {"hang_tries", ValueType::integer, false, 0, ""},
                    {"value", ValueType::any, false, nullptr, ""}};
    schema_.open_outputs = true;
  }
  std::string_view name() const override { return "test.op"; }
  const OperatorSchema& schema() const override { return schema_; }
  asio::awaitable<TaskOutcome> execute(TaskContext ctx) const override {
    log_->add(ctx);
    ctx.log->write("try " + std::to_string(ctx.try_number) + " of " + ctx.task_id + "\n");
    if (ctx.args.value("hang", false) || ctx.try_number <= ctx.args.value("hang_tries", 0)) {
      asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(24));
      co_await timer.async_wait(asio::use_awaitable);  // throws operation_aborted when cancelled
    }
    if (ctx.try_number <= ctx.args.value("fail_times", 0)) {
      const auto kind = parse_error_kind(ctx.args.value("kind", "task_failed"));
      TaskError error{kind.value_or(ErrorKind::task_failed), "planned failure"};
      const int retry_after = ctx.args.value("retry_after_ms", 0);
      if (retry_after > 0) error.retry_after = std::chrono::milliseconds(retry_after);
      co_return TaskOutcome{Json::object(), error};
    }
    co_return TaskOutcome::success(ctx.args.value("outputs", Json::object()));
  }

 private:
  std::shared_ptr<StartLog> log_;
  OperatorSchema schema_;
};

// Collects task states and wakes the test when something changes.
class Recorder final : public RunObserver {
 public:
  void on_task_state(const RunRecord&, const TaskRecord& task) override {
    std::lock_guard lock(mutex_);
    states_[task.task_id] = task.state;
    records_[task.task_id] = task;
    history_.push_back(task.task_id + ":" + std::string(to_string(task.state)));
    changed_.notify_all();
  }
  // Waits (in real time, bounded) until `task` has entered `state` `occurrence` times.
  bool wait_for(const std::string& task, TaskState state, int occurrence = 1) {
    const std::string entry = task + ":" + std::string(to_string(state));
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 20s, [&] {
      return std::count(history_.begin(), history_.end(), entry) >= occurrence;
    });
  }
  TaskRecord last(const std::string& task) {
    std::lock_guard lock(mutex_);
    return records_[task];
  }
  std::vector<std::string> history() {
    std::lock_guard lock(mutex_);
    return history_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, TaskState> states_;
  std::map<std::string, TaskRecord> records_;
  std::vector<std::string> history_;
};

struct TaskDef {
  std::string id;
  std::vector<std::string> depends = {};
  Json with = Json::object();
  TriggerRule rule = TriggerRule::all_success;
  int retries = 0;
  std::optional<Millis> timeout = std::nullopt;
};

struct Harness {
  Harness() : clock(std::make_shared<ManualClock>(SysTime(std::chrono::seconds(1'800'000'000)))) {
    home =
        std::filesystem::temp_directory_path() /
        ("podflow-executor-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(home);
    store = make_memory_store();
    op = std::make_shared<TestOperator>(starts);
  }
  ~Harness() {
    pool.join();
    std::filesystem::remove_all(home);
  }

  std::shared_ptr<Workflow> workflow(const std::vector<TaskDef>& defs) {
    auto wf = std::make_shared<Workflow>();
    wf->name = "test";
    for (const auto& def : defs) {
      TaskSpec task;
      task.id = def.id;
      task.operator_name = "test.op";
      task.op = op;
      task.depends = def.depends;
      task.trigger_rule = def.rule;
      task.retry.retries = def.retries;
      task.retry.retry_delay = 10s;
      task.retry.retry_backoff = 2;
      task.retry.max_retry_delay = 35s;
      task.timeout = def.timeout;
      task.with = def.with.is_null() ? Json::object() : def.with;
      wf->tasks.push_back(task);
    }
    return wf;
  }

  std::shared_ptr<RunHandle> start(std::shared_ptr<const Workflow> wf,
                                   Json params = Json::object()) {
    ExecutorOptions options;
    options.home = home;
    options.owner = "test-owner";
    options.lease_renew_every = 1000h;
    options.random01 = [] { return 1.0; };  // no jitter: delays are the capped backoff
    options.masker = std::make_shared<SecretMasker>();
    executor = std::make_unique<Executor>(pool.get_executor(), *store, clock, options);
    return executor->start(RunRequest{std::move(wf), std::move(params), "run1", ""}, recorder);
  }

  TaskRecord task(const std::string& id) {
    store->flush();
    for (auto& t : store->get_tasks("run1")) {
      if (t.task_id == id) return t;
    }
    FAIL("no task " << id);
    return {};
  }

  static inline int counter = 0;
  asio::thread_pool pool{2};
  std::shared_ptr<ManualClock> clock;
  std::filesystem::path home;
  std::unique_ptr<RunStore> store;
  std::shared_ptr<StartLog> starts = std::make_shared<StartLog>();
  std::shared_ptr<TestOperator> op;
  std::shared_ptr<Recorder> recorder = std::make_shared<Recorder>();
  std::unique_ptr<Executor> executor;
};

const Json kFail = Json{{"fail_times", 99}};

TEST_CASE("Executor.chain runs in order and succeeds" * doctest::timeout(30)) {
  Harness h;
  auto run = h.start(h.workflow({{"a"}, {"b", {"a"}}, {"c", {"b"}}}));
  const RunRecord final_record = run->wait();
  CHECK(final_record.state == RunState::success);
  CHECK(h.starts->snapshot() == std::vector<std::string>{"a#1", "b#1", "c#1"});
  h.store->flush();
  const auto stored = h.store->get_run("run1");
  REQUIRE(stored);
  CHECK(stored->state == RunState::success);
  CHECK(stored->owner.empty());
  for (const auto& id : {"a", "b", "c"}) CHECK(h.task(id).state == TaskState::success);
  // The try log exists on disk with what the operator wrote.
  std::ifstream log(h.home / "logs" / "run1" / "b" / "1.log");
  std::string line;
  std::getline(log, line);
  CHECK(line == "try 1 of b");
}

struct RuleCase {
  TriggerRule rule;
  std::vector<std::string> upstream;  // "ok", "fail" or "skip" for each upstream
  TaskState expected;
};

TEST_CASE("Executor.trigger rules decide the downstream state" * doctest::timeout(60)) {
  const std::vector<RuleCase> cases = {
      {TriggerRule::all_success, {"ok", "ok"}, TaskState::success},
      {TriggerRule::all_success, {"ok", "fail"}, TaskState::upstream_failed},
      {TriggerRule::all_success, {"ok", "skip"}, TaskState::skipped},
      {TriggerRule::all_failed, {"fail", "fail"}, TaskState::success},
      {TriggerRule::all_failed, {"ok", "fail"}, TaskState::skipped},
      {TriggerRule::all_failed, {"fail", "skip"}, TaskState::skipped},
      {TriggerRule::all_done, {"ok", "fail"}, TaskState::success},
      {TriggerRule::all_done, {"skip", "fail"}, TaskState::success},
      {TriggerRule::one_success, {"ok", "fail"}, TaskState::success},
      {TriggerRule::one_success, {"fail", "fail"}, TaskState::upstream_failed},
      {TriggerRule::one_success, {"skip", "skip"}, TaskState::skipped},
      {TriggerRule::one_failed, {"ok", "fail"}, TaskState::success},
      {TriggerRule::one_failed, {"ok", "ok"}, TaskState::skipped},
      {TriggerRule::one_failed, {"skip", "fail"}, TaskState::success},
      {TriggerRule::none_failed, {"ok", "skip"}, TaskState::success},
      {TriggerRule::none_failed, {"ok", "fail"}, TaskState::upstream_failed},
      {TriggerRule::none_failed, {"skip", "skip"}, TaskState::success},
      {TriggerRule::none_failed_min_one_success, {"ok", "skip"}, TaskState::success},
      {TriggerRule::none_failed_min_one_success, {"skip", "skip"}, TaskState::skipped},
      {TriggerRule::none_failed_min_one_success, {"fail", "ok"}, TaskState::upstream_failed},
      {TriggerRule::always, {"fail", "skip"}, TaskState::success},
  };
  for (const auto& c : cases) {
    CAPTURE(to_string(c.rule));
    CAPTURE(c.upstream[0] + "," + c.upstream[1]);
    Harness h;
    std::vector<TaskDef> defs = {{"root"}};
    std::vector<std::string> ups;
    for (std::size_t i = 0; i < c.upstream.size(); ++i) {
      const std::string id = "u" + std::to_string(i);
      ups.push_back(id);
      if (c.upstream[i] == "ok") defs.push_back({id, {"root"}});
      if (c.upstream[i] == "fail") defs.push_back({id, {"root"}, kFail});
      // one_failed over a succeeding root is skipped: an upstream that ends skipped.
      if (c.upstream[i] == "skip") defs.push_back({id, {"root"}, {}, TriggerRule::one_failed});
    }
    defs.push_back({"down", ups, {}, c.rule});
    auto run = h.start(h.workflow(defs));
    run->wait();
    CHECK(h.task("down").state == c.expected);
  }
}

TEST_CASE("Executor.one_success and one_failed decide without waiting for the rest" *
          doctest::timeout(30)) {
  for (const auto rule : {TriggerRule::one_success, TriggerRule::one_failed}) {
    CAPTURE(to_string(rule));
    Harness h;
    const Json first = rule == TriggerRule::one_success ? Json::object() : kFail;
    auto run = h.start(h.workflow({{"quick", {}, first},
                                   {"slow", {}, Json{{"hang", true}}},
                                   {"down", {"quick", "slow"}, {}, rule}}));
    // `slow` never ends on its own: `down` can only finish because one upstream was enough.
    REQUIRE(h.recorder->wait_for("down", TaskState::success));
    CHECK(h.task("slow").state == TaskState::running);
    run->cancel();
    CHECK(run->wait().state == RunState::cancelled);
  }
}

TEST_CASE("Executor.all_done and always wait for an upstream that is still running" *
          doctest::timeout(30)) {
  for (const auto rule : {TriggerRule::all_done, TriggerRule::always}) {
    CAPTURE(to_string(rule));
    Harness h;
    auto run = h.start(h.workflow({{"quick", {}, kFail},
                                   {"slow", {}, Json{{"hang", true}}},
                                   {"cleanup", {"quick", "slow"}, {}, rule}}));
    REQUIRE(h.recorder->wait_for("quick", TaskState::failed));
    REQUIRE(h.recorder->wait_for("slow", TaskState::running));
    // Deciding on `quick`'s end happened in the event that recorded it: `cleanup` stays waiting
    // (Airflow's `always` would have started it). Cancelling ends `slow`, and then it runs.
    CHECK(h.task("cleanup").state == TaskState::none);
    run->cancel();
    CHECK(run->wait().state == RunState::cancelled);
    CHECK(h.task("cleanup").state == TaskState::success);
    CHECK(h.starts->snapshot().back() == "cleanup#1");
  }
}

TEST_CASE("Executor.a timed-out try is retried" * doctest::timeout(30)) {
  Harness h;
  auto run = h.start(
      h.workflow({{"slow", {}, Json{{"hang_tries", 1}}, TriggerRule::all_success, 1, Millis(5s)}}));
  REQUIRE(h.recorder->wait_for("slow", TaskState::running));
  h.clock->advance(5s);
  REQUIRE(h.recorder->wait_for("slow", TaskState::up_for_retry));
  h.clock->advance(10s);
  CHECK(run->wait().state == RunState::success);
  const auto tries = h.store->get_tries("run1", "slow");
  REQUIRE(tries.size() == 2);
  CHECK(tries[0].error_kind == "timeout");
  CHECK(tries[1].state == TaskState::success);
}

TEST_CASE("Executor.a cleanup task keeps its retries after a cancel" * doctest::timeout(30)) {
  Harness h;
  auto run = h.start(
      h.workflow({{"train", {}, Json{{"hang", true}}},
                  {"terminate", {"train"}, Json{{"fail_times", 1}}, TriggerRule::all_done, 2}}));
  REQUIRE(h.recorder->wait_for("train", TaskState::running));
  run->cancel();
  REQUIRE(h.recorder->wait_for("terminate", TaskState::up_for_retry));
  h.clock->advance(10s);
  const auto final_record = run->wait();
  CHECK(final_record.state == RunState::cancelled);
  CHECK(h.task("terminate").state == TaskState::success);
  CHECK(h.task("terminate").try_number == 2);
}

TEST_CASE("Executor.a failed task fails the run even when an all_done leaf succeeds" *
          doctest::timeout(30)) {
  Harness h;
  auto run = h.start(
      h.workflow({{"train", {}, kFail}, {"cleanup", {"train"}, {}, TriggerRule::all_done}}));
  const auto final_record = run->wait();
  CHECK(final_record.state == RunState::failed);
  CHECK(final_record.reason == "task 'train' failed: planned failure");
  CHECK(h.task("cleanup").state == TaskState::success);
}

TEST_CASE("Executor.retries wait the backoff delay and record every try" * doctest::timeout(30)) {
  Harness h;
  auto run =
      h.start(h.workflow({{"flaky", {}, Json{{"fail_times", 3}}, TriggerRule::all_success, 4}}));
  const SysTime t0 = h.clock->now();
  // 10s, 20s, then 40s capped at 35s.
  int failures = 0;
  for (auto expected : {10s, 20s, 35s}) {
    REQUIRE(h.recorder->wait_for("flaky", TaskState::up_for_retry, ++failures));
    const TaskRecord waiting = h.recorder->last("flaky");
    CHECK(waiting.next_try_at - to_epoch_millis(h.clock->now()) ==
          std::chrono::milliseconds(expected).count());
    h.clock->advance(expected);
  }
  const auto final_record = run->wait();
  CHECK(final_record.state == RunState::success);
  CHECK(h.clock->now() - t0 == 65s);
  const auto task = h.task("flaky");
  CHECK(task.try_number == 4);
  const auto tries = h.store->get_tries("run1", "flaky");
  REQUIRE(tries.size() == 4);
  CHECK(tries[0].state == TaskState::failed);
  CHECK(tries[0].error_kind == "task_failed");
  CHECK(tries[3].state == TaskState::success);
}

TEST_CASE("Executor.kinds outside the retry table fail at once" * doctest::timeout(30)) {
  for (const char* kind : {"auth", "bad_input", "client", "cost_cap"}) {
    CAPTURE(kind);
    Harness h;
    auto run = h.start(h.workflow(
        {{"t", {}, Json{{"fail_times", 5}, {"kind", kind}}, TriggerRule::all_success, 3}}));
    CHECK(run->wait().state == RunState::failed);
    CHECK(h.task("t").try_number == 1);
    CHECK(h.task("t").error_kind == kind);
  }
}

TEST_CASE("Executor.retry_on narrows the retried kinds" * doctest::timeout(30)) {
  Harness h;
  auto wf = h.workflow(
      {{"t", {}, Json{{"fail_times", 5}, {"kind", "server"}}, TriggerRule::all_success, 3}});
  wf->tasks[0].retry.retry_on = std::vector<ErrorKind>{ErrorKind::network};
  auto run = h.start(wf);
  CHECK(run->wait().state == RunState::failed);
  CHECK(h.task("t").try_number == 1);
}

TEST_CASE("Executor.the default retry table and retry_on" * doctest::timeout(5)) {
  using enum ErrorKind;
  const std::vector<ErrorKind> retried = {task_failed,  timeout,  network,  server,
                                          rate_limited, capacity, preempted};
  RetryPolicy policy;
  for (const auto kind : all_error_kinds()) {
    CAPTURE(to_string(kind));
    const bool expected = std::find(retried.begin(), retried.end(), kind) != retried.end();
    CHECK(retried_by_default(kind) == expected);
    CHECK(policy.retries_kind(kind) == expected);
  }
  CHECK(all_error_kinds().size() == 12);
  policy.retry_on = std::vector<ErrorKind>{timeout, auth};  // the loader refuses auth here
  CHECK(policy.retries_kind(timeout));
  CHECK_FALSE(policy.retries_kind(network));
  CHECK_FALSE(policy.retries_kind(auth));
  policy.retry_on = std::vector<ErrorKind>{};  // `retry_on: []`: nothing is retried
  CHECK_FALSE(policy.retries_kind(task_failed));
}

TEST_CASE("Executor.rate limited tries wait at least Retry-After" * doctest::timeout(30)) {
  Harness h;
  auto run = h.start(
      h.workflow({{"t",
                   {},
                   Json{{"fail_times", 1}, {"kind", "rate_limited"}, {"retry_after_ms", 60000}},
                   TriggerRule::all_success,
                   1}}));
  REQUIRE(h.recorder->wait_for("t", TaskState::up_for_retry));
  CHECK(h.recorder->last("t").next_try_at - to_epoch_millis(h.clock->now()) == 60'000);
  h.clock->advance(60s);
  CHECK(run->wait().state == RunState::success);
}

TEST_CASE("Executor.retry delay grows, caps and jitters" * doctest::timeout(5)) {
  RetryPolicy policy;
  policy.retry_delay = 30s;
  policy.retry_backoff = 2;
  policy.max_retry_delay = 100s;
  CHECK(compute_retry_delay(policy, 1, 1.0) == 30s);
  CHECK(compute_retry_delay(policy, 2, 1.0) == 60s);
  CHECK(compute_retry_delay(policy, 3, 1.0) == 100s);
  CHECK(compute_retry_delay(policy, 30, 1.0) == 100s);
  CHECK(compute_retry_delay(policy, 2, 0.5) == 30s);
  CHECK(compute_retry_delay(policy, 2, 0.0) == 0s);
}

TEST_CASE("Executor.a try that outlives its timeout fails with kind timeout" *
          doctest::timeout(30)) {
  Harness h;
  auto run = h.start(
      h.workflow({{"slow", {}, Json{{"hang", true}}, TriggerRule::all_success, 0, Millis(5s)},
                  {"after", {"slow"}}}));
  REQUIRE(h.recorder->wait_for("slow", TaskState::running));
  h.clock->advance(5s);  // a timer armed after this still fires: its time has passed
  const auto final_record = run->wait();
  CHECK(final_record.state == RunState::failed);
  CHECK(h.task("slow").state == TaskState::failed);
  CHECK(h.task("slow").error_kind == "timeout");
  CHECK(h.task("after").state == TaskState::upstream_failed);
}

TEST_CASE("Executor.cancel stops running tasks and still runs cleanup" * doctest::timeout(30)) {
  Harness h;
  auto run = h.start(h.workflow({{"train", {}, Json{{"hang", true}}},
                                 {"log", {"train"}},
                                 {"terminate", {"log"}, {}, TriggerRule::all_done}}));
  REQUIRE(h.recorder->wait_for("train", TaskState::running));
  run->cancel();
  const auto final_record = run->wait();
  CHECK(final_record.state == RunState::cancelled);
  CHECK(h.task("train").state == TaskState::failed);
  CHECK(h.task("train").error_kind == "cancelled");
  CHECK(h.task("log").state == TaskState::skipped);
  CHECK(h.task("terminate").state == TaskState::success);
}

TEST_CASE("Executor.run timeout fails the run and runs cleanup" * doctest::timeout(30)) {
  Harness h;
  auto wf = h.workflow(
      {{"train", {}, Json{{"hang", true}}}, {"terminate", {"train"}, {}, TriggerRule::all_done}});
  wf->timeout = 1h;
  auto run = h.start(wf);
  REQUIRE(h.recorder->wait_for("train", TaskState::running));
  h.clock->advance(1h);
  const auto final_record = run->wait();
  CHECK(final_record.state == RunState::failed);
  CHECK(final_record.reason == "run timed out after 1h");
  CHECK(h.task("train").error_kind == "timeout");
  CHECK(h.task("terminate").state == TaskState::success);
}

TEST_CASE("Executor.outputs flow to downstream arguments with their JSON type" *
          doctest::timeout(30)) {
  Harness h;
  auto run = h.start(
      h.workflow(
          {{"create", {}, Json{{"outputs", {{"pod_id", "abc123"}, {"gpus", 2}}}}},
           {"wait",
            {"create"},
            Json{{"value", "{{ tasks.create.outputs.gpus }}"},
                 {"outputs",
                  {{"label", "pod {{ tasks.create.outputs.pod_id }} on {{ params.gpu }}"}}}}}}),
      Json{{"gpu", "A100"}});
  CHECK(run->wait().state == RunState::success);
  CHECK(h.task("create").outputs == Json{{"pod_id", "abc123"}, {"gpus", 2}});
  CHECK(h.task("wait").outputs == Json{{"label", "pod abc123 on A100"}});
  std::lock_guard lock(h.starts->mutex);
  REQUIRE(h.starts->args.size() == 2);
  CHECK(h.starts->args[1]["value"] == 2);
}

TEST_CASE("Executor.a template that cannot render fails the task as bad_input" *
          doctest::timeout(30)) {
  Harness h;
  auto run = h.start(h.workflow({{"a"},
                                 {"b",
                                  {"a"},
                                  Json{{"value", "{{ tasks.a.outputs.missing }}"}},
                                  TriggerRule::all_success,
                                  3}}));
  CHECK(run->wait().state == RunState::failed);
  CHECK(h.task("b").error_kind == "bad_input");
  CHECK(h.task("b").try_number == 1);
}

TEST_CASE("Executor.on_failure hooks run only when the run failed" * doctest::timeout(30)) {
  for (bool fail : {true, false}) {
    CAPTURE(fail);
    Harness h;
    auto wf = h.workflow({{"train", {}, fail ? kFail : Json::object()}, {"alert"}, {"celebrate"}});
    wf->on_failure = {"alert"};
    wf->on_success = {"celebrate"};
    auto run = h.start(wf);
    CHECK(run->wait().state == (fail ? RunState::failed : RunState::success));
    CHECK(h.task("alert").state == (fail ? TaskState::success : TaskState::skipped));
    CHECK(h.task("celebrate").state == (fail ? TaskState::skipped : TaskState::success));
  }
}

TEST_CASE("Executor.secret params are masked in stored outputs and params" * doctest::timeout(30)) {
  Harness h;
  auto wf = h.workflow({{"t", {}, Json{{"outputs", {{"echo", "key={{ params.token }}"}}}}}});
  ParamSpec token;
  token.name = "token";
  token.secret = true;
  wf->params.push_back(token);
  auto run = h.start(wf, Json{{"token", "s3cr3t-value"}});
  CHECK(run->wait().state == RunState::success);
  CHECK(h.task("t").outputs == Json{{"echo", "key=***"}});
  CHECK(h.store->get_run("run1")->params == Json{{"token", "***"}});
}

TEST_CASE("Executor.resume keeps finished tasks and retries the interrupted try" *
          doctest::timeout(30)) {
  Harness h;
  auto wf = h.workflow({{"a", {}, Json{{"outputs", {{"n", 1}}}}},
                        {"b", {"a"}, {}, TriggerRule::all_success, 1},
                        {"c", {"b"}, Json{{"value", "{{ tasks.a.outputs.n }}"}}}});
  // The store as a killed owner left it: a succeeded, b running its first try.
  RunRecord run;
  run.id = "run1";
  run.workflow = "test";
  run.state = RunState::running;
  run.owner = "dead-owner";
  TaskRecord a{"run1", "a", TaskState::success, 1, 1, "", "", Json{{"n", 1}}, 1, 2, 0};
  TaskRecord b{"run1", "b", TaskState::running, 1, 2, "", "", Json::object(), 3, 0, 0};
  TaskRecord c{"run1", "c", TaskState::none, 0, 1, "", "", Json::object(), 0, 0, 0};
  StoreBatch batch;
  batch.runs.push_back(run);
  batch.tasks = {a, b, c};
  h.store->submit(batch, [](std::error_code) {});
  h.store->flush();
  REQUIRE(h.store->acquire_lease("run1", "new-owner", 0, 1, RunStore::Takeover::force));

  ExecutorOptions options;
  options.home = h.home;
  options.owner = "new-owner";
  options.lease_renew_every = 1000h;
  options.random01 = [] { return 0.0; };
  options.masker = std::make_shared<SecretMasker>();
  Executor executor(h.pool.get_executor(), *h.store, h.clock, options);
  auto handle = executor.resume(wf, run, {a, b, c}, h.recorder);
  const auto final_record = handle->wait();
  CHECK(final_record.state == RunState::success);
  CHECK(h.starts->snapshot() == std::vector<std::string>{"b#2", "c#1"});
  const auto tries = h.store->get_tries("run1", "b");
  REQUIRE(tries.size() == 2);
  CHECK(tries[0].state == TaskState::failed);
  CHECK(tries[0].error_message.find("podflow stopped while try 1 was running") == 0);
}

}  // namespace
}  // namespace podflow::engine

namespace podflow::engine {
namespace {

TEST_CASE("Executor.on_failure hooks run when the run times out" * doctest::timeout(30)) {
  Harness h;
  auto wf = h.workflow({{"train", {}, Json{{"hang", true}}}, {"alert"}});
  wf->on_failure = {"alert"};
  wf->timeout = 1h;
  auto run = h.start(wf);
  REQUIRE(h.recorder->wait_for("train", TaskState::running));
  h.clock->advance(1h);
  CHECK(run->wait().state == RunState::failed);
  CHECK(h.task("alert").state == TaskState::success);
}

TEST_CASE("Executor.cancel leaves a running cleanup task alone" * doctest::timeout(30)) {
  Harness h;
  auto run = h.start(h.workflow(
      {{"train", {}, kFail},
       {"terminate", {"train"}, Json{{"hang", true}}, TriggerRule::all_done, 0, Millis(10min)}}));
  REQUIRE(h.recorder->wait_for("terminate", TaskState::running));
  run->cancel();
  // The cancel does not reach the cleanup try: only its own 10-minute timeout ends it.
  h.clock->advance(10min);
  CHECK(run->wait().state == RunState::cancelled);
  CHECK(h.task("terminate").error_kind == "timeout");
}

TEST_CASE("Executor.a workflow of hooks only still finishes" * doctest::timeout(30)) {
  Harness h;
  auto wf = h.workflow({{"celebrate"}});
  wf->on_success = {"celebrate"};
  auto run = h.start(wf);
  CHECK(run->wait().state == RunState::success);
  CHECK(h.task("celebrate").state == TaskState::success);
}

TEST_CASE("Executor.a dropped handle does not strand a waiting retry" * doctest::timeout(30)) {
  Harness h;
  std::promise<RunRecord> done;
  {
    auto run =
        h.start(h.workflow({{"t", {}, Json{{"fail_times", 1}}, TriggerRule::all_success, 1}}));
    run->on_done([&](const RunRecord& record) { done.set_value(record); });
    REQUIRE(h.recorder->wait_for("t", TaskState::up_for_retry));
  }
  h.clock->advance(10s);
  CHECK(done.get_future().get().state == RunState::success);
}

}  // namespace
}  // namespace podflow::engine

namespace podflow::engine {
namespace {

// Records a pod intent, then its id, then two metric points, the way runpod operators do.
class RecordingOperator final : public Operator {
 public:
  std::string_view name() const override { return "test.record"; }
  const OperatorSchema& schema() const override { return schema_; }
  asio::awaitable<TaskOutcome> execute(TaskContext ctx) const override {
    ResourceRecord pod;
    pod.kind = "test.pod";
    pod.name = "podflow-" + ctx.recorder->install_id() + "-" + ctx.run_id + "-" + ctx.task_id;
    pod.state = "intent";
    if (auto ec = co_await ctx.recorder->record_resource(pod)) {
      co_return TaskOutcome::failure(ErrorKind::task_failed, ec.message());
    }
    // Committed before the "create call": a crash here leaves the intent to look up by name.
    const auto recorded = ctx.recorder->resources(ctx.task_id);
    if (recorded.size() != 1 || recorded[0].state != "intent") {
      co_return TaskOutcome::failure(ErrorKind::task_failed, "intent not committed");
    }
    pod.external_id = "pod-1";
    pod.state = "created";
    co_await ctx.recorder->record_resource(pod);
    MetricPoint a;
    a.name = "loss";
    a.step = 1;
    a.value = 0.5;
    MetricPoint b = a;
    b.step = 2;
    b.value = 0.25;
    ctx.recorder->record_metrics({a, b});
    co_return TaskOutcome::success(Json{{"pod_name", pod.name}});
  }

 private:
  OperatorSchema schema_;
};

TEST_CASE("Executor.operators record resources durably and metrics in order" *
          doctest::timeout(30)) {
  Harness h;
  auto wf = h.workflow({{"create"}});
  wf->tasks[0].op = std::make_shared<RecordingOperator>();
  auto run = h.start(wf);
  REQUIRE(run->wait().state == RunState::success);
  h.store->flush();
  ResourceFilter filter;
  filter.run_id = "run1";
  const auto pods = h.store->list_resources(filter);
  REQUIRE(pods.size() == 1);
  CHECK(pods[0].task_id == "create");
  CHECK(pods[0].try_number == 1);
  CHECK(pods[0].external_id == "pod-1");
  CHECK(pods[0].state == "created");
  const std::string install_id = load_or_create_install_id(h.home);
  CHECK(install_id.size() == 8);
  CHECK(pods[0].name == "podflow-" + install_id + "-run1-create");
  CHECK(load_or_create_install_id(h.home) == install_id);  // made once
  const auto points = h.store->list_metrics("run1", "create");
  REQUIRE(points.size() == 2);
  CHECK(points[1].value == doctest::Approx(0.25));
  CHECK(points[1].timestamp > 0);
}

}  // namespace
}  // namespace podflow::engine

namespace podflow::engine {
namespace {

TEST_CASE("Executor.a run taken over by another process stops writing" * doctest::timeout(30)) {
  Harness h;
  auto run = h.start(h.workflow(
      {{"t", {}, Json{{"fail_times", 1}}, TriggerRule::all_success, 1}, {"after", {"t"}}}));
  REQUIRE(h.recorder->wait_for("t", TaskState::up_for_retry));
  // The observer hears of the state before its batch is submitted: wait until it is durable.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (h.task("t").state != TaskState::up_for_retry &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  REQUIRE(h.task("t").state == TaskState::up_for_retry);
  // Another process adopts the run while this one waits for the retry (as if it had been paused).
  REQUIRE(h.store->acquire_lease("run1", "intruder", 0, 1, RunStore::Takeover::force));
  h.clock->advance(10s);
  const auto final_record = run->wait();
  CHECK(final_record.state == RunState::failed);
  CHECK(final_record.reason.find("another process took this run over") == 0);
  h.store->flush();
  const auto stored = h.store->get_run("run1");
  REQUIRE(stored);
  CHECK(stored->owner == "intruder");  // nothing of the old owner landed after the takeover
  CHECK(stored->state == RunState::running);
  CHECK(h.task("t").state == TaskState::up_for_retry);
  CHECK(h.starts->snapshot() == std::vector<std::string>{"t#1"});
}

}  // namespace
}  // namespace podflow::engine
