// The podflow command line: parses arguments, wires the engine to the operators, prints results.
#include "app/cli.hpp"

#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "app/home.hpp"
#include "app/reap_command.hpp"
#include "app/runpod_sim_command.hpp"
#include "app/serve_command.hpp"
#include "app/token_command.hpp"
#include "podflow/engine/cron.hpp"
#include "podflow/engine/duration.hpp"
#include "podflow/engine/executor.hpp"
#include "podflow/engine/loader.hpp"
#include "podflow/engine/store.hpp"
#include "podflow/engine/task_log.hpp"
#include "podflow/operators/core.hpp"
#include "podflow/operators/mlflow.hpp"
#include "podflow/operators/runpod.hpp"

namespace podflow::app {
namespace {

namespace asio = boost::asio;
using namespace podflow::engine;

constexpr int kExitSuccess = 0;
constexpr int kExitRunFailed = 1;
constexpr int kExitBadInput = 2;
constexpr int kExitCancelled = 130;

// The process's MLflow outbox: mlflow.log records through it; drive_run attaches the store.
std::shared_ptr<mlflow::Outbox> mlflow_outbox() {
  static const auto outbox = std::make_shared<mlflow::Outbox>();
  return outbox;
}

OperatorRegistry make_registry() {
  OperatorRegistry registry;
  operators::register_core_operators(registry);
  operators::register_runpod_operators(registry);
  mlflow::register_mlflow_operators(registry, mlflow_outbox());
  return registry;
}

// How long `podflow run` waits at the end for MLflow records of its run that are still pending.
std::chrono::milliseconds outbox_wait() {
  if (const char* text = std::getenv("PODFLOW_OUTBOX_WAIT"); text && *text) {
    if (auto parsed = parse_duration(text)) return *parsed;
  }
  return std::chrono::seconds(30);
}

void print_diagnostics(const std::vector<Diagnostic>& diagnostics) {
  for (const auto& d : diagnostics) std::cerr << d.to_string() << "\n";
}

std::shared_ptr<const Workflow> load_or_report(const std::string& file,
                                               const OperatorRegistry& registry) {
  auto loaded = load_workflow_file(file, registry);
  if (auto* errors = std::get_if<std::vector<Diagnostic>>(&loaded)) {
    print_diagnostics(*errors);
    std::cerr << errors->size() << (errors->size() == 1 ? " error" : " errors") << " in " << file
              << "\n";
    return nullptr;
  }
  return std::make_shared<const Workflow>(std::move(std::get<Workflow>(loaded)));
}

std::string format_millis(EpochMillis millis) {
  if (millis < 0) millis = 0;
  if (millis < 1000) return std::to_string(millis) + "ms";
  if (millis < 60'000) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.1fs", static_cast<double>(millis) / 1000.0);
    return buffer;
  }
  return format_duration(Millis((millis / 1000) * 1000));
}

std::string task_duration(const TaskRecord& task) {
  if (task.started_at == 0) return "-";
  const EpochMillis end =
      task.ended_at != 0 ? task.ended_at : to_epoch_millis(std::chrono::system_clock::now());
  return format_millis(end - task.started_at);
}

std::string clock_time(EpochMillis t) {
  const auto text = format_utc(t);  // 2026-12-03T18:25:00Z
  char millis[8];
  std::snprintf(millis, sizeof millis, ".%03lld", static_cast<long long>(t % 1000));
  return text.substr(11, 8) + millis;
}

std::string pad(std::string text, std::size_t width) {
  if (text.size() < width) text.append(width - text.size(), ' ');
  return text;
}

// The store lists tasks by id; people read them in the order the workflow file declares them.
std::vector<TaskRecord> in_workflow_order(std::vector<TaskRecord> tasks, const Workflow* workflow) {
  if (workflow == nullptr) return tasks;
  std::map<std::string, std::size_t> position;
  for (std::size_t i = 0; i < workflow->tasks.size(); ++i) position[workflow->tasks[i].id] = i;
  std::stable_sort(tasks.begin(), tasks.end(), [&](const TaskRecord& a, const TaskRecord& b) {
    const auto pa = position.find(a.task_id);
    const auto pb = position.find(b.task_id);
    const std::size_t ia = pa == position.end() ? position.size() : pa->second;
    const std::size_t ib = pb == position.end() ? position.size() : pb->second;
    return ia < ib;
  });
  return tasks;
}

void print_task_table(std::ostream& out, const std::vector<TaskRecord>& tasks) {
  std::size_t width = 4;
  for (const auto& task : tasks) width = std::max(width, task.task_id.size());
  out << pad("TASK", width + 2) << pad("STATE", 17) << pad("TRIES", 7) << "DURATION\n";
  for (const auto& task : tasks) {
    out << pad(task.task_id, width + 2) << pad(std::string(to_string(task.state)), 17)
        << pad(std::to_string(task.try_number), 7) << task_duration(task) << "\n";
    if (!task.error_message.empty() && task.state != TaskState::success) {
      out << "  " << pad("", width) << "error (" << task.error_kind << "): " << task.error_message
          << "\n";
    }
  }
}

// Prints each state change and log line of a foreground run as it happens.
class ConsoleObserver final : public RunObserver {
 public:
  void on_task_state(const RunRecord& /*run*/, const TaskRecord& task) override {
    if (task.state == TaskState::none) return;
    std::lock_guard lock(mutex_);
    std::string line = clock_time(to_epoch_millis(std::chrono::system_clock::now())) + "  " +
                       pad(task.task_id, 20) + " " + pad(std::string(to_string(task.state)), 16);
    if (task.state == TaskState::running) line += "try " + std::to_string(task.try_number);
    if (task.state == TaskState::success) line += task_duration(task);
    if (task.state == TaskState::failed || task.state == TaskState::up_for_retry) {
      line += task.error_kind + ": " + task.error_message;
    }
    if (task.state == TaskState::up_for_retry) {
      line += " (next try in " +
              format_millis(task.next_try_at - to_epoch_millis(std::chrono::system_clock::now())) +
              ")";
    }
    std::cout << line << std::endl;
  }
  void on_log_line(const std::string& /*run_id*/, const std::string& task_id, int /*try_number*/,
                   std::string_view text) override {
    std::lock_guard lock(mutex_);
    std::cout << "    " << task_id << " | " << text << std::endl;
  }
  void on_run_state(const RunRecord& run) override {
    std::lock_guard lock(mutex_);
    if (run.state == RunState::running) {
      std::cout << "run " << run.id << " started (workflow " << run.workflow << ", logs in "
                << (podflow_home() / "logs" / run.id).string() << ")" << std::endl;
    }
  }

