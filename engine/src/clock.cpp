// The system clock (Asio timers) and the manual clock used by tests.
#include "podflow/engine/clock.hpp"

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/system_timer.hpp>

namespace podflow::engine {
namespace {

class SystemTimerHandle final : public TimerHandle {
 public:
  explicit SystemTimerHandle(boost::asio::any_io_executor executor) : timer_(executor) {}
  void cancel() override {
    cancelled_ = true;
    boost::asio::post(timer_.get_executor(), [self = self_.lock()] {
      if (self) self->timer_.cancel();
    });
  }
  boost::asio::system_timer timer_;
  std::atomic<bool> cancelled_{false};
  std::weak_ptr<SystemTimerHandle> self_;
};

class SystemClock final : public Clock {
 public:
  SysTime now() const override { return std::chrono::system_clock::now(); }
  std::shared_ptr<TimerHandle> call_at(SysTime when, boost::asio::any_io_executor executor,
                                       std::function<void()> fn) override {
    auto handle = std::make_shared<SystemTimerHandle>(executor);
    handle->self_ = handle;
    handle->timer_.expires_at(when);
    handle->timer_.async_wait([handle, fn = std::move(fn)](const boost::system::error_code& ec) {
      if (!ec && !handle->cancelled_) fn();
    });
    return handle;
  }
};

}  // namespace

std::shared_ptr<Clock> make_system_clock() { return std::make_shared<SystemClock>(); }

struct ManualClock::Pending final : TimerHandle {
  boost::asio::any_io_executor executor;
  std::function<void()> fn;
  std::atomic<bool> cancelled{false};
  void cancel() override { cancelled = true; }
};

ManualClock::ManualClock(SysTime start) : now_(start) {}

SysTime ManualClock::now() const {
  std::lock_guard lock(mutex_);
  return now_;
}

std::shared_ptr<TimerHandle> ManualClock::call_at(SysTime when,
                                                  boost::asio::any_io_executor executor,
                                                  std::function<void()> fn) {
  auto pending = std::make_shared<Pending>();
  pending->executor = executor;
  pending->fn = std::move(fn);
  std::lock_guard lock(mutex_);
  if (when <= now_) {
    boost::asio::post(executor, [pending] {
      if (!pending->cancelled) pending->fn();
    });
  } else {
    pending_.emplace(when, pending);
  }
  return pending;
}

void ManualClock::advance(std::chrono::milliseconds by) {
  std::lock_guard lock(mutex_);
  now_ += by;
  while (!pending_.empty() && pending_.begin()->first <= now_) {
    auto pending = pending_.begin()->second;
    pending_.erase(pending_.begin());
    if (pending->cancelled) continue;
    boost::asio::post(pending->executor, [pending] {
      if (!pending->cancelled) pending->fn();
    });
  }
}

std::optional<SysTime> ManualClock::next_due() const {
  std::lock_guard lock(mutex_);
  for (const auto& [when, pending] : pending_) {
    if (!pending->cancelled) return when;
  }
  return std::nullopt;
}

std::size_t ManualClock::pending() const {
  std::lock_guard lock(mutex_);
  std::size_t count = 0;
  for (const auto& entry : pending_) count += entry.second->cancelled ? 0U : 1U;
  return count;
}

}  // namespace podflow::engine
