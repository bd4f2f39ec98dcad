// Executor benchmark: end-to-end time of noop DAGs (chain, fan-out/fan-in, layered random) with the
// durable SQLite store and the in-memory store, the latency from an upstream's committed success to
// its downstream running, and peak memory. One case per process so memory figures stay separate.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "podflow/engine/executor.hpp"
#include "podflow/engine/operator.hpp"
#include "podflow/engine/store.hpp"

namespace {

using namespace podflow;
using namespace podflow::engine;
using SteadyTime = std::chrono::steady_clock::time_point;

// Task ids are "t<index>", so timings go into flat vectors.
std::size_t task_index(const std::string& id) { return std::stoul(id.substr(1)); }

struct Timings {
  explicit Timings(std::size_t n) : committed(n), started(n) {}
  std::mutex mutex;
  std::vector<SteadyTime> committed;  // when the batch holding the task's success committed
  std::vector<SteadyTime> started;    // when the task's operator began
};

class TimedNoop final : public Operator {
 public:
  explicit TimedNoop(Timings& timings) : timings_(timings) {}
  std::string_view name() const override { return "noop"; }
  const OperatorSchema& schema() const override { return schema_; }
  boost::asio::awaitable<TaskOutcome> execute(TaskContext ctx) const override {
    const auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(timings_.mutex);
      timings_.started[task_index(ctx.task_id)] = now;
    }
    co_return TaskOutcome::success();
  }

 private:
  Timings& timings_;
  OperatorSchema schema_;
};

// Forwards to the real store and notes when each task's success became durable.
class TimedStore final : public RunStore {
 public:
  TimedStore(RunStore& inner, Timings& timings) : inner_(inner), timings_(timings) {}
  void submit(StoreBatch batch, CommitHandler on_commit) override {
    std::vector<std::size_t> succeeded;
    for (const auto& task : batch.tasks) {
      if (task.state == TaskState::success) succeeded.push_back(task_index(task.task_id));
    }
    inner_.submit(std::move(batch), [this, succeeded = std::move(succeeded),
                                     on_commit = std::move(on_commit)](std::error_code ec) {
      const auto now = std::chrono::steady_clock::now();
      {
        std::lock_guard lock(timings_.mutex);
        for (auto i : succeeded) timings_.committed[i] = now;
      }
      on_commit(ec);
    });
  }
  void flush() override { inner_.flush(); }
  std::optional<RunRecord> get_run(const std::string& id) const override {
    return inner_.get_run(id);
  }
  std::vector<RunRecord> list_runs(const RunFilter& f) const override {
    return inner_.list_runs(f);
  }
  std::vector<TaskRecord> get_tasks(const std::string& id) const override {
    return inner_.get_tasks(id);
  }
  std::vector<TryRecord> get_tries(const std::string& r, const std::string& t) const override {
    return inner_.get_tries(r, t);
  }
  std::vector<ResourceRecord> list_resources(const ResourceFilter& f) const override {
    return inner_.list_resources(f);
  }
  std::vector<MetricPoint> list_metrics(const std::string& r, const std::string& t) const override {
    return inner_.list_metrics(r, t);
  }
  std::vector<TokenRecord> list_tokens() const override { return inner_.list_tokens(); }
  std::optional<TokenRecord> find_token(const std::string& hash) const override {
    return inner_.find_token(hash);
  }
  bool acquire_lease(const std::string& r, const std::string& o, EpochMillis n, EpochMillis e,
                     Takeover m) override {
    return inner_.acquire_lease(r, o, n, e, m);
  }

 private:
  RunStore& inner_;
  Timings& timings_;
};

// deps[i] lists the upstream indices of task i.
using Dag = std::vector<std::vector<std::size_t>>;

Dag chain(std::size_t n) {
  Dag dag(n);
  for (std::size_t i = 1; i < n; ++i) dag[i] = {i - 1};
  return dag;
}

// One root, `width` parallel tasks, one join.
Dag fan(std::size_t width) {
  Dag dag(width + 2);
  for (std::size_t i = 1; i <= width; ++i) dag[i] = {0};
  for (std::size_t i = 1; i <= width; ++i) dag[width + 1].push_back(i);
  return dag;
}