 private:
  std::mutex mutex_;
};

// Drives one run in the foreground: Ctrl-C cancels it (cleanup tasks still run), a second Ctrl-C
// exits at once.
int drive_run(const std::function<std::shared_ptr<RunHandle>(Executor&)>& start_run,
              RunStore& store, const Workflow& workflow, const std::string& owner) {
  asio::thread_pool pool(std::max(2U, std::thread::hardware_concurrency()));
  ExecutorOptions options;
  options.home = podflow_home();
  options.owner = owner;
  Executor executor(pool.get_executor(), store, make_system_clock(), options);
  // Installed before the run starts: a Ctrl-C during start-up is queued here and cancels the run
  // (cleanup included) instead of killing the process the default way.
  asio::signal_set signals(pool.get_executor(), SIGINT, SIGTERM);
  // MLflow records of this run and of earlier ones that MLflow did not take yet.
  const auto outbox = mlflow_outbox();
  outbox->attach(store, pool.get_executor(), podflow_home() / "mlflow-outbox.lock");
  outbox->start();
  auto handle = start_run(executor);
  if (!handle) {
    outbox->stop();
    pool.stop();
    pool.join();
    outbox->detach();
    return kExitBadInput;
  }
  int interrupts = 0;
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int signal_number) {
        if (ec) return;
        if (++interrupts > 1) {
          std::cerr << "\npodflow: second interrupt; exiting without waiting for cleanup tasks\n";
          std::_Exit(kExitCancelled);
        }
        std::cerr << "\npodflow: " << (signal_number == SIGINT ? "interrupt" : "terminate")
                  << " received; cancelling run " << handle->id()
                  << " (cleanup tasks still run; press Ctrl-C again to exit now)\n";
        handle->cancel();
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);
  const RunRecord final_record = handle->wait();
  if (outbox->pending(final_record.id) > 0) {
    std::cout << "waiting up to " << format_millis(outbox_wait().count())
              << " for MLflow to take this run's records" << std::endl;
    if (const auto left = outbox->wait_for_run(final_record.id, outbox_wait()); left > 0) {
      std::cout << left << " MLflow record" << (left == 1 ? " is" : "s are")
                << " still pending; the next podflow run or podflow serve delivers "
                << (left == 1 ? "it" : "them") << " (see podflow runs show)" << std::endl;
    }
  }
  outbox->stop();
  // The signal set belongs to the pool's threads; cancel it there, not from this one.
  std::promise<void> cancelled;
  asio::post(pool.get_executor(), [&] {
    signals.cancel();
    cancelled.set_value();
  });
  cancelled.get_future().wait();
  store.flush();
  pool.stop();
  pool.join();
  outbox->detach();

