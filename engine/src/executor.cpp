// The event-driven DAG executor: each run is a state machine on its own strand; every transition
// caused by one event is committed in one store batch before the tasks it makes ready are started.
#include "podflow/engine/executor.hpp"

#include <unistd.h>

#include <algorithm>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <future>
#include <iterator>
#include <mutex>
#include <random>
#include <sstream>

#include "podflow/engine/digest.hpp"
#include "podflow/engine/loader.hpp"
#include "podflow/engine/operator.hpp"
#include "podflow/engine/task_log.hpp"
#include "podflow/engine/template.hpp"

namespace podflow::engine {
namespace asio = boost::asio;

EpochMillis to_epoch_millis(SysTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::string format_utc(EpochMillis t) {
  const std::time_t seconds = static_cast<std::time_t>(t / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

std::string default_owner_id() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid()) + ":" +
         std::to_string(to_epoch_millis(std::chrono::system_clock::now()));
}

std::string load_or_create_install_id(const std::filesystem::path& home) {
  const auto path = home / "install-id";
  {
    std::ifstream in(path);
    std::string id;
    if (in >> id && !id.empty()) return id;
  }
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device random;
  std::string id;
  for (int i = 0; i < 8; ++i) id += kAlphabet[random() % (sizeof kAlphabet - 1)];
  std::error_code ec;
  std::filesystem::create_directories(home, ec);
  // Written aside and hard-linked into place, so two processes starting at once agree on one id.
  const auto temporary = home / ("install-id." + std::to_string(::getpid()));
  std::ofstream(temporary) << id << "\n";
  ::link(temporary.c_str(), path.c_str());  // fails when another process made it first: theirs wins
  std::filesystem::remove(temporary, ec);
  std::ifstream in(path);
  std::string stored;
  return in >> stored ? stored : id;
}

Millis compute_retry_delay(const RetryPolicy& policy, int failed_try, double random01) {
  const double base = static_cast<double>(policy.retry_delay.count());
  const double grown = base * std::pow(policy.retry_backoff, std::max(0, failed_try - 1));
  const double cap = static_cast<double>(policy.max_retry_delay.count());
  const double capped = std::min(grown, cap);
  const double jittered = capped * std::clamp(random01, 0.0, 1.0);
  return Millis(static_cast<Millis::rep>(jittered));
}

std::variant<Json, std::vector<std::string>> resolve_params(
    const Workflow& workflow, const std::vector<std::pair<std::string, std::string>>& overrides) {
  std::vector<std::string> errors;
  Json values = Json::object();
  for (const auto& [name, text] : overrides) {
    const ParamSpec* spec = workflow.find_param(name);
    if (spec == nullptr) {
      std::string known;
      for (const auto& param : workflow.params) known += (known.empty() ? "" : ", ") + param.name;
      errors.push_back("unknown param '" + name + "'; workflow '" + workflow.name + "' declares " +
                       (known.empty() ? "no params" : known));
      continue;
    }
    auto parsed = parse_param_value(*spec, text);
    if (auto* error = std::get_if<std::string>(&parsed)) {
      errors.push_back(*error);
    } else {
      values[name] = std::get<Json>(parsed);
    }
  }
  for (const auto& param : workflow.params) {
    if (values.contains(param.name)) continue;
    if (param.default_value) {
      values[param.name] = *param.default_value;
    } else if (std::none_of(overrides.begin(), overrides.end(),
                            [&](const auto& o) { return o.first == param.name; })) {
      errors.push_back("param '" + param.name + "' is required (type " +
                       std::string(to_string(param.type)) + "); pass --param " + param.name +
                       "=VALUE");
    }
  }
  if (!errors.empty()) return errors;
  return values;
}

namespace {

enum class Decision { wait, run, skip, upstream_failed };

struct UpstreamCounts {
  std::size_t total = 0, success = 0, failed = 0, skipped = 0, done = 0;
};

// Airflow's trigger-rule semantics, decided as early as the outcome is certain.
Decision decide(TriggerRule rule, const UpstreamCounts& c) {
  if (c.total == 0) return Decision::run;
  const bool all_done = c.done == c.total;
  switch (rule) {
    case TriggerRule::all_success:
      if (c.failed > 0) return Decision::upstream_failed;
      if (c.skipped > 0) return Decision::skip;
      return c.success == c.total ? Decision::run : Decision::wait;
    case TriggerRule::all_failed:
      if (c.success > 0 || c.skipped > 0) return Decision::skip;
      return c.failed == c.total ? Decision::run : Decision::wait;
    case TriggerRule::all_done:
    case TriggerRule::always:
      return all_done ? Decision::run : Decision::wait;
    case TriggerRule::one_success:
      if (c.success > 0) return Decision::run;
      if (!all_done) return Decision::wait;
      return c.failed > 0 ? Decision::upstream_failed : Decision::skip;
    case TriggerRule::one_failed:
      if (c.failed > 0) return Decision::run;
      return all_done ? Decision::skip : Decision::wait;
    case TriggerRule::none_failed:
      if (c.failed > 0) return Decision::upstream_failed;
      return all_done ? Decision::run : Decision::wait;
    case TriggerRule::none_failed_min_one_success:
      if (c.failed > 0) return Decision::upstream_failed;
      if (!all_done) return Decision::wait;
      return c.success > 0 ? Decision::run : Decision::skip;
  }
  return Decision::wait;
}

bool is_cleanup(TriggerRule rule) {
  return rule == TriggerRule::all_done || rule == TriggerRule::always;
}

std::string random_suffix() {
  static std::mutex mutex;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard lock(mutex);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 4; ++i) out += kHex[rng() % 16];
  return out;
}

std::string compact_utc(EpochMillis t) {
  std::string text = format_utc(t);  // 2026-12-03T18:25:00Z -> 20261203T182500Z
  text.erase(std::remove_if(text.begin(), text.end(), [](char c) { return c == '-' || c == ':'; }),
             text.end());
  return text;
}

// The recorder one try hands its operator: resources and metrics go to the run store, tagged with
// the run, task and try.
}  // namespace

asio::awaitable<std::error_code> async_commit(RunStore& store, StoreBatch batch) {
  // Waits for the commit on a timer that the commit handler expires. (An async_initiate form of
  // this wait destroyed the batch twice when built with GCC 12.)
  auto executor = co_await asio::this_coro::executor;
  auto wake = std::make_shared<asio::steady_timer>(executor, asio::steady_timer::time_point::max());
  auto result = std::make_shared<std::error_code>();
  store.submit(std::move(batch), [wake, result](std::error_code ec) {
    asio::post(wake->get_executor(), [wake, result, ec] {
      *result = ec;
      wake->expires_at(asio::steady_timer::time_point::min());
    });
  });
  boost::system::error_code ignored;
  while (wake->expiry() != asio::steady_timer::time_point::min()) {
    co_await wake->async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  co_return *result;
}

namespace {

class TryRecorder final : public TaskRecorder {
 public:
  TryRecorder(RunStore& store, std::shared_ptr<Clock> clock, std::string run_id,
              std::string task_id, int try_number, std::string install_id, std::string owner)
      : owner_(std::move(owner)),
        store_(store),
        clock_(std::move(clock)),
        run_id_(std::move(run_id)),
        task_id_(std::move(task_id)),
        try_number_(try_number),
        install_id_(std::move(install_id)) {}

  asio::awaitable<std::error_code> record_resource(ResourceRecord resource) override {
    if (resource.run_id.empty()) resource.run_id = run_id_;
    if (resource.task_id.empty()) resource.task_id = task_id_;
    if (resource.try_number == 0) resource.try_number = try_number_;
    const EpochMillis now = to_epoch_millis(clock_->now());
    if (resource.created_at == 0) resource.created_at = now;
    resource.updated_at = now;
    StoreBatch batch;
    batch.resources.push_back(std::move(resource));
    fence(batch);
    co_return co_await async_commit(store_, std::move(batch));
  }

  std::vector<ResourceRecord> resources(const std::string& task_id) const override {
    ResourceFilter filter;
    filter.run_id = run_id_;
    filter.task_id = task_id;
    return store_.list_resources(filter);
  }

  void record_metrics(std::vector<MetricPoint> points) override {
    const EpochMillis now = to_epoch_millis(clock_->now());
    StoreBatch batch;
    for (auto& point : points) {
      point.run_id = run_id_;
      point.task_id = task_id_;
      if (point.timestamp == 0) point.timestamp = now;
      batch.metrics.push_back(std::move(point));
    }
    fence(batch);
    store_.submit(std::move(batch), [run = run_id_, task = task_id_](std::error_code ec) {
      if (ec) {
        std::fprintf(stderr, "podflow: run %s task %s: metric points not recorded: %s\n",
                     run.c_str(), task.c_str(), ec.message().c_str());
      }
    });
  }

  std::vector<MetricPoint> metrics_of(const std::string& task_id) const override {
    return store_.list_metrics(run_id_, task_id);
  }
  std::vector<MetricPoint> metrics() const override {
    return store_.list_metrics(run_id_, task_id_);
  }

  const std::string& install_id() const override { return install_id_; }

 private:
  // An operator of a process that lost the run must not record (or then create) anything.
  void fence(StoreBatch& batch) const {
    batch.fence_run = run_id_;
    batch.fence_owner = owner_;
  }

  std::string owner_;
  RunStore& store_;
  std::shared_ptr<Clock> clock_;
  std::string run_id_;
  std::string task_id_;
  int try_number_;
  std::string install_id_;
};

enum class StopReason { none, timeout, cancel, store_failure };

// Kills the processes of a try's process group that outlived the engine which started them. Only
// processes whose environment carries this run's PODFLOW_RUN_ID are touched, so a reused group id
// never hits a stranger. Returns how many were killed.
int kill_leftover_processes(std::int64_t process_group, const std::string& run_id) {
  const std::string marker = "PODFLOW_RUN_ID=" + run_id;
  int killed = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat_file(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), {});
    const auto paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream fields(stat.substr(paren + 1));
    std::string state;
    long ppid = 0, pgrp = 0;
    fields >> state >> ppid >> pgrp;
    if (pgrp != process_group || state == "Z") continue;
    std::ifstream environ_file(entry.path() / "environ", std::ios::binary);
    std::string environ_text((std::istreambuf_iterator<char>(environ_file)), {});
    bool ours = false;
    for (std::size_t start = 0; start < environ_text.size();) {
      const auto end = environ_text.find('\0', start);
      if (environ_text.compare(
              start, (end == std::string::npos ? environ_text.size() : end) - start, marker) == 0) {
        ours = true;
      }
      if (end == std::string::npos) break;
      start = end + 1;
    }
    if (ours && ::kill(static_cast<pid_t>(std::stol(name)), SIGKILL) == 0) ++killed;
  }
  return killed;
}

struct TaskSlot {
  const TaskSpec* spec = nullptr;
  TaskRecord rec;
  std::vector<std::size_t> upstream;
  std::vector<std::size_t> downstream;
  // Bits: a task may be listed in both on_failure and on_success, and then runs either way.
  enum Hook : unsigned { none = 0, on_failure = 1, on_success = 2 };
  unsigned hook = Hook::none;
  // The live try, if any.
  std::shared_ptr<asio::cancellation_signal> signal;
  std::shared_ptr<TimerHandle> timeout_timer;
  std::shared_ptr<TimerHandle> retry_timer;
  std::shared_ptr<TimerHandle> abandon_timer;
  std::shared_ptr<FileTaskLog> log;
  std::filesystem::path scratch_dir;
  std::int64_t process_group = 0;  // of the live try, when its operator started one
  StopReason stop = StopReason::none;
  // Computed once: whether `with` holds templates, and which tasks' outputs they read, so a launch
  // renders only what it needs.
  bool has_templates = false;
  std::vector<std::string> template_tasks;
  // Outcomes of the upstream tasks so far, kept up to date as they end (no rescans).
  UpstreamCounts upstream_counts;
};

// Walks every string of an argument tree and notes the task outputs its templates read.
void collect_template_refs(const Json& value, TaskSlot& slot) {
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (text.find("{{") == std::string::npos) return;
    slot.has_templates = true;
    auto parsed = parse_template(text);
    if (const auto* tmpl = std::get_if<ParsedTemplate>(&parsed)) {
      for (const auto& part : tmpl->parts) {
        if (part.ref && part.ref->scope == TemplateRef::Scope::tasks &&
            std::find(slot.template_tasks.begin(), slot.template_tasks.end(), part.ref->name) ==
                slot.template_tasks.end()) {
          slot.template_tasks.push_back(part.ref->name);
        }
      }
    }
  } else if (value.is_array() || value.is_object()) {
    for (const auto& item : value) collect_template_refs(item, slot);
  }
}

