// runpod.wait: watches a pod until it finishes (EXITED or the podflow.done line), following its
// logs into the task log and its metric lines into the run store, without holding a thread.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "operators/runpod/runpod_operators.hpp"
#include "podflow/engine/duration.hpp"

namespace podflow::runpod {
namespace {

namespace asio = boost::asio;
using engine::ErrorKind;
using engine::OperatorSchema;
using engine::TaskContext;
using engine::TaskOutcome;
using engine::ValueType;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kCursorKind = "runpod.logcursor";

std::optional<engine::Millis> duration_arg(const Json& value) {
  if (value.is_string()) return engine::parse_duration(value.get<std::string>());
  if (value.is_number_integer()) return std::chrono::seconds(value.get<long long>());
  return std::nullopt;
}

engine::EpochMillis now_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The key=value words of a line after its first word ("podflow.metric name=loss value=0.9").
std::map<std::string, std::string> words(std::string_view text) {
  std::map<std::string, std::string> out;
  std::istringstream in{std::string(text)};
  std::string word;
  in >> word;  // the marker
  while (in >> word) {
    const auto eq = word.find('=');
    if (eq != std::string::npos) out[word.substr(0, eq)] = word.substr(eq + 1);
  }
  return out;
}

std::optional<double> to_double(const std::string& text) {
  try {
    std::size_t used = 0;
    const double value = std::stod(text, &used);
    if (used != text.size() || !std::isfinite(value)) return std::nullopt;
    return value;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<long long> to_integer(const std::string& text) {
  try {
    std::size_t used = 0;
    const long long value = std::stoll(text, &used);
    if (used != text.size()) return std::nullopt;
    return value;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// Everything the wait, its log follower and the poller's callbacks share. Touched only on the
// task's strand: the poller's callbacks are posted there.
struct WaitState {
  explicit WaitState(asio::any_io_executor ex) : wake(ex) {}

  asio::steady_timer wake;
  bool dirty = false;  // something happened since the wait loop last looked

  // Latest poll answer not yet handled.
  std::optional<Result<Pod>> polled;

  // The log follower.
  std::shared_ptr<engine::TaskLog> log;
  std::shared_ptr<engine::TaskRecorder> recorder;
  std::string run_id;
  std::string task_id;
  std::string cursor;  // last event id seen
  std::map<std::string, double> last_metric;
  std::optional<std::string> done_status;
  std::optional<long long> done_exit;
  bool pod_ended = false;  // the pod is no longer running: drain, do not reconnect
  bool stop_logs = false;  // the wait is over: stop now
  bool logs_done = true;   // the follower is not running
  asio::cancellation_signal logs_cancel;

  void notify() {
    dirty = true;
    wake.cancel();
  }

  void write(const std::string& line) {
    if (log) log->write(line + "\n");
  }

  // One log line: to the task log, and metric and done lines parsed.
  void on_line(const LogLine& line) {
    if (!line.event_id.empty()) cursor = line.event_id;
    if (line.source == "system") {
      write("[pod system] " + line.text);
      return;
    }
    write(line.text);
    std::string_view text = line.text;
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    if (text.starts_with("podflow.metric ")) {
      auto kv = words(text);
      auto value = kv.contains("value") ? to_double(kv["value"]) : std::nullopt;
      auto step = kv.contains("step") ? to_integer(kv["step"]) : std::nullopt;
      if (kv["name"].empty() || !value || !step) {
        write("warning: ignored a malformed metric line (want name=<k> value=<v> step=<n>)");
        return;
      }
      engine::MetricPoint point;
      point.run_id = run_id;
      point.task_id = task_id;
      point.name = kv["name"];
      point.value = *value;
      point.step = *step;
      point.timestamp = now_millis();
      last_metric[point.name] = point.value;
      if (recorder) recorder->record_metrics({point});
    } else if (text.starts_with("podflow.done ")) {
      auto kv = words(text);
      const std::string status = kv["status"];
      if (status != "ok" && status != "failed") {
        write("warning: ignored a done line without status=ok|failed");
        return;
      }
      const bool first = !done_status;
      done_status = status;
      done_exit = kv.contains("exit") ? to_integer(kv["exit"]) : std::nullopt;
      if (first) notify();
    }
  }
};

// Follows the pod's logs until the pod ends (and the stream with it) or the wait stops it,
// reconnecting after the last event seen.
asio::awaitable<void> follow_logs(std::shared_ptr<WaitState> state,
                                  std::shared_ptr<const Client> api, std::string pod_id,
                                  std::chrono::milliseconds pause) {
  co_await asio::this_coro::throw_if_cancelled(false);
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);
  std::string last_error;
  while (!state->stop_logs) {
    LogStreamOptions options;
    options.last_event_id = state->cursor;
    if (options.last_event_id.empty()) options.tail = 100000;  // from the container's start
    std::function<bool(const LogLine&)> sink = [state](const LogLine& line) {
      state->on_line(line);
      return !state->stop_logs;
    };
    auto result = co_await api->stream_logs(pod_id, options, sink);
    if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none)
      break;
    if (auto* error = std::get_if<RunPodError>(&result)) {
      if (error->message != last_error) state->write("log stream: " + error->message);
      last_error = error->message;
    } else {
      last_error.clear();
    }
    state->notify();  // the cursor may have moved
    if (state->stop_logs || state->pod_ended) break;
    timer.expires_after(pause);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none)
      break;
  }
}

class WaitOperator final : public engine::Operator {
 public:
  WaitOperator() {
    schema_.args = {
        {"pod_id", ValueType::string, true, std::nullopt, "the pod to watch"},
        {"until", ValueType::array, false, Json::array({"EXITED"}), "statuses that end the wait"},
        {"poll_interval", ValueType::duration, false, Json("15s"), "how often to ask RunPod"},
        {"start_deadline", ValueType::duration, false, std::nullopt,
         "fail when the container has not started by then"},
        {"max_cost_usd", ValueType::number, false, std::nullopt,
         "stop the pod and fail (cost_cap) when it has cost more"},
        {"follow_logs", ValueType::boolean, false, Json(true),
         "copy the pod's log to the task log and record metric lines"},
        {"on_preemption", ValueType::string, false, Json("fail"), "fail or resume"},
        {"bid_per_gpu", ValueType::number, false, std::nullopt,
         "the first bid a preempted spot pod is resumed with (default max_bid_per_gpu)"},
        {"max_bid_per_gpu", ValueType::number, false, std::nullopt,
         "the highest bid: each further preemption raises the bid 25% up to it"},
        {"done_grace", ValueType::duration, false, Json("60s"),
         "after the done line, how long the pod has to exit before podflow stops it"},
    };
    schema_.outputs = {"final_status",   "done_status", "exit_code", "last_status_change",
                       "uptime_seconds", "cost_usd",    "metrics",   "preemptions"};
  }
  std::string_view name() const override { return "runpod.wait"; }
  const OperatorSchema& schema() const override { return schema_; }

  asio::awaitable<TaskOutcome> execute(TaskContext ctx) const override {
    co_await asio::this_coro::throw_if_cancelled(false);
    const Json& args = ctx.args;
    const std::string pod_id = args.value("pod_id", std::string());
    if (pod_id.empty()) {
      co_return TaskOutcome::failure(ErrorKind::bad_input, "runpod.wait needs pod_id");
    }
    std::set<std::string> until;
    if (args.contains("until") && !args["until"].is_null()) {
      if (!args["until"].is_array() || args["until"].empty()) {
        co_return TaskOutcome::failure(ErrorKind::bad_input,
                                       "until must be a non-empty list of pod statuses");
      }
      for (const auto& status : args["until"]) {
        if (!status.is_string()) {
          co_return TaskOutcome::failure(ErrorKind::bad_input,
                                         "until must list statuses like EXITED");
        }
        until.insert(status.get<std::string>());
      }
    } else {
      until.insert("EXITED");
    }
    auto poll_interval = duration_arg(args.value("poll_interval", Json("15s")));
    auto done_grace = duration_arg(args.value("done_grace", Json("60s")));
    if (!poll_interval || poll_interval->count() <= 0 || !done_grace) {
      co_return TaskOutcome::failure(ErrorKind::bad_input,
                                     "poll_interval and done_grace must be durations like 15s");
    }
    std::optional<engine::Millis> start_deadline;
    if (args.contains("start_deadline") && !args["start_deadline"].is_null()) {
      start_deadline = duration_arg(args["start_deadline"]);
      if (!start_deadline) {
        co_return TaskOutcome::failure(ErrorKind::bad_input,
                                       "start_deadline must be a duration like 10m");
      }
    }
    std::optional<double> max_cost;
    if (args.contains("max_cost_usd") && args["max_cost_usd"].is_number()) {
      max_cost = args["max_cost_usd"].get<double>();
    }
    const std::string on_preemption = args.value("on_preemption", std::string("fail"));
    if (on_preemption != "fail" && on_preemption != "resume") {
      co_return TaskOutcome::failure(
          ErrorKind::bad_input,
          "on_preemption must be fail or resume, got '" + on_preemption + "'");
    }
    std::optional<double> max_bid;
    if (args.contains("max_bid_per_gpu") && args["max_bid_per_gpu"].is_number()) {
      max_bid = args["max_bid_per_gpu"].get<double>();
    }
    if (on_preemption == "resume" && !max_bid) {
      co_return TaskOutcome::failure(ErrorKind::bad_input,
                                     "on_preemption: resume needs max_bid_per_gpu");
    }
    // The bid of the next resume: it starts at bid_per_gpu and rises after every preemption, since
    // being outbid again at the same price is likely.
    std::optional<double> next_bid = max_bid;
    if (max_bid && args.contains("bid_per_gpu") && args["bid_per_gpu"].is_number()) {
      next_bid = args["bid_per_gpu"].get<double>();
      if (*next_bid <= 0 || *next_bid > *max_bid) {
        co_return TaskOutcome::failure(ErrorKind::bad_input,
                                       "bid_per_gpu must be above 0 and at most max_bid_per_gpu");
      }
    }
    const bool follow = args.value("follow_logs", true);

    auto client = make_client(ctx);
    if (auto* error = std::get_if<RunPodError>(&client)) {
      co_return TaskOutcome{Json::object(),
                            engine::TaskError(error->kind, error->message, error->retry_after)};
    }
    const auto api = std::get<std::shared_ptr<const Client>>(client);

    auto ex = co_await asio::this_coro::executor;
    auto state = std::make_shared<WaitState>(ex);
    state->log = ctx.log;
    state->recorder = ctx.recorder;
    state->run_id = ctx.run_id;
    state->task_id = ctx.task_id;
    std::string recorded_cursor;
    engine::EpochMillis cursor_updated = -1;
    if (ctx.recorder) {
      for (const auto& resource : ctx.recorder->resources(ctx.task_id)) {
        if (resource.kind != kCursorKind || resource.name != pod_id) continue;
        if (resource.updated_at < cursor_updated) continue;
        cursor_updated = resource.updated_at;
        recorded_cursor = resource.detail.value("last_event_id", std::string());
      }
    }
    state->cursor = recorded_cursor;
    if (ctx.recorder && !recorded_cursor.empty()) {
      // Points an earlier try recorded are not streamed again: their last values come from the
      // store.
      std::map<std::string, std::int64_t> last_step;
      for (const auto& point : ctx.recorder->metrics()) {
        auto found = last_step.find(point.name);
        if (found != last_step.end() && found->second > point.step) continue;
        last_step[point.name] = point.step;
        state->last_metric[point.name] = point.value;
      }
    }
    if (!recorded_cursor.empty()) {
      state->write("re-attaching to the logs of pod " + pod_id + " after event " + recorded_cursor);
    }
    state->write("waiting for pod " + pod_id + " (poll every " +
                 engine::format_duration(*poll_interval) + ")");

    if (follow) {
      state->logs_done = false;
      asio::co_spawn(
          ex, follow_logs(state, api, pod_id, *poll_interval),
          asio::bind_cancellation_slot(state->logs_cancel.slot(), [state](std::exception_ptr) {
            state->logs_done = true;
            state->notify();
          }));
    }

    auto poller = PodPoller::shared(ex, api);
    std::weak_ptr<WaitState> weak = state;
    auto subscription =
        poller->subscribe(pod_id, *poll_interval, [weak, ex](const Result<Pod>& result) {
          auto target = weak.lock();
          if (!target) return;
          asio::post(ex, [target, result] {
            target->polled = result;
            target->notify();
          });
        });

    const auto started = Clock::now();
    std::optional<Clock::time_point> grace_until;  // set by the done line
    double rate = 0.0;                             // last nonzero USD per hour
    long long run_seconds_before = 0;              // uptime of earlier container cycles
    long long last_uptime = 0;
    int preemptions = 0;  // resumed after being outbid
    bool ever_started = false;
    Pod last_pod;
    std::string last_status_change;
    std::optional<TaskOutcome> verdict;
    bool cancelled = false;
    std::string last_poll_error;
    int facts_failures = 0;  // GraphQL could not say why the pod exited
    constexpr int kFactsAttempts = 3;

    auto uptime_total = [&] { return run_seconds_before + last_uptime; };
    auto cost = [&] { return rate * static_cast<double>(uptime_total()) / 3600.0; };

    while (!verdict) {
      if (!state->dirty) {
        auto due = Clock::time_point::max();
        if (grace_until) due = std::min(due, *grace_until);
        if (start_deadline && !ever_started) due = std::min(due, started + *start_deadline);
        state->wake.expires_at(due);
        co_await state->wake.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      if ((co_await asio::this_coro::cancellation_state).cancelled() !=
          asio::cancellation_type::none) {
        cancelled = true;
        break;
      }
      state->dirty = false;

      if (state->done_status && !grace_until) {
        grace_until = Clock::now() + *done_grace;
        state->write("the pod reported done (status=" + *state->done_status + "); waiting up to " +
                     engine::format_duration(*done_grace) + " for it to exit");
      }

      if (state->polled) {
        Result<Pod> polled = std::move(*state->polled);
        state->polled.reset();
        if (auto* error = std::get_if<RunPodError>(&polled)) {
          if (error->not_found) {
            verdict = TaskOutcome::failure(ErrorKind::task_failed,
                                           "pod vanished: RunPod no longer knows pod " + pod_id);
            break;
          }
          if (error->kind == ErrorKind::auth) {
            verdict = TaskOutcome::failure(ErrorKind::auth, error->message);
            break;
          }
          // Transient: the poller asks again next interval.
          if (error->message != last_poll_error) state->write("poll: " + error->message);
          last_poll_error = error->message;
        } else {
          last_poll_error.clear();
          const Pod& pod = std::get<Pod>(polled);
          if (pod.status != last_pod.status) state->write("pod " + pod_id + ": " + pod.status);
          last_pod = pod;
          if (pod.cost_per_hr && *pod.cost_per_hr > 0) rate = *pod.cost_per_hr;
          if (pod.has_runtime) {
            ever_started = true;
            const long long uptime = pod.uptime_seconds.value_or(0);
            if (uptime < last_uptime) run_seconds_before += last_uptime;  // a new cycle
            last_uptime = uptime;
          }
          const bool running =
              pod.status == "RUNNING" || pod.status == "PROVISIONING" || pod.status == "STARTING";
          state->pod_ended = !running;
          if (max_cost && cost() > *max_cost) {
            std::ostringstream message;
            message << "pod " << pod_id << " cost $" << cost() << ", over max_cost_usd $"
                    << *max_cost << "; stopped it";
            auto stopped = co_await api->stop_pod(pod_id);
            if (auto* stop_error = std::get_if<RunPodError>(&stopped)) {
              message << " (the stop failed: " << stop_error->message << ")";
            }
            state->write(message.str());
            verdict = TaskOutcome::failure(ErrorKind::cost_cap, message.str());
            break;
          }
          if (pod.status == "EXITED") {
            auto facts = co_await api->pod_facts(pod_id);
            if (auto* f = std::get_if<PodFacts>(&facts)) {
              last_status_change = f->last_status_change;
              if (!f->warning.empty()) state->write("warning: " + f->warning);
            } else if (++facts_failures <= kFactsAttempts) {
              // Without the facts a preempted spot pod would pass for one that finished: ask
              // again at the next poll before deciding.
              state->write("could not read why pod " + pod_id +
                           " exited: " + std::get<RunPodError>(facts).message + "; asking again");
              continue;
            } else {
              state->write("warning: still cannot read why pod " + pod_id + " exited after " +
                           std::to_string(kFactsAttempts) + " tries; taking EXITED as the end");
            }
            if (last_status_change.starts_with("Outbid")) {
              if (on_preemption == "fail") {
                verdict = TaskOutcome::failure(
                    ErrorKind::preempted,
                    "spot pod " + pod_id + " was preempted (" + last_status_change + ")");
                break;
              }
              const double bid = *next_bid;
              next_bid = std::min(*max_bid, bid * 1.25);
              state->write("pod " + pod_id + " was preempted (" + last_status_change +
                           "); resuming it with a bid of " + Json(bid).dump() + " per GPU");
              auto resumed = co_await api->bid_resume(pod_id, bid, std::max(1, pod.gpu_count));
              if (auto* resume_error = std::get_if<RunPodError>(&resumed)) {
                verdict = TaskOutcome::failure(
                    ErrorKind::preempted,
                    "spot pod " + pod_id + " was preempted (" + last_status_change +
                        ") and could not be resumed: " + resume_error->message);
                break;
              }
              ++preemptions;
              state->pod_ended = false;
              if (follow && state->logs_done) {
                state->logs_done = false;
                asio::co_spawn(ex, follow_logs(state, api, pod_id, *poll_interval),
                               asio::bind_cancellation_slot(state->logs_cancel.slot(),
                                                            [state](std::exception_ptr) {
                                                              state->logs_done = true;
                                                              state->notify();
                                                            }));
              }
              continue;
            }
          }
          if (until.contains(pod.status)) {
            verdict = TaskOutcome::success();  // outputs below
            break;
          }
        }
      }

      if (grace_until && Clock::now() >= *grace_until) {
        state->write("pod " + pod_id + " did not exit within " +
                     engine::format_duration(*done_grace) + " of its done line; stopping it");
        auto stopped = co_await api->stop_pod(pod_id);
        if (auto* error = std::get_if<RunPodError>(&stopped)) {
          state->write("stopping pod " + pod_id + " failed: " + error->message);
        } else {
          last_pod.status = std::get<Pod>(stopped).status;
        }
        verdict = TaskOutcome::success();
        break;
      }
      if (start_deadline && !ever_started && Clock::now() >= started + *start_deadline) {
        verdict = TaskOutcome::failure(ErrorKind::task_failed,
                                       "pod never started: no container runtime within " +
                                           engine::format_duration(*start_deadline));
        break;
      }
      if (state->cursor != recorded_cursor && ctx.recorder) {
        co_await record_cursor(ctx, pod_id, state->cursor);
        recorded_cursor = state->cursor;
      }
    }
    subscription.reset();

    // The follower drains what the pod printed last, then stops; a cancelled wait stops it now.
    if (!state->logs_done) {
      if (cancelled || !verdict || verdict->error) {
        state->stop_logs = true;
        state->logs_cancel.emit(asio::cancellation_type::terminal);
      } else {
        state->pod_ended = true;
        const auto drain_until = Clock::now() + std::chrono::seconds(5);
        while (!state->logs_done && Clock::now() < drain_until) {
          state->dirty = false;
          state->wake.expires_at(drain_until);
          co_await state->wake.async_wait(asio::as_tuple(asio::use_awaitable));
          if ((co_await asio::this_coro::cancellation_state).cancelled() !=
              asio::cancellation_type::none) {
            cancelled = true;
            break;
          }
        }
        if (!state->logs_done) {
          state->stop_logs = true;
          state->logs_cancel.emit(asio::cancellation_type::terminal);
        }
      }
    }
    if (ctx.recorder && state->cursor != recorded_cursor) {
      co_await record_cursor(ctx, pod_id, state->cursor);
    }
    if (cancelled) {
      co_return TaskOutcome::failure(ErrorKind::cancelled, "stopped waiting for pod " + pod_id +
                                                               " (the pod is left as it is)");
    }

    // A done line seen while draining decides as much as one seen before.
    if (verdict->error) {
      co_return *verdict;
    }
    if (state->done_status == "failed") {
      co_return TaskOutcome::failure(
          ErrorKind::task_failed,
          "training reported failure, exit " +
              (state->done_exit ? std::to_string(*state->done_exit) : std::string("unknown")));
    }
    Json metrics = Json::object();
    for (const auto& [name, value] : state->last_metric) metrics[name] = value;
    Json outputs = {
        {"final_status", last_pod.status},
        {"done_status", state->done_status ? Json(*state->done_status) : Json(nullptr)},
        {"exit_code", state->done_exit ? Json(*state->done_exit) : Json(nullptr)},
        {"last_status_change", last_status_change},
        {"uptime_seconds", uptime_total()},
        {"cost_usd", cost()},
        {"metrics", metrics},
        {"preemptions", preemptions},
    };
    co_return TaskOutcome::success(std::move(outputs));
  }

 private:
  // Durable, so that a resumed run re-attaches after the last recorded event.
  static asio::awaitable<void> record_cursor(TaskContext& ctx, const std::string& pod_id,
                                             const std::string& cursor) {
    engine::ResourceRecord record;
    record.kind = std::string(kCursorKind);
    record.name = pod_id;
    record.external_id = pod_id;
    record.state = "following";
    record.detail = Json{{"last_event_id", cursor}};
    auto ec = co_await ctx.recorder->record_resource(record);
    if (ec && ctx.log)
      ctx.log->write("warning: could not record the log cursor: " + ec.message() + "\n");
  }

  OperatorSchema schema_;
};

}  // namespace

std::shared_ptr<const engine::Operator> make_wait_operator() {
  return std::make_shared<WaitOperator>();
}

}  // namespace podflow::runpod