// `n` tasks in layers of ~100; each task depends on 1-3 random tasks of the previous layer.
Dag layered(std::size_t n) {
  std::mt19937 rng(42);
  constexpr std::size_t kLayer = 100;
  Dag dag(n);
  for (std::size_t i = kLayer; i < n; ++i) {
    const std::size_t layer_start = (i / kLayer - 1) * kLayer;
    const std::size_t edges = 1 + rng() % 3;
    for (std::size_t e = 0; e < edges; ++e) {
      const std::size_t dep = layer_start + rng() % kLayer;
      if (std::find(dag[i].begin(), dag[i].end(), dep) == dag[i].end()) dag[i].push_back(dep);
    }
  }
  return dag;
}

long peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

int run_case(const std::string& shape, const std::string& store_kind) {
  const Dag dag = shape == "chain"     ? chain(1000)
                  : shape == "fan"     ? fan(2000)
                  : shape == "layered" ? layered(10000)
                                       : Dag{};
  if (dag.empty()) {
    std::fprintf(stderr, "usage: executor_bench chain|fan|layered sqlite|memory\n");
    return 2;
  }
  const auto home =
      std::filesystem::temp_directory_path() / ("podflow-bench-" + std::to_string(::getpid()));
  std::filesystem::remove_all(home);
  std::filesystem::create_directories(home);

  std::unique_ptr<RunStore> inner;
  if (store_kind == "sqlite") {
    auto opened =
        open_sqlite_store({.path = (home / "podflow.db").string(), .migrate_to_version = 0});
    if (auto* error = std::get_if<StoreOpenError>(&opened)) {
      std::fprintf(stderr, "%s\n", error->message.c_str());
      return 1;
    }
    inner = std::move(std::get<std::unique_ptr<RunStore>>(opened));
  } else {
    inner = make_memory_store();
  }
  Timings timings(dag.size());
  TimedStore store(*inner, timings);
  auto op = std::make_shared<TimedNoop>(timings);
  auto workflow = std::make_shared<Workflow>();
  workflow->name = "bench";
  for (std::size_t i = 0; i < dag.size(); ++i) {
    TaskSpec task;
    task.id = "t" + std::to_string(i);
    task.operator_name = "noop";
    task.op = op;
    for (auto d : dag[i]) task.depends.push_back("t" + std::to_string(d));
    workflow->tasks.push_back(std::move(task));
  }

  const char* threads_env = std::getenv("PODFLOW_BENCH_THREADS");
  boost::asio::thread_pool pool(threads_env ? static_cast<std::size_t>(std::atoi(threads_env))
                                            : std::max(2U, std::thread::hardware_concurrency()));
  ExecutorOptions options;
  options.home = home;
  options.masker = std::make_shared<SecretMasker>();
  Executor executor(pool.get_executor(), store, make_system_clock(), options);
  const auto begin = std::chrono::steady_clock::now();
  auto run = executor.start(RunRequest{workflow, Json::object(), "bench-run", ""});
  const RunRecord result = run->wait();
  const auto end = std::chrono::steady_clock::now();
  pool.join();

  // Latency from an upstream's committed success to each downstream starting (the last upstream to
  // commit is the one that made it ready).
  std::vector<double> latencies_us;
  for (std::size_t i = 0; i < dag.size(); ++i) {
    if (dag[i].empty()) continue;
    SteadyTime ready{};
    for (auto d : dag[i]) ready = std::max(ready, timings.committed[d]);
    latencies_us.push_back(
        std::chrono::duration<double, std::micro>(timings.started[i] - ready).count());
  }
  std::sort(latencies_us.begin(), latencies_us.end());
  auto pct = [&](double p) {
    return latencies_us.empty() ? 0.0
                                : latencies_us[static_cast<std::size_t>(
                                      p * static_cast<double>(latencies_us.size() - 1))];
  };
  const double total_ms = std::chrono::duration<double, std::milli>(end - begin).count();
  std::printf(
      "%-8s %-6s tasks=%-6zu state=%-8s total=%8.1f ms  per-task=%6.1f us  "
      "commit->start p50=%6.0f us p99=%6.0f us  peak-rss=%ld KiB\n",
      shape.c_str(), store_kind.c_str(), dag.size(), std::string(to_string(result.state)).c_str(),
      total_ms, total_ms * 1000.0 / static_cast<double>(dag.size()), pct(0.5), pct(0.99),
      peak_rss_kib());
  inner.reset();
  std::filesystem::remove_all(home);
  return result.state == RunState::success ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: executor_bench chain|fan|layered sqlite|memory\n");
    return 2;
  }
  return run_case(argv[1], argv[2]);
}