class Run final : public RunHandle, public std::enable_shared_from_this<Run> {
 public:
  Run(asio::any_io_executor io, RunStore& store, std::shared_ptr<Clock> clock,
      const ExecutorOptions& options, std::shared_ptr<const Workflow> workflow,
      std::shared_ptr<RunObserver> observer)
      : strand_(asio::make_strand(io)),
        store_(store),
        clock_(std::move(clock)),
        options_(options),
        workflow_(std::move(workflow)),
        observer_(std::move(observer)),
        done_future_(done_promise_.get_future().share()) {
    build_graph();
  }

  const std::string& id() const override { return run_.id; }

  void cancel() override {
    asio::dispatch(strand_, [self = shared_from_this()] { self->stop_run(StopReason::cancel); });
  }

  RunRecord wait() override { return done_future_.get(); }

  void on_done(std::function<void(const RunRecord&)> fn) override {
    std::unique_lock lock(done_mutex_);
    if (finished_) {
      const RunRecord record = final_record_;
      lock.unlock();
      fn(record);
      return;
    }
    done_callbacks_.push_back(std::move(fn));
  }

  void start(RunRequest request) {
    const EpochMillis now = to_epoch_millis(clock_->now());
    run_.id = request.run_id.empty()
                  ? workflow_->name + "-" + compact_utc(now) + "-" + random_suffix()
                  : request.run_id;
    run_.workflow = workflow_->name;
    run_.state = RunState::running;
    params_ = std::move(request.params);
    prepare_masker();
    run_.params = masker_->mask_json(params_);
    run_.source_path = workflow_->source_path;
    run_.definition = workflow_->source_text;
    run_.definition_hash = definition_hash(workflow_->source_text);
    run_.logical_date = request.logical_date.empty() ? format_utc(now) : request.logical_date;
    run_.created_at = now;
    run_.started_at = now;
    run_.owner = options_.owner;
    run_.lease_expires_at = now + options_.lease_duration.count();
    for (auto& slot : slots_) {
      slot.rec.run_id = run_.id;
      slot.rec.task_id = slot.spec->id;
      slot.rec.max_tries = slot.spec->retry.retries + 1;
      batch_.tasks.push_back(slot.rec);
    }
    batch_.runs.push_back(run_);
    keep_alive_ = shared_from_this();
    asio::dispatch(strand_, [self = shared_from_this()] {
      self->notify_run();
      for (std::size_t i = 0; i < self->slots_.size(); ++i) self->evaluate(i);
      self->arm_run_timers();
      self->maybe_finish();  // a workflow of hooks only has no main task to wait for
      self->flush();
    });
  }

