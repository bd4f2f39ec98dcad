// The in-memory run store: the SQLite store's behaviour without a disk, for tests and benchmarks.
#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "podflow/engine/store.hpp"
#include "sqlite_error.hpp"
#include "store_writer.hpp"

namespace podflow::engine {
namespace {

using TaskKey = std::pair<std::string, std::string>;       // run_id, task_id
using TryKey = std::tuple<std::string, std::string, int>;  // run_id, task_id, try_number
using ResourceKey = std::pair<std::string, std::string>;   // kind, name
using MetricKey = std::tuple<std::string, std::string, std::string, std::int64_t>;

class MemoryStore final : public RunStore, private detail::StoreBackend {
 public:
  void submit(StoreBatch batch, CommitHandler on_commit) override {
    writer_.submit(std::move(batch), std::move(on_commit));
  }
  void flush() override { writer_.flush(); }

  std::optional<RunRecord> get_run(const std::string& run_id) const override {
    std::lock_guard lock(mutex_);
    const auto it = runs_.find(run_id);
    if (it == runs_.end()) return std::nullopt;
    return it->second;
  }

  std::vector<RunRecord> list_runs(const RunFilter& filter) const override {
    std::lock_guard lock(mutex_);
    std::vector<RunRecord> runs;
    for (const auto& [id, run] : runs_) {
      if (filter.workflow.empty() || run.workflow == filter.workflow) runs.push_back(run);
    }
    std::sort(runs.begin(), runs.end(), [](const RunRecord& a, const RunRecord& b) {
      return std::tie(a.created_at, a.id) > std::tie(b.created_at, b.id);
    });
    if (filter.limit > 0 && runs.size() > static_cast<std::size_t>(filter.limit)) {
      runs.resize(static_cast<std::size_t>(filter.limit));
    }
    return runs;
  }

  std::vector<TaskRecord> get_tasks(const std::string& run_id) const override {
    std::lock_guard lock(mutex_);
    std::vector<TaskRecord> tasks;
    for (auto it = tasks_.lower_bound(TaskKey{run_id, ""});
         it != tasks_.end() && it->first.first == run_id; ++it) {
      tasks.push_back(it->second);
    }
    return tasks;
  }

  std::vector<TryRecord> get_tries(const std::string& run_id,
                                   const std::string& task_id) const override {
    std::lock_guard lock(mutex_);
    std::vector<TryRecord> tries;
    for (auto it = tries_.lower_bound(TryKey{run_id, task_id, std::numeric_limits<int>::min()});
         it != tries_.end() && std::get<0>(it->first) == run_id &&
         std::get<1>(it->first) == task_id;
         ++it) {
      tries.push_back(it->second);
    }
    return tries;
  }

  std::vector<ResourceRecord> list_resources(const ResourceFilter& filter) const override {
    std::lock_guard lock(mutex_);
    std::vector<ResourceRecord> out;
    for (const auto& [key, resource] : resources_) {
      if ((filter.kind.empty() || resource.kind == filter.kind) &&
          (filter.run_id.empty() || resource.run_id == filter.run_id) &&
          (filter.task_id.empty() || resource.task_id == filter.task_id)) {
        out.push_back(resource);
      }
    }
    std::sort(out.begin(), out.end(), [](const ResourceRecord& a, const ResourceRecord& b) {
      return std::tie(a.created_at, a.name) < std::tie(b.created_at, b.name);
    });
    return out;
  }

  std::vector<TokenRecord> list_tokens() const override {
    std::lock_guard lock(mutex_);
    std::vector<TokenRecord> out;
    for (const auto& [id, token] : tokens_) out.push_back(token);
    std::sort(out.begin(), out.end(), [](const TokenRecord& a, const TokenRecord& b) {
      return std::tie(a.created_at, a.id) < std::tie(b.created_at, b.id);
    });
    return out;
  }

  std::optional<TokenRecord> find_token(const std::string& hash) const override {
    std::lock_guard lock(mutex_);
    for (const auto& [id, token] : tokens_) {
      if (token.hash == hash) return token;
    }
    return std::nullopt;
  }

  std::vector<MetricPoint> list_metrics(const std::string& run_id,
                                        const std::string& task_id) const override {
    std::lock_guard lock(mutex_);
    std::vector<MetricPoint> out;
    for (auto it = metrics_.lower_bound(MetricKey{run_id, task_id, "", INT64_MIN});
         it != metrics_.end() && std::get<0>(it->first) == run_id &&
         std::get<1>(it->first) == task_id;
         ++it) {
      out.push_back(it->second);
    }
    return out;
  }

