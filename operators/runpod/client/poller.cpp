// The shared pod poller: one list call per interval for every task waiting on a pod of one account.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <map>
#include <mutex>

#include "podflow/operators/runpod_client.hpp"

namespace podflow::runpod {
namespace {
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
}  // namespace

struct PodPoller::State {
  State(asio::any_io_executor executor, std::shared_ptr<const Client> api)
      : strand(asio::make_strand(executor)), timer(strand), client(std::move(api)) {}

  struct Subscriber {
    std::string pod_id;
    std::chrono::milliseconds interval;
    Callback callback;
    Clock::time_point next_due;
  };

  asio::strand<asio::any_io_executor> strand;
  asio::steady_timer timer;  // used on the strand only
  std::shared_ptr<const Client> client;
  mutable std::mutex mutex;
  std::map<std::uint64_t, Subscriber> subscribers;
  std::uint64_t next_id = 1;
  bool running = false;
  std::chrono::milliseconds sleeping_for{0};  // the loop's current pause between ticks
  bool stopped = false;
  std::size_t list_calls = 0;
  Clock::time_point not_before;  // RunPod's last Retry-After: no list call before it
};

namespace {

asio::awaitable<void> poll(std::shared_ptr<PodPoller::State> state) {
  for (;;) {
    std::vector<std::pair<std::uint64_t, std::string>> due;
    auto sleep = std::chrono::milliseconds::max();
    {
      std::lock_guard lock(state->mutex);
      const auto tick = Clock::now();  // under the lock: no subscriber joins between the two
      if (state->subscribers.empty() || state->stopped) {
        state->running = false;
        co_return;
      }
      for (auto& [id, subscriber] : state->subscribers) {
        // A subscriber due within a quarter of its interval rides on this tick's list call, so
        // subscribers that joined at different moments fall onto one schedule.
        if (subscriber.next_due <= tick + subscriber.interval / 4) {
          due.emplace_back(id, subscriber.pod_id);
          subscriber.next_due = tick + subscriber.interval;
        }
        sleep = std::min(sleep, std::chrono::duration_cast<std::chrono::milliseconds>(
                                    subscriber.next_due - tick));
      }
    }
    if (!due.empty()) {
      auto listed = co_await state->client->list_pods();
      {
        std::lock_guard lock(state->mutex);
        ++state->list_calls;
      }
      if (const auto* error = std::get_if<RunPodError>(&listed); error && error->retry_after) {
        // Asked to back off (429): nobody's next list call comes before RunPod allows it.
        std::lock_guard lock(state->mutex);
        state->not_before = Clock::now() + *error->retry_after;
        for (auto& [id, subscriber] : state->subscribers) {
          subscriber.next_due = std::max(subscriber.next_due, state->not_before);
        }
      }
      std::map<std::string, Result<Pod>> answers;
      if (ok(listed)) {
        for (auto& pod : std::get<std::vector<Pod>>(listed)) answers.emplace(pod.id, pod);
      }
      for (const auto& [id, pod_id] : due) {
        auto answer = answers.find(pod_id);
        if (answer == answers.end()) {
          // The list failed or does not have the pod (a new pod can lag behind): ask for it alone.
          // (No co_await inside ?: : GCC 12 miscompiles it.)
          if (ok(listed)) {
            auto single = co_await state->client->get_pod(pod_id);
            answer = answers.emplace(pod_id, std::move(single)).first;
          } else {
            answer = answers.emplace(pod_id, std::get<RunPodError>(listed)).first;
          }
        }
        PodPoller::Callback callback;
        {
          std::lock_guard lock(state->mutex);
          auto subscriber = state->subscribers.find(id);
          if (subscriber == state->subscribers.end()) continue;  // unsubscribed meanwhile
          callback = subscriber->second.callback;
        }
        callback(answer->second);
      }
    }
    sleep = std::max(sleep, std::chrono::milliseconds(1));
    {
      std::lock_guard lock(state->mutex);
      state->sleeping_for = sleep;
    }
    state->timer.expires_after(sleep);
    auto [error] = co_await state->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    (void)error;  // cancelled: a new subscriber needs an earlier tick, or the poller stops
  }
}

void start(const std::shared_ptr<PodPoller::State>& state) {
  asio::co_spawn(state->strand, poll(state), [](const std::exception_ptr& error) {
    // A callback threw: that is a bug in the caller, and it must not pass silently.
    if (error) std::rethrow_exception(error);
  });
}

}  // namespace

PodPoller::Subscription::Subscription(std::weak_ptr<PodPoller> poller, std::uint64_t id)
    : poller_(std::move(poller)), id_(id) {}

PodPoller::Subscription::Subscription(Subscription&& other) noexcept
    : poller_(std::move(other.poller_)), id_(std::exchange(other.id_, 0)) {}

PodPoller::Subscription& PodPoller::Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    reset();
    poller_ = std::move(other.poller_);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

PodPoller::Subscription::~Subscription() { reset(); }

void PodPoller::Subscription::reset() {
  if (auto poller = poller_.lock(); poller && id_ != 0) poller->unsubscribe(id_);
  poller_.reset();
  id_ = 0;
}

std::shared_ptr<PodPoller> PodPoller::shared(asio::any_io_executor executor,
                                             std::shared_ptr<const Client> client) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<PodPoller>> pollers;
  // In memory only: the key never leaves the process.
  const std::string key = client->config().rest_url + '\n' + client->config().api_key;
  std::lock_guard lock(mutex);
  if (auto existing = pollers[key].lock()) return existing;
  auto poller = std::make_shared<PodPoller>(std::move(executor), std::move(client));
  pollers[key] = poller;
  return poller;
}

PodPoller::PodPoller(asio::any_io_executor executor, std::shared_ptr<const Client> client)
    : state_(std::make_shared<State>(std::move(executor), std::move(client))) {}

PodPoller::~PodPoller() {
  std::lock_guard lock(state_->mutex);
  state_->stopped = true;
  state_->subscribers.clear();
  asio::post(state_->strand, [state = state_] { state->timer.cancel(); });
}

PodPoller::Subscription PodPoller::subscribe(std::string pod_id, std::chrono::milliseconds interval,
                                             Callback callback) {
  std::uint64_t id = 0;
  bool spawn = false;
  bool wake = false;
  {
    std::lock_guard lock(state_->mutex);
    id = state_->next_id++;
    state_->subscribers.emplace(id,
                                State::Subscriber{std::move(pod_id), interval, std::move(callback),
                                                  std::max(Clock::now(), state_->not_before)});
    spawn = !state_->running;
    state_->running = true;
    // A subscriber polling faster than the current pause wakes the loop; others get their first
    // answer at the next tick, so a burst of subscribers costs no extra list calls.
    wake = !spawn && interval < state_->sleeping_for;
  }
  if (spawn) {
    start(state_);
  } else if (wake) {
    asio::post(state_->strand, [state = state_] { state->timer.cancel(); });
  }
  return Subscription(weak_from_this(), id);
}

void PodPoller::unsubscribe(std::uint64_t id) {
  std::lock_guard lock(state_->mutex);
  state_->subscribers.erase(id);
}

std::size_t PodPoller::list_calls() const {
  std::lock_guard lock(state_->mutex);
  return state_->list_calls;
}

}  // namespace podflow::runpod