  void resume(RunRecord run, std::vector<TaskRecord> tasks) {
    run_ = std::move(run);
    params_ = run_.params;  // secret params were re-supplied by the caller (they are stored masked)
    prepare_masker();
    run_.params = masker_->mask_json(params_);
    keep_alive_ = shared_from_this();
    const EpochMillis now = to_epoch_millis(clock_->now());
    run_.state = RunState::running;
    run_.owner = options_.owner;
    run_.lease_expires_at = now + options_.lease_duration.count();
    for (auto& record : tasks) {
      auto it = index_.find(record.task_id);
      if (it == index_.end()) continue;
      TaskSlot& slot = slots_[it->second];
      slot.rec = std::move(record);
      if (slot.rec.state == TaskState::success) task_outputs_[slot.spec->id] = slot.rec.outputs;
    }
    for (auto& slot : slots_) {
      slot.rec.run_id = run_.id;
      slot.rec.task_id = slot.spec->id;
    }
    recount();
    batch_.runs.push_back(run_);
    asio::dispatch(strand_, [self = shared_from_this()] { self->adopt(); });
  }

 private:
  static std::string definition_hash(const std::string& text);

  void build_graph() {
    slots_.resize(workflow_->tasks.size());
    for (std::size_t i = 0; i < workflow_->tasks.size(); ++i) {
      slots_[i].spec = &workflow_->tasks[i];
      index_.emplace(workflow_->tasks[i].id, i);
      collect_template_refs(workflow_->tasks[i].with, slots_[i]);
    }
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      for (const auto& dep : slots_[i].spec->depends) {
        auto it = index_.find(dep);
        if (it == index_.end()) continue;  // the loader rejects unknown dependencies
        slots_[i].upstream.push_back(it->second);
        slots_[it->second].downstream.push_back(i);
      }
    }
    auto mark_hooks = [&](const std::vector<std::string>& ids, TaskSlot::Hook hook) {
      for (const auto& id : ids) {
        auto it = index_.find(id);
        if (it != index_.end()) slots_[it->second].hook |= hook;
      }
    };
    mark_hooks(workflow_->on_failure, TaskSlot::Hook::on_failure);
    mark_hooks(workflow_->on_success, TaskSlot::Hook::on_success);
    main_tasks_ =
        static_cast<std::size_t>(std::count_if(slots_.begin(), slots_.end(), [](const TaskSlot& s) {
          return s.hook == TaskSlot::Hook::none;
        }));
    has_hooks_ = !workflow_->on_failure.empty() || !workflow_->on_success.empty();
  }

  void prepare_masker() {
    auto masker = std::make_shared<SecretMasker>(
        options_.masker ? *options_.masker : SecretMasker::from_environment());
    for (const auto& param : workflow_->params) {
      if (!param.secret || !params_.contains(param.name)) continue;
      const Json& value = params_[param.name];
      masker->add(value.is_string() ? value.get<std::string>() : value.dump());
    }
    masker_ = std::move(masker);
    for (const auto& name : workflow_->env_allow) {
      if (const char* value = std::getenv(name.c_str())) env_.emplace(name, value);
    }
  }

  // ---- events (all on strand_) ----

  void adopt() {
    notify_run();
    const EpochMillis now = to_epoch_millis(clock_->now());
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      TaskSlot& slot = slots_[i];
      switch (slot.rec.state) {
        case TaskState::queued:
          // Ready but not started (a due retry, or a task made ready by the last commit).
          launch_after_commit_.push_back(i);
          break;
        case TaskState::running: {
          // The try that was running when the owner died is over: record it as failed and let the
          // retry policy decide, exactly as if the operator had failed.
          std::string message = "podflow stopped while try " + std::to_string(slot.rec.try_number) +
                                " was running; the run was resumed by " + options_.owner;
          std::int64_t process_group = 0;
          for (const auto& attempt : store_.get_tries(run_.id, slot.spec->id)) {
            if (attempt.try_number == slot.rec.try_number) process_group = attempt.pid;
          }
          if (process_group > 0) {
            const int killed = kill_leftover_processes(process_group, run_.id);
            if (killed > 0) {
              message += "; killed " + std::to_string(killed) + " process(es) it left running";
            }
          }
          TaskError error{ErrorKind::task_failed, message};
          TryRecord attempt{run_.id,
                            slot.spec->id,
                            slot.rec.try_number,
                            TaskState::failed,
                            std::string(to_string(error.kind)),
                            error.message,
                            slot.rec.started_at,
                            now,
                            process_group};
          batch_.tries.push_back(attempt);
          fail_or_retry(i, error);
          break;
        }
        case TaskState::up_for_retry:
          arm_retry(i, SysTime(std::chrono::milliseconds(slot.rec.next_try_at)));
          break;
        default:
          break;
      }
    }
    for (std::size_t i = 0; i < slots_.size(); ++i) evaluate(i);
    arm_run_timers();
    maybe_finish();
    flush();
  }

  void evaluate(std::size_t i) {
    std::vector<std::size_t> work{i};
    while (!work.empty()) {
      const std::size_t t = work.back();
      work.pop_back();
      TaskSlot& slot = slots_[t];
      if (slot.rec.state != TaskState::none) continue;
      Decision decision = Decision::wait;
      if (slot.hook != TaskSlot::Hook::none && !hooks_released_) continue;
      if (slot.hook != TaskSlot::Hook::none && hook_unwanted(slot.hook)) {
        decision = Decision::skip;
      } else if (stopping_ != StopReason::none && !is_cleanup(slot.spec->trigger_rule) &&
                 slot.hook == TaskSlot::Hook::none) {
        decision = Decision::skip;
      } else {
        UpstreamCounts counts = slot.upstream_counts;
        counts.total = slot.upstream.size();
        decision = decide(slot.spec->trigger_rule, counts);
      }
      switch (decision) {
        case Decision::wait:
          break;
        case Decision::run:
          set_state(t, TaskState::queued);
          launch_after_commit_.push_back(t);
          break;
        case Decision::skip:
        case Decision::upstream_failed:
          slot.rec.ended_at = to_epoch_millis(clock_->now());
          set_state(t,
                    decision == Decision::skip ? TaskState::skipped : TaskState::upstream_failed);
          for (std::size_t d : slot.downstream) work.push_back(d);
          break;
      }
    }
  }

  bool hook_unwanted(unsigned hook) const {
    if (stopping_ == StopReason::cancel) return true;  // a cancelled run sends no alerts
    return (hook & (main_failed_ ? TaskSlot::Hook::on_failure : TaskSlot::Hook::on_success)) == 0;
  }

  void launch(std::size_t i) {
    TaskSlot& slot = slots_[i];
    if (slot.rec.state != TaskState::queued) return;
    if (stopping_ != StopReason::none && !is_cleanup(slot.spec->trigger_rule) &&
        slot.hook == TaskSlot::Hook::none) {
      slot.rec.ended_at = to_epoch_millis(clock_->now());
      set_state(i, TaskState::skipped);
      after_terminal(i);
      return;
    }
    const SysTime now = clock_->now();
    slot.rec.try_number += 1;
    slot.rec.started_at = to_epoch_millis(now);
    slot.rec.ended_at = 0;
    slot.rec.next_try_at = 0;
    slot.rec.error_kind.clear();
    slot.rec.error_message.clear();
    slot.stop = StopReason::none;
    set_state(i, TaskState::running);
    const int try_number = slot.rec.try_number;
    batch_.tries.push_back(TryRecord{run_.id, slot.spec->id, try_number, TaskState::running, "", "",
                                     slot.rec.started_at, 0, 0});

    Json args = slot.spec->with;
    if (slot.has_templates) {
      TemplateScope scope;
      scope.params = params_;
      scope.run =
          Json{{"id", run_.id}, {"logical_date", run_.logical_date}, {"workflow", run_.workflow}};
      for (const auto& task : slot.template_tasks) {
        if (auto it = task_outputs_.find(task); it != task_outputs_.end()) {
          scope.task_outputs.emplace(task, it->second);
        }
      }
      scope.env = env_;
      auto rendered = render(slot.spec->with, scope);
      if (auto* error = std::get_if<TaskError>(&rendered)) {
        finish_try(i, try_number, TaskOutcome{Json::object(), *error});
        return;
      }
      args = std::move(std::get<Json>(rendered));
    }

    const auto logs_dir = options_.home / "logs";
    std::weak_ptr<Run> weak = weak_from_this();
    const std::string task_id = slot.spec->id;
    slot.log = std::make_shared<FileTaskLog>(
        task_log_path(logs_dir, run_.id, task_id, try_number), masker_,
        [weak, task_id, try_number](std::string_view line) {
          if (auto self = weak.lock(); self && self->observer_) {
            self->observer_->on_log_line(self->run_.id, task_id, try_number, line);
          }
        });
    // Operators that need scratch files create the folder (mkdir is slow here: ~0.7 ms); most never
    // do.
    slot.scratch_dir = options_.home / "scratch" / run_.id / task_id / std::to_string(try_number);

    TaskContext ctx;
    ctx.run_id = run_.id;
    ctx.task_id = task_id;
    ctx.try_number = try_number;
    ctx.args = std::move(args);
    ctx.log = slot.log;
    ctx.recorder = std::make_shared<TryRecorder>(store_, clock_, run_.id, task_id, try_number,
                                                 options_.install_id, options_.owner);
    ctx.scratch_dir = slot.scratch_dir;
    for (const std::size_t up : slot.upstream) {
      ctx.upstream_states[slots_[up].spec->id] = std::string(to_string(slots_[up].rec.state));
    }
    ctx.env = {{"PODFLOW_RUN_ID", run_.id},
               {"PODFLOW_TASK_ID", task_id},
               {"PODFLOW_TRY_NUMBER", std::to_string(try_number)},
               {"PODFLOW_LOGICAL_DATE", run_.logical_date},
               {"PODFLOW_WORKFLOW", run_.workflow}};

    slot.process_group = 0;
    ctx.on_process_started = [weak, i, try_number](std::int64_t process_group) {
      auto self = weak.lock();
      if (!self) return;
      asio::dispatch(self->strand_, [self, i, try_number, process_group] {
        TaskSlot& s = self->slots_[i];
        if (s.rec.state != TaskState::running || s.rec.try_number != try_number) return;
        s.process_group = process_group;
        self->batch_.tries.push_back(TryRecord{self->run_.id, s.spec->id, try_number,
                                               TaskState::running, "", "", s.rec.started_at, 0,
                                               process_group});
        self->flush();
      });
    };

    slot.signal = std::make_shared<asio::cancellation_signal>();
    if (slot.spec->timeout) {
      slot.timeout_timer =
          clock_->call_at(now + *slot.spec->timeout, strand_, [weak, i, try_number] {
            if (auto self = weak.lock()) self->stop_try(i, try_number, StopReason::timeout);
          });
    }
    auto op = slot.spec->op;
    asio::co_spawn(
        strand_, op->execute(std::move(ctx)),
        asio::bind_cancellation_slot(
            slot.signal->slot(),
            // The handler owns the signal too: Asio keeps the coroutine's cancellation state in it,
            // and an abandoned operator may still touch it after the slot moved on.
            [self = shared_from_this(), i, try_number, signal = slot.signal](std::exception_ptr ep,
                                                                             TaskOutcome outcome) {
              if (ep) outcome = outcome_from_exception(ep);
              asio::dispatch(self->strand_, [self, i, try_number, outcome = std::move(outcome)] {
                self->finish_try(i, try_number, outcome);
                self->flush();
              });
            }));
  }

  static TaskOutcome outcome_from_exception(std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const boost::system::system_error& e) {
      if (e.code() == asio::error::operation_aborted) {
        return TaskOutcome::failure(ErrorKind::cancelled, "operation cancelled");
      }
      return TaskOutcome::failure(ErrorKind::task_failed, e.what());
    } catch (const std::exception& e) {
      return TaskOutcome::failure(ErrorKind::task_failed,
                                  std::string("operator threw: ") + e.what());
    } catch (...) {
      return TaskOutcome::failure(ErrorKind::task_failed, "operator threw an unknown exception");
    }
  }

  // Cancellation or timeout of one running try; the operator gets `cancel_grace` to stop.
  void stop_try(std::size_t i, int try_number, StopReason reason) {
    TaskSlot& slot = slots_[i];
    if (slot.rec.state != TaskState::running || slot.rec.try_number != try_number) return;
    if (slot.stop != StopReason::none) return;
    slot.stop = reason;
    if (slot.log) {
      slot.log->write(reason == StopReason::timeout
                          ? "podflow: timed out after " + format_duration(*slot.spec->timeout) +
                                "; stopping the task\n"
                          : std::string("podflow: run cancelled; stopping the task\n"));
    }
    slot.signal->emit(asio::cancellation_type::terminal);
    std::weak_ptr<Run> weak = weak_from_this();
    slot.abandon_timer =
        clock_->call_at(clock_->now() + options_.cancel_grace, strand_, [weak, i, try_number] {
          auto self = weak.lock();
          if (!self) return;
          self->finish_try(i, try_number,
                           TaskOutcome::failure(ErrorKind::cancelled,
                                                "operator did not stop within the grace period; "
                                                "abandoned"));
          self->flush();
        });
  }

  void finish_try(std::size_t i, int try_number, TaskOutcome outcome) {
    TaskSlot& slot = slots_[i];
    if (slot.rec.state != TaskState::running || slot.rec.try_number != try_number) return;
    for (auto* timer : {&slot.timeout_timer, &slot.abandon_timer}) {
      if (*timer) (*timer)->cancel();
      timer->reset();
    }
    slot.signal.reset();
    if (slot.log) {
      if (outcome.error) {
        slot.log->write("podflow: try " + std::to_string(try_number) + " failed (" +
                        std::string(to_string(outcome.error->kind)) +
                        "): " + outcome.error->message + "\n");
      }
      slot.log->close();
      slot.log.reset();
    }
    std::error_code ec;
    std::filesystem::remove_all(slot.scratch_dir, ec);

    if (outcome.error && slot.stop == StopReason::timeout) {
      outcome.error->kind = ErrorKind::timeout;
      outcome.error->message = "timed out after " + format_duration(*slot.spec->timeout) +
                               " (try " + std::to_string(try_number) + ")";
    } else if (outcome.error && slot.stop == StopReason::cancel) {
      outcome.error->kind =
          stopping_ == StopReason::timeout ? ErrorKind::timeout : ErrorKind::cancelled;
      outcome.error->message = stopping_ == StopReason::timeout
                                   ? "run timed out after " + format_duration(*workflow_->timeout)
                                   : "cancelled while running";
    }

    const EpochMillis now = to_epoch_millis(clock_->now());
    slot.rec.ended_at = now;
    TryRecord attempt{
        run_.id, slot.spec->id, try_number, TaskState::success, "", "", slot.rec.started_at, now,
        0};
    if (!outcome.error) {
      slot.rec.outputs =
          masker_->mask_json(outcome.outputs.is_object() ? outcome.outputs : Json::object());
      task_outputs_[slot.spec->id] = slot.rec.outputs;
      batch_.tries.push_back(attempt);
      set_state(i, TaskState::success);
      after_terminal(i);
      return;
    }
    outcome.error->message = masker_->mask(outcome.error->message);
    attempt.state = TaskState::failed;
    attempt.error_kind = std::string(to_string(outcome.error->kind));
    attempt.error_message = outcome.error->message;
    batch_.tries.push_back(attempt);
    fail_or_retry(i, *outcome.error);
  }

  void fail_or_retry(std::size_t i, const TaskError& error) {
    TaskSlot& slot = slots_[i];
    slot.rec.error_kind = std::string(to_string(error.kind));
    slot.rec.error_message = error.message;
    const bool may_retry = slot.rec.try_number < slot.rec.max_tries &&
                           slot.spec->retry.retries_kind(error.kind) &&
                           (stopping_ == StopReason::none || is_cleanup(slot.spec->trigger_rule) ||
                            slot.hook != TaskSlot::Hook::none);
    if (may_retry) {
      Millis delay = compute_retry_delay(slot.spec->retry, slot.rec.try_number, random01());
      if (error.retry_after) delay = std::max(delay, *error.retry_after);
      const SysTime due = clock_->now() + delay;
      slot.rec.next_try_at = to_epoch_millis(due);
      set_state(i, TaskState::up_for_retry);
      arm_retry(i, due);
      return;
    }
    set_state(i, TaskState::failed);
    if (first_failure_.empty()) {
      first_failure_ = "task '" + slot.spec->id + "' failed: " + error.message;
    }
    after_terminal(i);
  }

  void arm_retry(std::size_t i, SysTime due) {
    std::weak_ptr<Run> weak = weak_from_this();
    slots_[i].retry_timer = clock_->call_at(due, strand_, [weak, i] {
      auto self = weak.lock();
      if (!self) return;
      TaskSlot& slot = self->slots_[i];
      slot.retry_timer.reset();
      if (slot.rec.state != TaskState::up_for_retry) return;
      self->set_state(i, TaskState::queued);
      self->launch_after_commit_.push_back(i);
      self->flush();
    });
  }

  double random01() {
    if (options_.random01) return options_.random01();
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  }

  void after_terminal(std::size_t i) {
    for (std::size_t d : slots_[i].downstream) evaluate(d);
    maybe_finish();
  }

  void stop_run(StopReason reason) {
    if (stopping_ != StopReason::none || is_terminal(run_.state)) return;
    stopping_ = reason;
    if (reason == StopReason::cancel) reason_ = "cancelled by the user";
    if (reason == StopReason::timeout) {
      reason_ = "run timed out after " + format_duration(*workflow_->timeout);
    }
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      TaskSlot& slot = slots_[i];
      const bool cleanup = is_cleanup(slot.spec->trigger_rule) || slot.hook != TaskSlot::Hook::none;
      if (slot.rec.state == TaskState::running) {
        // Cleanup already under way (terminating pods) is exactly what a cancel must not stop.
        if (!cleanup || reason == StopReason::store_failure) {
          stop_try(i, slot.rec.try_number, StopReason::cancel);
        }
      } else if (slot.rec.state == TaskState::up_for_retry && !cleanup) {
        if (slot.retry_timer) slot.retry_timer->cancel();
        slot.retry_timer.reset();
        slot.rec.ended_at = to_epoch_millis(clock_->now());
        set_state(i, TaskState::failed);
        if (first_failure_.empty()) {
          first_failure_ = "task '" + slot.spec->id + "' failed: " + slot.rec.error_message;
        }
      }
    }
    for (std::size_t i = 0; i < slots_.size(); ++i) evaluate(i);
    maybe_finish();
    flush();
  }

  void arm_run_timers() {
    std::weak_ptr<Run> weak = weak_from_this();
    if (workflow_->timeout) {
      const SysTime due = SysTime(std::chrono::milliseconds(run_.started_at)) + *workflow_->timeout;
      run_timeout_timer_ = clock_->call_at(due, strand_, [weak] {
        if (auto self = weak.lock()) self->stop_run(StopReason::timeout);
      });
    }
    arm_lease_renewal();
  }

  void arm_lease_renewal() {
    std::weak_ptr<Run> weak = weak_from_this();
    lease_timer_ = clock_->call_at(clock_->now() + options_.lease_renew_every, strand_, [weak] {
      auto self = weak.lock();
      if (!self || is_terminal(self->run_.state)) return;
      self->run_.lease_expires_at =
          to_epoch_millis(self->clock_->now()) + self->options_.lease_duration.count();
      self->batch_.leases.push_back(
          LeaseUpdate{self->run_.id, self->run_.owner, self->run_.lease_expires_at});
      self->flush();
      self->arm_lease_renewal();
    });
  }

  void maybe_finish() {
    if (is_terminal(run_.state) || finishing_) return;
    const bool main_done = main_terminal_ == main_tasks_;
    bool all_done = terminal_ == slots_.size();
    bool failed = failed_ > 0;
    if (has_hooks_ && main_done && !hooks_released_) {
      hooks_released_ = true;
      main_failed_ = main_failed_count_ > 0 || stopping_ == StopReason::timeout;
      for (std::size_t i = 0; i < slots_.size(); ++i) {
        if (slots_[i].hook != TaskSlot::Hook::none) evaluate(i);
      }
      all_done = terminal_ == slots_.size();
      failed = failed_ > 0;
    }
    if (!all_done) return;
    finishing_ = true;
    if (run_timeout_timer_) run_timeout_timer_->cancel();
    if (lease_timer_) lease_timer_->cancel();
    if (stopping_ == StopReason::cancel) {
      run_.state = RunState::cancelled;
      run_.reason = reason_;
    } else if (stopping_ == StopReason::timeout || stopping_ == StopReason::store_failure) {
      run_.state = RunState::failed;
      run_.reason = reason_;
    } else if (failed) {
      run_.state = RunState::failed;
      run_.reason = first_failure_.empty() ? "an upstream task failed" : first_failure_;
    } else {
      run_.state = RunState::success;
    }
    run_.ended_at = to_epoch_millis(clock_->now());
    run_.owner.clear();
    run_.lease_expires_at = 0;
    batch_.runs.push_back(run_);
    finish_after_commit_ = true;
  }

  void set_state(std::size_t i, TaskState state) {
    TaskSlot& slot = slots_[i];
    if (!is_terminal(slot.rec.state) && is_terminal(state)) count_terminal(i, state);
    slot.rec.state = state;
    batch_.tasks.push_back(slot.rec);
    if (observer_) observer_->on_task_state(run_, slot.rec);
  }

  void count_terminal(std::size_t i, TaskState state) {
    const bool failed = state == TaskState::failed || state == TaskState::upstream_failed;
    ++terminal_;
    if (slots_[i].hook == TaskSlot::Hook::none) ++main_terminal_;
    if (failed) ++failed_;
    if (failed && slots_[i].hook == TaskSlot::Hook::none) ++main_failed_count_;
    for (std::size_t d : slots_[i].downstream) {
      UpstreamCounts& counts = slots_[d].upstream_counts;
      ++counts.done;
      if (state == TaskState::success) ++counts.success;
      if (failed) ++counts.failed;
      if (state == TaskState::skipped || state == TaskState::removed) ++counts.skipped;
    }
  }

  // Counters from the records as loaded (resume).
  void recount() {
    terminal_ = main_terminal_ = failed_ = main_failed_count_ = 0;
    for (auto& slot : slots_) slot.upstream_counts = UpstreamCounts{};
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (is_terminal(slots_[i].rec.state)) count_terminal(i, slots_[i].rec.state);
    }
  }

  void notify_run() {
    if (observer_) observer_->on_run_state(run_);
  }

  // Commits what this event changed; the tasks it made ready start once the commit is durable.
  void flush() {
    if (batch_.empty() && launch_after_commit_.empty() && !finish_after_commit_) return;
    StoreBatch batch = std::move(batch_);
    batch_ = StoreBatch{};
    batch.fence_run = run_.id;
    batch.fence_owner = options_.owner;
    auto launches = std::move(launch_after_commit_);
    launch_after_commit_.clear();
    const bool finish = finish_after_commit_;
    finish_after_commit_ = false;
    store_.submit(std::move(batch), [self = shared_from_this(), launches = std::move(launches),
                                     finish](std::error_code ec) mutable {
      asio::dispatch(self->strand_, [self, launches = std::move(launches), finish, ec] {
        self->committed(launches, finish, ec);
      });
    });
  }

  void committed(const std::vector<std::size_t>& launches, bool finish, std::error_code ec) {
    if (ec && !store_failed_) {
      store_failed_ = true;
      std::fprintf(stderr, "podflow: run %s: could not record state (%s); stopping the run\n",
                   run_.id.c_str(), ec.message().c_str());
      reason_ = ec == make_error_code(StoreErrc::lease_lost)
                    ? "another process took this run over (its lease had expired); this one "
                      "stopped driving it"
                    : "the run store failed: " + ec.message();
      stop_run(StopReason::store_failure);
    }
    if (!store_failed_) {
      for (std::size_t i : launches) launch(i);
      // The running states are written without waiting for them, and after the operators had their
      // first turn on the strand: a task that finishes at once (noop, a failed render) commits
      // running and success in one transaction instead of two.
      asio::post(strand_, [self = shared_from_this()] { self->flush(); });
    } else {
      for (std::size_t i : launches) {
        if (slots_[i].rec.state == TaskState::queued) {
          set_state(i, TaskState::skipped);
          after_terminal(i);
        }
      }
      flush();
    }
    if (finish) complete();
  }

  void complete() {
    std::error_code ec;
    std::filesystem::remove_all(options_.home / "scratch" / run_.id, ec);
    notify_run();
    std::vector<std::function<void(const RunRecord&)>> callbacks;
    {
      std::lock_guard lock(done_mutex_);
      finished_ = true;
      final_record_ = run_;
      callbacks.swap(done_callbacks_);
    }
    done_promise_.set_value(run_);
    for (auto& fn : callbacks) fn(run_);
    keep_alive_.reset();  // nothing of this run is pending any more
  }

  asio::strand<asio::any_io_executor> strand_;
  RunStore& store_;
  std::shared_ptr<Clock> clock_;
  const ExecutorOptions options_;
  std::shared_ptr<const Workflow> workflow_;
  std::shared_ptr<RunObserver> observer_;

  RunRecord run_;
  Json params_ = Json::object();
  std::shared_ptr<const SecretMasker> masker_;
  std::map<std::string, std::string, std::less<>> env_;
  std::vector<TaskSlot> slots_;
  std::map<std::string, std::size_t, std::less<>> index_;
  std::map<std::string, Json, std::less<>> task_outputs_;
  std::mt19937_64 rng_{std::random_device{}()};

  StoreBatch batch_;
  std::vector<std::size_t> launch_after_commit_;
  bool finish_after_commit_ = false;

  StopReason stopping_ = StopReason::none;
  std::string reason_;
  std::string first_failure_;
  bool has_hooks_ = false;
  std::size_t main_tasks_ = 0;         // tasks that are not on_failure/on_success hooks
  std::size_t terminal_ = 0;           // tasks in a terminal state
  std::size_t main_terminal_ = 0;      // of those, not hooks
  std::size_t failed_ = 0;             // failed or upstream_failed
  std::size_t main_failed_count_ = 0;  // of those, not hooks
  bool hooks_released_ = false;
  bool main_failed_ = false;
  bool finishing_ = false;
  bool store_failed_ = false;
  std::shared_ptr<TimerHandle> run_timeout_timer_;
  std::shared_ptr<TimerHandle> lease_timer_;

  std::mutex done_mutex_;
  bool finished_ = false;
  RunRecord final_record_;
  std::vector<std::function<void(const RunRecord&)>> done_callbacks_;
  std::promise<RunRecord> done_promise_;
  // A run keeps itself alive until it finished, so dropping its handle never strands a retry timer.
  std::shared_ptr<Run> keep_alive_;
  std::shared_future<RunRecord> done_future_;
};

