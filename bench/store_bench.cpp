// Measures run store commit throughput: a chain (each batch waits for the previous) and a burst.
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <variant>

#include "podflow/engine/store.hpp"

namespace {

namespace fs = std::filesystem;
using namespace podflow::engine;
using Clock = std::chrono::steady_clock;

constexpr int kChainBatches = 2000;
constexpr int kBurstBatches = 10000;

StoreBatch one_task(int i) {
  TaskRecord task;
  task.run_id = "bench";
  task.task_id = "task-" + std::to_string(i);
  task.state = TaskState::success;
  task.try_number = 1;
  task.outputs = podflow::Json{{"i", i}};
  StoreBatch batch;
  batch.tasks.push_back(std::move(task));
  return batch;
}

// Counts commit handlers and lets the caller wait for a given count.
class Completions {
 public:
  RunStore::CommitHandler handler() {
    return [this](std::error_code ec) {
      {
        std::lock_guard lock(mutex_);
        ++done_;
        if (ec) ++failed_;
      }
      changed_.notify_all();
    };
  }
  void wait_for(int count) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return done_ >= count; });
  }
  int failed() {
    std::lock_guard lock(mutex_);
    return failed_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int done_ = 0;
  int failed_ = 0;
};

void report(const char* store, const char* shape, int batches, Clock::duration elapsed,
            int failed) {
  const double seconds = std::chrono::duration<double>(elapsed).count();
  std::printf("%-7s %-32s %6d batches in %8.3f s = %10.0f commits/s%s\n", store, shape, batches,
              seconds, batches / seconds, failed != 0 ? "  (SOME FAILED)" : "");
}

void bench(const char* name, const std::function<std::unique_ptr<RunStore>()>& open) {
  {
    auto store = open();
    RunRecord run;
    run.id = "bench";
    run.workflow = "bench";
    StoreBatch batch;
    batch.runs = {run};
    store->submit(std::move(batch), nullptr);
    store->flush();
    Completions completions;
    const auto start = Clock::now();
    for (int i = 0; i < kChainBatches; ++i) {
      store->submit(one_task(i), completions.handler());
      completions.wait_for(i + 1);  // like a chain: the next task starts after this commit
    }
    report(name, "chain (each waits for commit)", kChainBatches, Clock::now() - start,
           completions.failed());
  }
  {
    auto store = open();
    RunRecord run;
    run.id = "bench";
    run.workflow = "bench";
    StoreBatch batch;
    batch.runs = {run};
    store->submit(std::move(batch), nullptr);
    store->flush();
    Completions completions;
    const auto start = Clock::now();
    for (int i = 0; i < kBurstBatches; ++i) store->submit(one_task(i), completions.handler());
    completions.wait_for(kBurstBatches);
    report(name, "burst (submitted at once)", kBurstBatches, Clock::now() - start,
           completions.failed());
  }
}

}  // namespace

int main() {
  const auto dir =
      fs::temp_directory_path() / ("podflow-store-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  int file_number = 0;
  bench("sqlite", [&]() -> std::unique_ptr<RunStore> {
    // A fresh file per figure, so one does not measure the other's data.
    SqliteOptions options;
    options.path = (dir / ("podflow-" + std::to_string(file_number++) + ".db")).string();
    auto opened = open_sqlite_store(options);
    if (auto* error = std::get_if<StoreOpenError>(&opened)) {
      std::fprintf(stderr, "%s\n", error->message.c_str());
      std::exit(1);
    }
    return std::move(std::get<std::unique_ptr<RunStore>>(opened));
  });
  bench("memory", [] { return make_memory_store(); });
  std::error_code ignored;
  fs::remove_all(dir, ignored);
}