  bool acquire_lease(const std::string& run_id, const std::string& owner, EpochMillis now,
                     EpochMillis lease_expires_at, Takeover mode) override {
    return writer_.acquire_lease(detail::LeaseRequest{.run_id = run_id,
                                                      .owner = owner,
                                                      .now = now,
                                                      .lease_expires_at = lease_expires_at,
                                                      .mode = mode});
  }

 private:
  void commit_group(std::span<const StoreBatch* const> batches,
                    std::span<std::error_code> results) override {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < batches.size(); ++i) {
      results[i] = check_foreign_keys(*batches[i]);
      if (!results[i]) apply(*batches[i]);
    }
  }

  bool acquire_lease(const detail::LeaseRequest& request) override {
    std::lock_guard lock(mutex_);
    const auto it = runs_.find(request.run_id);
    if (it == runs_.end()) return false;
    auto& run = it->second;
    // The same condition as the SQLite store's: a lease is live while now < lease_expires_at.
    const bool free = request.mode == Takeover::force || run.owner.empty() ||
                      run.owner == request.owner || run.lease_expires_at <= request.now;
    if (!free) return false;
    run.owner = request.owner;
    run.lease_expires_at = request.lease_expires_at;
    return true;
  }

  // The foreign keys of the SQLite schema, reported with SQLite's code so callers cannot tell the
  // stores apart: a task needs its run, a try needs its task (written before or in the same batch).
  std::error_code check_foreign_keys(const StoreBatch& batch) const {
    if (!batch.fence_owner.empty()) {
      const auto run = runs_.find(batch.fence_run);
      if (run != runs_.end() && run->second.owner != batch.fence_owner) {
        return make_error_code(StoreErrc::lease_lost);
      }
    }
    std::set<std::string> batch_runs;
    for (const auto& run : batch.runs) batch_runs.insert(run.id);
    std::set<TaskKey> batch_tasks;
    for (const auto& task : batch.tasks) {
      if (!runs_.contains(task.run_id) && !batch_runs.contains(task.run_id)) {
        return detail::make_sqlite_error(SQLITE_CONSTRAINT_FOREIGNKEY);
      }
      batch_tasks.insert({task.run_id, task.task_id});
    }
    for (const auto& attempt : batch.tries) {
      const TaskKey key{attempt.run_id, attempt.task_id};
      if (!tasks_.contains(key) && !batch_tasks.contains(key)) {
        return detail::make_sqlite_error(SQLITE_CONSTRAINT_FOREIGNKEY);
      }
    }
    for (const auto& point : batch.metrics) {
      const TaskKey key{point.run_id, point.task_id};
      if (!tasks_.contains(key) && !batch_tasks.contains(key)) {
        return detail::make_sqlite_error(SQLITE_CONSTRAINT_FOREIGNKEY);
      }
    }
    return {};
  }

  void apply(const StoreBatch& batch) {
    for (const auto& run : batch.runs) runs_.insert_or_assign(run.id, run);
    for (const auto& task : batch.tasks) {
      tasks_.insert_or_assign(TaskKey{task.run_id, task.task_id}, task);
    }
    for (const auto& attempt : batch.tries) {
      tries_.insert_or_assign(TryKey{attempt.run_id, attempt.task_id, attempt.try_number}, attempt);
    }
    for (const auto& resource : batch.resources) {
      resources_.insert_or_assign(ResourceKey{resource.kind, resource.name}, resource);
    }
    for (const auto& point : batch.metrics) {
      metrics_.insert_or_assign(MetricKey{point.run_id, point.task_id, point.name, point.step},
                                point);
    }
    for (const auto& token : batch.tokens) tokens_.insert_or_assign(token.id, token);
    for (const auto& lease : batch.leases) {
      const auto it = runs_.find(lease.run_id);
      if (it == runs_.end()) continue;  // like an UPDATE that matches no row
      it->second.owner = lease.owner;
      it->second.lease_expires_at = lease.lease_expires_at;
    }
  }

  mutable std::mutex mutex_;  // guards the maps: the writer changes them, any thread reads
  std::map<std::string, RunRecord> runs_;
  std::map<TaskKey, TaskRecord> tasks_;  // ordered: get_tasks returns them by task_id
  std::map<TryKey, TryRecord> tries_;
  std::map<ResourceKey, ResourceRecord> resources_;
  std::map<MetricKey, MetricPoint> metrics_;  // ordered: by run, task, name, step
  std::map<std::string, TokenRecord> tokens_;
  // Last: its destructor commits what is queued and joins while the maps still exist.
  detail::StoreWriter writer_{*this};
};

}  // namespace

std::unique_ptr<RunStore> make_memory_store() { return std::make_unique<MemoryStore>(); }

}  // namespace podflow::engine
