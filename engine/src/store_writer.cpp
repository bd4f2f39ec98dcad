// The writer thread shared by the run stores.
#include "store_writer.hpp"

#include <cassert>
#include <utility>

namespace podflow::engine::detail {

StoreWriter::StoreWriter(StoreBackend& backend) : backend_(backend), thread_([this] { run(); }) {}

StoreWriter::~StoreWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_queued_.notify_one();
  thread_.join();
}

void StoreWriter::submit(StoreBatch batch, RunStore::CommitHandler on_commit) {
  {
    std::lock_guard lock(mutex_);
    queue_.emplace_back(PendingBatch{std::move(batch), std::move(on_commit)});
    ++submitted_;
  }
  work_queued_.notify_one();
}

void StoreWriter::flush() {
  assert(std::this_thread::get_id() != thread_.get_id() && "flush() from a commit handler");
  std::unique_lock lock(mutex_);
  const std::uint64_t target = submitted_;
  batches_done_.wait(lock, [&] { return completed_ >= target; });
}

bool StoreWriter::acquire_lease(LeaseRequest request) {
  assert(std::this_thread::get_id() != thread_.get_id() && "acquire_lease() from a commit handler");
  std::future<bool> taken;
  {
    std::lock_guard lock(mutex_);
    auto& job = std::get<PendingLease>(
        queue_.emplace_back(PendingLease{std::move(request), std::promise<bool>()}));
    taken = job.taken.get_future();
  }
  work_queued_.notify_one();
  return taken.get();
}

void StoreWriter::run() {
  std::vector<Job> jobs;
  std::vector<PendingBatch> group;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      work_queued_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to commit
      jobs.swap(queue_);
    }
    // Consecutive batches share a transaction; a lease request commits on its own, in its place.
    for (auto& job : jobs) {
      if (auto* batch = std::get_if<PendingBatch>(&job)) {
        group.push_back(std::move(*batch));
        continue;
      }
      commit(group);
      auto& lease = std::get<PendingLease>(job);
      lease.taken.set_value(backend_.acquire_lease(lease.request));
    }
    commit(group);
    jobs.clear();
  }
}

void StoreWriter::commit(std::vector<PendingBatch>& group) {
  if (group.empty()) return;
  std::vector<const StoreBatch*> batches;
  batches.reserve(group.size());
  for (const auto& pending : group) batches.push_back(&pending.batch);
  std::vector<std::error_code> results(group.size());
  backend_.commit_group(batches, results);
  for (std::size_t i = 0; i < group.size(); ++i) {
    if (group[i].on_commit) group[i].on_commit(results[i]);
  }
  const auto count = group.size();
  group.clear();
  {
    std::lock_guard lock(mutex_);
    completed_ += count;
  }
  batches_done_.notify_all();
}

}  // namespace podflow::engine::detail