  const auto tasks = in_workflow_order(store.get_tasks(final_record.id), &workflow);
  std::cout << "\n";
  print_task_table(std::cout, tasks);
  std::cout << "\nrun " << final_record.id << " " << to_string(final_record.state) << " in "
            << format_millis(final_record.ended_at - final_record.started_at);
  if (!final_record.reason.empty()) std::cout << ": " << final_record.reason;
  std::cout << std::endl;
  switch (final_record.state) {
    case RunState::success:
      return kExitSuccess;
    case RunState::cancelled:
      return kExitCancelled;
    default:
      return kExitRunFailed;
  }
}

// True when `owner` ("host:pid:start") names a process on this host that no longer exists.
bool owner_is_dead(const std::string& owner) {
  const auto first = owner.find(':');
  const auto second = owner.find(':', first + 1);
  if (first == std::string::npos || second == std::string::npos) return false;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  if (owner.substr(0, first) != host) return false;
  const long pid = std::strtol(owner.substr(first + 1, second - first - 1).c_str(), nullptr, 10);
  if (pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

int cmd_validate(const std::vector<std::string>& paths) {
  const auto registry = make_registry();
  std::vector<std::filesystem::path> files;
  for (const auto& path : paths) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      for (const auto& entry : std::filesystem::recursive_directory_iterator(path, ec)) {
        const auto ext = entry.path().extension();
        if (entry.is_regular_file() && (ext == ".yaml" || ext == ".yml")) {
          files.push_back(entry.path());
        }
      }
    } else {
      files.emplace_back(path);
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::cerr << "podflow validate: no workflow files (*.yaml, *.yml) found\n";
    return kExitBadInput;
  }
  std::size_t bad = 0;
  for (const auto& file : files) {
    auto loaded = load_workflow_file(file, registry);
    if (auto* errors = std::get_if<std::vector<Diagnostic>>(&loaded)) {
      print_diagnostics(*errors);
      ++bad;
    } else {
      const auto& workflow = std::get<Workflow>(loaded);
      std::cout << "ok " << file.string() << " (workflow " << workflow.name << ", "
                << workflow.tasks.size() << " tasks)\n";
    }
  }
  if (bad > 0) {
    std::cerr << bad << " of " << files.size() << " workflow files have errors\n";
    return kExitBadInput;
  }
  return kExitSuccess;
}

int cmd_run(const std::string& file, const std::vector<std::string>& param_args,
            const std::string& resume_id) {
  const auto registry = make_registry();
  if (resume_id.empty() == file.empty()) {
    std::cerr << "podflow run: give either a workflow FILE or --resume RUN\n";
    return kExitBadInput;
  }
  if (!resume_id.empty()) {
    auto store = open_store();
    if (!store) return kExitBadInput;
    auto run = store->get_run(resume_id);
    if (!run) {
      std::cerr << "podflow run --resume: no run '" << resume_id << "' in "
                << (podflow_home() / "podflow.db").string() << " (see `podflow runs list`)\n";
      return kExitBadInput;
    }
    if (is_terminal(run->state)) {
      std::cerr << "podflow run --resume: run '" << resume_id << "' already ended ("
                << to_string(run->state) << "); nothing to resume\n";
      return kExitBadInput;
    }
    auto loaded = load_workflow_text(run->definition, run->source_path, registry);
    if (auto* errors = std::get_if<std::vector<Diagnostic>>(&loaded)) {
      std::cerr << "podflow run --resume: the definition stored with run '" << resume_id
                << "' no longer loads:\n";
      print_diagnostics(*errors);
      return kExitBadInput;
    }
    auto workflow = std::make_shared<const Workflow>(std::move(std::get<Workflow>(loaded)));
    // Secret params are stored masked; the user supplies them again with --param.
    for (const auto& arg : param_args) {
      const auto eq = arg.find('=');
      const ParamSpec* spec =
          eq == std::string::npos ? nullptr : workflow->find_param(arg.substr(0, eq));
      if (spec == nullptr || !spec->secret) {
        std::cerr << "podflow run --resume: only secret params can be given again (a run keeps the "
                     "params it started with); '"
                  << arg.substr(0, eq) << "' is not one\n";
        return kExitBadInput;
      }
      auto value = parse_param_value(*spec, arg.substr(eq + 1));
      if (auto* error = std::get_if<std::string>(&value)) {
        std::cerr << "podflow run --resume: " << *error << "\n";
        return kExitBadInput;
      }
      run->params[spec->name] = std::get<Json>(value);
    }
    std::vector<std::string> missing;
    for (const auto& param : workflow->params) {
      if (param.secret && run->params.value(param.name, Json()) == Json("***")) {
        missing.push_back(param.name);
      }
    }
    if (!missing.empty()) {
      for (const auto& name : missing) {
        std::cerr << "podflow run --resume: secret param '" << name
                  << "' is not stored with the run; give it again with --param " << name
                  << "=VALUE\n";
      }
      return kExitBadInput;
    }
    const std::string owner = default_owner_id();
    const std::string previous_owner = run->owner;
    const EpochMillis now = to_epoch_millis(std::chrono::system_clock::now());
    const auto mode =
        owner_is_dead(run->owner) ? RunStore::Takeover::force : RunStore::Takeover::if_expired;
    if (!store->acquire_lease(resume_id, owner, now, now + 30'000, mode)) {
      std::cerr << "podflow run --resume: run '" << resume_id << "' is still owned by "
                << run->owner << " (lease until " << format_utc(run->lease_expires_at)
                << "); stop that process or wait for its lease to expire\n";
      return kExitBadInput;
    }
    std::cout << "resuming run " << resume_id << " (was owned by "
              << (previous_owner.empty() ? "nobody" : previous_owner) << ")" << std::endl;
    auto tasks = store->get_tasks(resume_id);
    return drive_run(
        [&](Executor& executor) {
          return executor.resume(workflow, *run, tasks, std::make_shared<ConsoleObserver>());
        },
        *store, *workflow, owner);
  }

  auto workflow = load_or_report(file, registry);
  if (!workflow) return kExitBadInput;
  std::vector<std::pair<std::string, std::string>> overrides;
  for (const auto& arg : param_args) {
    const auto eq = arg.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "podflow run: --param '" << arg << "' must be NAME=VALUE\n";
      return kExitBadInput;
    }
    overrides.emplace_back(arg.substr(0, eq), arg.substr(eq + 1));
  }
  auto params = resolve_params(*workflow, overrides);
  if (auto* errors = std::get_if<std::vector<std::string>>(&params)) {
    for (const auto& error : *errors) std::cerr << "podflow run: " << error << "\n";
    return kExitBadInput;
  }
  auto store = open_store();
  if (!store) return kExitBadInput;
  return drive_run(
      [&](Executor& executor) {
        return executor.start(RunRequest{workflow, std::get<Json>(params), "", ""},
                              std::make_shared<ConsoleObserver>());
      },
      *store, *workflow, default_owner_id());
}

int cmd_graph(const std::string& file, const std::string& format) {
  const auto registry = make_registry();
  auto workflow = load_or_report(file, registry);
  if (!workflow) return kExitBadInput;
  if (format == "dot") {
    std::cout << "digraph \"" << workflow->name << "\" {\n  rankdir=LR;\n";
    for (const auto& task : workflow->tasks) {
      std::cout << "  \"" << task.id << "\" [label=\"" << task.id << "\\n"
                << task.operator_name << "\"];\n";
    }
    for (const auto& task : workflow->tasks) {
      for (const auto& dep : task.depends) {
        std::cout << "  \"" << dep << "\" -> \"" << task.id << "\"";
        if (task.trigger_rule != TriggerRule::all_success) {
          std::cout << " [label=\"" << to_string(task.trigger_rule) << "\"]";
        }
        std::cout << ";\n";
      }
    }
    std::cout << "}\n";
    return kExitSuccess;
  }
  std::cout << "workflow " << workflow->name << " (" << workflow->tasks.size() << " tasks)\n";
  for (const auto& task : workflow->tasks) {
    std::cout << "  " << task.id << " [" << task.operator_name;
    if (task.trigger_rule != TriggerRule::all_success) {
      std::cout << ", " << to_string(task.trigger_rule);
    }
    std::cout << "]";
    if (!task.depends.empty()) {
      std::cout << " <- ";
      for (std::size_t i = 0; i < task.depends.size(); ++i) {
        std::cout << (i ? ", " : "") << task.depends[i];
      }
    }
    std::cout << "\n";
  }
  return kExitSuccess;
}

int cmd_next(const std::string& file, const std::string& after, int count) {
  const auto registry = make_registry();
  auto workflow = load_or_report(file, registry);
  if (!workflow) return kExitBadInput;
  if (workflow->schedule.empty()) {
    std::cerr << file << ": workflow '" << workflow->name
              << "' has no schedule; add e.g. `schedule: \"0 3 * * *\"`\n";
    return kExitBadInput;
  }
  if (count < 1) {
    std::cerr << "podflow next: --count must be 1 or more\n";
    return kExitBadInput;
  }
  auto parsed = CronSchedule::parse(workflow->schedule);
  if (auto* error = std::get_if<CronParseError>(&parsed)) {
    std::cerr << file << ": schedule: " << error->message << "\n";
    return kExitBadInput;
  }
  const auto& schedule = std::get<CronSchedule>(parsed);
  SysSeconds cursor = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  if (!after.empty()) {
    auto parsed_after = parse_iso8601(after, workflow->timezone);
    if (!parsed_after) {
      std::cerr << "podflow next: --after '" << after
                << "' is not an ISO-8601 time (e.g. 2026-03-29T01:00:00Z)\n";
      return kExitBadInput;
    }
    cursor = *parsed_after;
  }
  for (int i = 0; i < count; ++i) {
    auto next = schedule.next_after(cursor, workflow->timezone);
    if (!next) {
      std::cerr << "podflow next: schedule '" << workflow->schedule << "' never fires\n";
      return i == 0 ? kExitBadInput : kExitSuccess;
    }
    std::cout << format_fire_time(*next, workflow->timezone) << "\n";
    cursor = *next;
  }
  return kExitSuccess;
}

int cmd_runs_list(const std::string& workflow, int limit) {
  auto store = open_store();
  if (!store) return kExitBadInput;
  const auto runs = store->list_runs({.workflow = workflow, .limit = limit});
  std::size_t width = 2;
  for (const auto& run : runs) width = std::max(width, run.id.size());
  std::cout << pad("RUN", width + 2) << pad("WORKFLOW", 24) << pad("STATE", 11)
            << pad("STARTED", 22) << "DURATION\n";
  for (const auto& run : runs) {
    const EpochMillis end =
        run.ended_at != 0 ? run.ended_at : to_epoch_millis(std::chrono::system_clock::now());
    std::cout << pad(run.id, width + 2) << pad(run.workflow, 24)
              << pad(std::string(to_string(run.state)), 11) << pad(format_utc(run.started_at), 22)
              << format_millis(end - run.started_at) << "\n";
  }
  return kExitSuccess;
}

int cmd_runs_show(const std::string& run_id) {
  auto store = open_store();
  if (!store) return kExitBadInput;
  auto run = store->get_run(run_id);
  if (!run) {
    std::cerr << "podflow runs show: no run '" << run_id << "' (see `podflow runs list`)\n";
    return kExitBadInput;
  }
  std::cout << "run:       " << run->id << "\n"
            << "workflow:  " << run->workflow << " (" << run->source_path << ")\n"
            << "state:     " << to_string(run->state) << "\n";
  if (!run->reason.empty()) std::cout << "reason:    " << run->reason << "\n";
  std::cout << "started:   " << format_utc(run->started_at) << "\n";
  if (run->ended_at != 0) {
    std::cout << "ended:     " << format_utc(run->ended_at) << " ("
              << format_millis(run->ended_at - run->started_at) << ")\n";
  }
  if (!run->owner.empty()) std::cout << "owner:     " << run->owner << "\n";
  std::cout << "params:    " << run->params.dump() << "\n\n";
  const auto registry = make_registry();
  auto stored = load_workflow_text(run->definition, run->source_path, registry);
  const Workflow* workflow = std::get_if<Workflow>(&stored);
  const auto tasks = in_workflow_order(store->get_tasks(run_id), workflow);
  print_task_table(std::cout, tasks);
  ResourceFilter of_run;
  of_run.run_id = run_id;
  const auto resources = store->list_resources(of_run);
  if (!resources.empty()) std::cout << "\nresources:\n";
  for (const auto& resource : resources) {
    std::cout << "  " << resource.task_id << " try " << resource.try_number << ": " << resource.kind
              << " " << resource.name
              << (resource.external_id.empty() ? "" : " (" + resource.external_id + ")") << " "
              << resource.state << "\n";
  }
  bool any_metrics = false;
  for (const auto& task : tasks) {
    const auto points = store->list_metrics(run_id, task.task_id);
    if (points.empty()) continue;
    if (!any_metrics) std::cout << "\nmetrics (last value, points):\n";
    any_metrics = true;
    for (std::size_t i = 0; i < points.size(); ++i) {
      if (i + 1 < points.size() && points[i + 1].name == points[i].name) continue;
      std::size_t count = 0;
      for (const auto& p : points) count += p.name == points[i].name ? 1U : 0U;
      std::cout << "  " << task.task_id << "." << points[i].name << " = " << points[i].value
                << " at step " << points[i].step << " (" << count << " points)\n";
    }
  }
  bool any_outputs = false;
  for (const auto& task : tasks) {
    if (task.outputs.empty()) continue;
    if (!any_outputs) std::cout << "\noutputs:\n";
    any_outputs = true;
    std::cout << "  " << task.task_id << ": " << task.outputs.dump() << "\n";
  }
  return kExitSuccess;
}

int cmd_runs_logs(const std::string& run_id, const std::string& task_id, int try_number) {
  auto store = open_store();
  if (!store) return kExitBadInput;
  const auto tasks = store->get_tasks(run_id);
  const auto it = std::find_if(tasks.begin(), tasks.end(),
                               [&](const TaskRecord& t) { return t.task_id == task_id; });
  if (it == tasks.end()) {
    std::cerr << "podflow runs logs: run '" << run_id << "' has no task '" << task_id << "'\n";
    return kExitBadInput;
  }
  const int last = it->try_number;
  if (last == 0) {
    std::cerr << "podflow runs logs: task '" << task_id << "' never ran (" << to_string(it->state)
              << ")\n";
    return kExitBadInput;
  }
  if (try_number > last) {
    std::cerr << "podflow runs logs: task '" << task_id << "' has " << last
              << (last == 1 ? " try" : " tries") << "; there is no try " << try_number << "\n";
    return kExitBadInput;
  }
  const int first = try_number > 0 ? try_number : 1;
  const int until = try_number > 0 ? try_number : last;
  for (int t = first; t <= until; ++t) {
    const auto path = task_log_path(podflow_home() / "logs", run_id, task_id, t);
    if (until > first) std::cout << "--- try " << t << " ---\n";
    std::ifstream in(path);
    if (in) std::cout << in.rdbuf();  // no file: the try printed nothing
  }
  return kExitSuccess;
}

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{"podflow: run ML training workflows on rented GPUs without babysitting them"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("podflow ") + PODFLOW_VERSION);
  int exit_code = kExitSuccess;

  auto* validate = app.add_subcommand("validate", "Check workflow files; errors as FILE:LINE:COL");
  std::vector<std::string> validate_paths;
  validate->add_option("paths", validate_paths, "Workflow files or directories")->required();
  validate->callback([&] { exit_code = cmd_validate(validate_paths); });

  auto* run = app.add_subcommand("run", "Run a workflow in the foreground with live progress");
  std::string run_file, resume_id;
  std::vector<std::string> params;
  run->add_option("file", run_file, "Workflow file");
  run->add_option("--param,-p", params, "Param override NAME=VALUE (repeatable)");
  run->add_option("--resume", resume_id, "Adopt and finish a run whose owner died");
  run->callback([&] { exit_code = cmd_run(run_file, params, resume_id); });

  auto* graph = app.add_subcommand("graph", "Print a workflow's task graph");
  std::string graph_file, graph_format = "text";
  graph->add_option("file", graph_file, "Workflow file")->required();
  graph->add_option("--format", graph_format, "text or dot")->check(CLI::IsMember({"text", "dot"}));
  graph->callback([&] { exit_code = cmd_graph(graph_file, graph_format); });

  auto* next = app.add_subcommand("next", "Print the next fire times of a workflow's schedule");
  std::string next_file, next_after;
  int next_count = 5;
  next->add_option("file", next_file, "Workflow file")->required();
  next->add_option("--after", next_after, "Start after this ISO-8601 time (default: now)");
  next->add_option("--count,-n", next_count, "How many fire times (default 5)");
  next->callback([&] { exit_code = cmd_next(next_file, next_after, next_count); });

  auto* runs = app.add_subcommand("runs", "Inspect run history");
  runs->require_subcommand(1);
  auto* runs_list = runs->add_subcommand("list", "List recent runs, newest first");
  std::string list_workflow;
  int list_limit = 50;
  runs_list->add_option("--workflow", list_workflow, "Only runs of this workflow");
  runs_list->add_option("--limit", list_limit, "At most this many runs (default 50)");
  runs_list->callback([&] { exit_code = cmd_runs_list(list_workflow, list_limit); });
  auto* runs_show = runs->add_subcommand("show", "Show a run: state, tasks, tries, outputs");
  std::string show_id;
  runs_show->add_option("run", show_id, "Run id")->required();
  runs_show->callback([&] { exit_code = cmd_runs_show(show_id); });
  auto* runs_logs = runs->add_subcommand("logs", "Print a task's log (every try by default)");
  std::string logs_run, logs_task;
  int logs_try = 0;
  runs_logs->add_option("run", logs_run, "Run id")->required();
  runs_logs->add_option("task", logs_task, "Task id")->required();
  runs_logs->add_option("--try", logs_try, "Only this try");
  runs_logs->callback([&] { exit_code = cmd_runs_logs(logs_run, logs_task, logs_try); });
  add_runpod_sim_command(app, exit_code);
  add_reap_command(app, exit_code);
  add_token_command(app, exit_code);
  add_serve_command(app, exit_code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitSuccess : kExitBadInput;
  }
  return exit_code;
}

}  // namespace podflow::app
