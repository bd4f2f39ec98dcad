// The writer thread shared by the run stores: batches applied in submission order, group commit.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <future>
#include <mutex>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <variant>
#include <vector>

#include "podflow/engine/store.hpp"

namespace podflow::engine::detail {

struct LeaseRequest {
  std::string run_id;
  std::string owner;
  EpochMillis now = 0;
  EpochMillis lease_expires_at = 0;
  RunStore::Takeover mode = RunStore::Takeover::if_expired;
};

// What a store does on its writer thread. Only the writer thread calls these.
class StoreBackend {
 public:
  virtual ~StoreBackend() = default;
  // Applies `batches` in order in one transaction, each batch all or nothing, and sets results[i]
  // to the outcome of batches[i]. A failure of the transaction itself fails every batch.
  virtual void commit_group(std::span<const StoreBatch* const> batches,
                            std::span<std::error_code> results) = 0;
  // The condition of RunStore::acquire_lease, committed before returning.
  virtual bool acquire_lease(const LeaseRequest& request) = 0;
};

// Owns the writer thread. Everything queued while the writer was busy goes into one transaction, so
// a burst of small batches costs one fsync, while a lone batch is committed at once.
class StoreWriter {
 public:
  explicit StoreWriter(StoreBackend& backend);
  // Commits everything still queued, then joins the thread.
  ~StoreWriter();
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  void submit(StoreBatch batch, RunStore::CommitHandler on_commit);
  // Must not be called from a commit handler (it would wait for itself).
  void flush();
  // Must not be called from a commit handler.
  bool acquire_lease(LeaseRequest request);

 private:
  struct PendingBatch {
    StoreBatch batch;
    RunStore::CommitHandler on_commit;
  };
  struct PendingLease {
    LeaseRequest request;
    std::promise<bool> taken;
  };
  using Job = std::variant<PendingBatch, PendingLease>;

  void run();
  void commit(std::vector<PendingBatch>& group);

  StoreBackend& backend_;
  std::mutex mutex_;
  std::condition_variable work_queued_;
  std::condition_variable batches_done_;
  std::vector<Job> queue_;
  std::uint64_t submitted_ = 0;  // batches ever submitted
  std::uint64_t completed_ = 0;  // batches whose handler has run
  bool stopping_ = false;
  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace podflow::engine::detail
