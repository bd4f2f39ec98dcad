// An injectable clock: real time in production, manually advanced time in tests (no sleeps).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

namespace podflow::engine {

using SysTime = std::chrono::system_clock::time_point;

// A cancellable pending call. cancel() guarantees the callback will not run afterwards unless it is
// already running.
class TimerHandle {
 public:
  virtual ~TimerHandle() = default;
  virtual void cancel() = 0;
};

class Clock {
 public:
  virtual ~Clock() = default;
  virtual SysTime now() const = 0;
  // Runs `fn` on `executor` at `when` (at once when `when` has passed).
  virtual std::shared_ptr<TimerHandle> call_at(SysTime when, boost::asio::any_io_executor executor,
                                               std::function<void()> fn) = 0;
};

// Wall-clock time, timers on the executor.
std::shared_ptr<Clock> make_system_clock();

// Time that moves only when the test calls advance(); due callbacks are posted to their executors.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(SysTime start);
  SysTime now() const override;
  std::shared_ptr<TimerHandle> call_at(SysTime when, boost::asio::any_io_executor executor,
                                       std::function<void()> fn) override;
  void advance(std::chrono::milliseconds by);
  // The earliest pending call, if any (tests: "the retry is due in 30s").
  std::optional<SysTime> next_due() const;
  std::size_t pending() const;

 private:
  struct Pending;
  mutable std::mutex mutex_;
  SysTime now_;
  std::multimap<SysTime, std::shared_ptr<Pending>> pending_;
};

}  // namespace podflow::engine