std::string Run::definition_hash(const std::string& text) { return sha256_hex(text); }

}  // namespace

Executor::Executor(asio::any_io_executor io, RunStore& store, std::shared_ptr<Clock> clock,
                   ExecutorOptions options)
    : io_(std::move(io)), store_(store), clock_(std::move(clock)), options_(std::move(options)) {
  if (options_.owner.empty()) options_.owner = default_owner_id();
  if (options_.install_id.empty() && !options_.home.empty()) {
    options_.install_id = load_or_create_install_id(options_.home);
  }
  if (!options_.masker) {
    options_.masker = std::make_shared<SecretMasker>(SecretMasker::from_environment());
  }
}

Executor::~Executor() = default;

std::shared_ptr<RunHandle> Executor::start(RunRequest request,
                                           std::shared_ptr<RunObserver> observer) {
  auto run =
      std::make_shared<Run>(io_, store_, clock_, options_, request.workflow, std::move(observer));
  run->start(std::move(request));
  return run;
}

std::shared_ptr<RunHandle> Executor::resume(std::shared_ptr<const Workflow> workflow, RunRecord run,
                                            std::vector<TaskRecord> tasks,
                                            std::shared_ptr<RunObserver> observer) {
  auto handle = std::make_shared<Run>(io_, store_, clock_, options_, std::move(workflow),
                                      std::move(observer));
  handle->resume(std::move(run), std::move(tasks));
  return handle;
}

}  // namespace podflow::engine
