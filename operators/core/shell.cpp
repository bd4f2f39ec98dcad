// shell operator: runs `<shell> -c <command>` in its own process group, streams its output to the
// task log, reads outputs from $PODFLOW_OUTPUTS and kills the whole group on cancel or timeout.
//
// Lifecycle of the process group (DESIGN.md section 3):
// - the child is posix_spawn'ed as the leader of a new process group, stdin /dev/null, stdout and
//   stderr into one pipe (so their order is kept);
// - its exit is watched through a pidfd on the io_context, the pipe is read asynchronously;
// - when the shell exits, processes it left in the group get `output_drain` to close the pipe, then
//   the group is killed with SIGKILL: a task owns every process it started, and a background
//   `sleep 100 &` neither hangs the task nor outlives it;
// - on cancellation the group gets SIGTERM, `kill_grace` to exit, then SIGKILL;
// - the leader is reaped only after the group was killed, so its pid (the group id) cannot be
// reused
//   while we still signal the group.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <sstream>
#include <variant>

#include "operators/core/core_operators.hpp"
#include "operators/core/outputs_file.hpp"

extern char** environ;  // NOLINT: POSIX global, read to build the child's environment

namespace podflow::operators {
namespace {

namespace asio = boost::asio;
using asio::experimental::awaitable_operators::operator||;
using asio::experimental::awaitable_operators::operator&&;
using engine::ErrorKind;
using engine::TaskOutcome;

constexpr std::string_view kDefaultShell = "/bin/sh";
constexpr std::size_t kTailLines = 10;     // output lines quoted in a failure message
constexpr std::size_t kTailLineMax = 300;  // longer lines are cut in that quote

// Owns a file descriptor until it is handed to Asio.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = other.release();
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Receives the command's output: forwards each chunk to the task log at once and keeps the last
// lines for the failure message.
class OutputSink {
 public:
  explicit OutputSink(std::shared_ptr<engine::TaskLog> log) : log_(std::move(log)) {}

  void write(std::string_view chunk) {
    if (log_) log_->write(chunk);
    for (char c : chunk) {
      if (c == '\n') {
        push_line();
      } else if (partial_.size() < kTailLineMax) {
        partial_.push_back(c);
      }
    }
  }

  // The last lines written, oldest first, without a trailing newline.
  std::string tail() {
    if (!partial_.empty()) push_line();
    std::string out;
    for (const auto& line : lines_) {
      if (!out.empty()) out += '\n';
      out += line;
    }
    return out;
  }

 private:
  void push_line() {
    lines_.push_back(std::move(partial_));
    partial_.clear();
    if (lines_.size() > kTailLines) lines_.pop_front();
  }

  std::shared_ptr<engine::TaskLog> log_;
  std::string partial_;
  std::deque<std::string> lines_;
};

struct SpawnRequest {
  std::string shell;
  std::string command;
  std::vector<std::string> env;  // NAME=value
  std::optional<std::string> cwd;
};

struct Child {
  pid_t pid = -1;
  UniqueFd pidfd;
  UniqueFd output;  // read end of the stdout+stderr pipe
};

std::string errno_text(int error) { return std::strerror(error); }

// Moves fd above the standard descriptors so the dup2 file actions cannot clobber it.
int above_stdio(int fd) {
  if (fd > STDERR_FILENO) return fd;
  const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
  ::close(fd);
  return moved;
}

std::variant<Child, engine::TaskError> spawn_child(const SpawnRequest& request) {
  std::array<int, 2> pipe_fds{};
  // O_CLOEXEC: a process spawned at the same time by another task must not inherit our pipe.
  if (::pipe2(pipe_fds.data(), O_CLOEXEC) != 0) {
    return engine::TaskError{ErrorKind::task_failed, "cannot create a pipe: " + errno_text(errno)};
  }
  UniqueFd read_end(above_stdio(pipe_fds[0]));
  UniqueFd write_end(above_stdio(pipe_fds[1]));
  if (read_end.get() < 0 || write_end.get() < 0) {
    return engine::TaskError{ErrorKind::task_failed, "cannot create a pipe: " + errno_text(errno)};
  }

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDERR_FILENO);
  if (request.cwd) posix_spawn_file_actions_addchdir_np(&actions, request.cwd->c_str());

  // Own process group (pgid = pid) so cancellation reaches every descendant; default signal
  // dispositions and an empty mask whatever the engine's threads use.
  sigset_t no_signals;
  sigset_t all_signals;
  sigemptyset(&no_signals);
  sigfillset(&all_signals);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigmask(&attr, &no_signals);
  posix_spawnattr_setsigdefault(&attr, &all_signals);

  std::string dash_c = "-c";
  std::string shell = request.shell;
  std::string command = request.command;
  std::array<char*, 4> argv{shell.data(), dash_c.data(), command.data(), nullptr};
  std::vector<std::string> env_storage = request.env;
  std::vector<char*> envp;
  envp.reserve(env_storage.size() + 1);
  for (auto& entry : env_storage) envp.push_back(entry.data());
  envp.push_back(nullptr);

  pid_t pid = -1;
  const int spawn_error =
      ::posix_spawn(&pid, shell.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (spawn_error != 0) {
    if (request.cwd && (spawn_error == ENOENT || spawn_error == ENOTDIR || spawn_error == EACCES)) {
      // The cwd was checked before, but it may have gone or be unreadable: say which one failed.
      std::error_code ec;
      if (!std::filesystem::is_directory(*request.cwd, ec)) {
        return engine::TaskError{ErrorKind::bad_input,
                                 "cwd '" + *request.cwd + "' is not a directory"};
      }
    }
    const bool cannot_ever_work =
        spawn_error == ENOENT || spawn_error == EACCES || spawn_error == ENOTDIR;
    return engine::TaskError{cannot_ever_work ? ErrorKind::bad_input : ErrorKind::task_failed,
                             "cannot start shell '" + request.shell + "'" +
                                 (request.cwd ? " in '" + *request.cwd + "'" : "") + ": " +
                                 errno_text(spawn_error)};
  }
  write_end.reset();  // only the child writes; we see EOF once every writer has gone

  Child child;
  child.pid = pid;
  child.output = std::move(read_end);
  const long pidfd = ::syscall(SYS_pidfd_open, pid, 0);  // pidfds are always close-on-exec
  if (pidfd < 0) {
    const int error = errno;
    ::kill(-pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return engine::TaskError{ErrorKind::task_failed,
                             "cannot watch the shell process (pidfd_open): " + errno_text(error)};
  }
  child.pidfd = UniqueFd(static_cast<int>(pidfd));
  return child;
}

std::string signal_text(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  std::string name = abbrev ? std::string("SIG") + abbrev : std::string("signal");
  return name + "(" + std::to_string(sig) + ")";
}

// Json scalar as the text a child's environment gets; nullopt for values that have no such text.
std::optional<std::string> env_text(const Json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number() || value.is_boolean()) return value.dump();
  return std::nullopt;
}

std::vector<std::string> build_environment(const std::map<std::string, std::string>& overrides) {
  std::map<std::string, std::string> merged;
  for (char** entry = environ; entry && *entry; ++entry) {
    std::string_view text(*entry);
    const auto eq = text.find('=');
    if (eq == std::string_view::npos) continue;
    merged.emplace(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
  }
  for (const auto& [name, value] : overrides) merged[name] = value;
  std::vector<std::string> out;
  out.reserve(merged.size());
  for (const auto& [name, value] : merged) out.push_back(name + "=" + value);
  return out;
}

bool cancelled(const asio::cancellation_state& state) {
  return state.cancelled() != asio::cancellation_type::none;
}

// Completes when the process behind the pidfd has exited (or the wait is cancelled).
asio::awaitable<void> wait_exit(asio::posix::stream_descriptor& pidfd) {
  co_await pidfd.async_wait(asio::posix::stream_descriptor::wait_read,
                            asio::as_tuple(asio::use_awaitable));
}

// Copies the pipe into the sink until EOF, an error, or cancellation.
asio::awaitable<void> pump_output(asio::posix::stream_descriptor& pipe, OutputSink& sink) {
  co_await asio::this_coro::throw_if_cancelled(false);
  std::array<char, 8192> buffer{};
  while (pipe.is_open()) {
    auto [ec, n] =
        co_await pipe.async_read_some(asio::buffer(buffer), asio::as_tuple(asio::use_awaitable));
    if (n > 0) sink.write(std::string_view(buffer.data(), n));
    if (ec) co_return;
    if (cancelled(co_await asio::this_coro::cancellation_state)) co_return;
  }
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
}

void kill_group(pid_t pgid, int sig) {
  // ESRCH (nobody left) is the normal case after the shell exited cleanly.
  ::kill(-pgid, sig);
}

int reap(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  // When the engine is a child subreaper, orphans of the group were re-parented to us: reap them
  // too so no zombie stays behind. Without a subreaper this finds nothing.
  while (::waitpid(-pid, nullptr, WNOHANG) > 0) {
  }
  return status;
}

struct ShellArgs {
  std::string command;
  std::string shell;
  std::optional<std::string> cwd;
  std::map<std::string, std::string> env;
};

std::variant<ShellArgs, engine::TaskError> read_args(const Json& args) {
  auto bad = [](std::string message) {
    return engine::TaskError{ErrorKind::bad_input, std::move(message)};
  };
  ShellArgs out;
  const auto command = args.find("command");
  if (command == args.end() || !command->is_string()) return bad("'command' must be a string");
  out.command = command->get<std::string>();
  out.shell = std::string(kDefaultShell);
  if (auto shell = args.find("shell"); shell != args.end() && !shell->is_null()) {
    if (!shell->is_string() || shell->get<std::string>().empty()) {
      return bad("'shell' must be the path of a shell, like /bin/bash");
    }
    out.shell = shell->get<std::string>();
  }
  if (auto cwd = args.find("cwd"); cwd != args.end() && !cwd->is_null()) {
    if (!cwd->is_string()) return bad("'cwd' must be a string");
    out.cwd = cwd->get<std::string>();
  }
  if (auto env = args.find("env"); env != args.end() && !env->is_null()) {
    if (!env->is_object()) return bad("'env' must be a map of names to strings");
    for (const auto& [name, value] : env->items()) {
      auto text = env_text(value);
      if (!text) return bad("'env." + name + "' must be a string, not " + value.type_name());
      if (name.empty() || name.find('=') != std::string::npos) {
        return bad("'env' has an invalid variable name '" + name + "'");
      }
      out.env[name] = *text;
    }
  }
  return out;
}

asio::awaitable<TaskOutcome> run_shell(engine::TaskContext ctx, ShellOptions options) {
  // We look at the cancellation state ourselves: every await below must run to its end so that
  // the process group is always killed and reaped.
  co_await asio::this_coro::throw_if_cancelled(false);

  auto parsed = read_args(ctx.args);
  if (auto* error = std::get_if<engine::TaskError>(&parsed)) {
    co_return TaskOutcome{Json::object(), *error};
  }
  auto args = std::get<ShellArgs>(std::move(parsed));
  if (args.cwd) {
    std::error_code ec;
    if (!std::filesystem::is_directory(*args.cwd, ec)) {
      co_return TaskOutcome::failure(
          ErrorKind::bad_input, "cwd '" + *args.cwd + "' does not exist or is not a directory");
    }
  }

  if (ctx.scratch_dir.empty()) {
    co_return TaskOutcome::failure(ErrorKind::task_failed, "no scratch directory for the task");
  }
  std::error_code ec;
  std::filesystem::create_directories(ctx.scratch_dir, ec);
  const auto outputs_path = ctx.scratch_dir / "outputs";
  {
    std::ofstream create(outputs_path, std::ios::trunc);
    if (!create) {
      co_return TaskOutcome::failure(ErrorKind::task_failed,
                                     "cannot create the outputs file " + outputs_path.string());
    }
  }

  std::map<std::string, std::string> env_overrides = ctx.env;
  for (const auto& [name, value] : args.env) env_overrides[name] = value;
  env_overrides["PODFLOW_OUTPUTS"] = outputs_path.string();

  if (ctx.log) ctx.log->write("$ " + args.command + "\n");
  auto spawned = spawn_child(SpawnRequest{.shell = args.shell,
                                          .command = args.command,
                                          .env = build_environment(env_overrides),
                                          .cwd = args.cwd});
  if (auto* error = std::get_if<engine::TaskError>(&spawned)) {
    co_return TaskOutcome{Json::object(), *error};
  }
  auto child = std::get<Child>(std::move(spawned));
  const pid_t pid = child.pid;
  if (ctx.on_process_started) ctx.on_process_started(pid);

  auto ex = co_await asio::this_coro::executor;
  asio::posix::stream_descriptor exit_watch(ex, child.pidfd.release());
  asio::posix::stream_descriptor output(ex, child.output.release());
  OutputSink sink(ctx.log);

  // Run until the shell exits, streaming its output; a cancellation interrupts the wait.
  auto first = co_await (wait_exit(exit_watch) || pump_output(output, sink));
  bool was_cancelled = cancelled(co_await asio::this_coro::cancellation_state);
  if (!was_cancelled && first.index() == 1) {
    // The output closed before the shell exited (e.g. `exec >&-`): keep waiting for the exit.
    co_await wait_exit(exit_watch);
    was_cancelled = cancelled(co_await asio::this_coro::cancellation_state);
  }

  if (!was_cancelled) {
    // Output written just before the exit, or by background processes finishing up.
    co_await (pump_output(output, sink) || sleep_for(options.output_drain));
    kill_group(pid, SIGKILL);
  } else {
    // From here on nothing may interrupt the clean-up.
    co_await asio::this_coro::reset_cancellation_state(
        [](asio::cancellation_type) { return asio::cancellation_type::none; });
    co_await asio::this_coro::throw_if_cancelled(false);
    sink.write("\n[podflow] cancelled: sending SIGTERM to the process group\n");
    kill_group(pid, SIGTERM);
    auto ended = co_await ((wait_exit(exit_watch) && pump_output(output, sink)) ||
                           sleep_for(options.kill_grace));
    if (ended.index() == 1) {
      sink.write("[podflow] still running after " + std::to_string(options.kill_grace.count()) +
                 " ms: sending SIGKILL\n");
    }
    kill_group(pid, SIGKILL);
    co_await wait_exit(exit_watch);  // SIGKILL cannot be caught: this is short
    co_await (pump_output(output, sink) || sleep_for(options.output_drain));
  }
  output.close();
  exit_watch.close();
  const int status = reap(pid);

  if (was_cancelled) {
    co_return TaskOutcome::failure(ErrorKind::cancelled,
                                   "command cancelled; its process group was killed");
  }
  auto with_tail = [&](std::string message) {
    auto tail = sink.tail();
    if (!tail.empty()) message += "; last output:\n" + tail;
    return message;
  };
  if (status < 0) {
    co_return TaskOutcome::failure(
        ErrorKind::task_failed, "cannot read the exit status of the command: " + errno_text(errno));
  }
  if (WIFSIGNALED(status)) {
    co_return TaskOutcome::failure(
        ErrorKind::task_failed,
        with_tail("command killed by signal " + signal_text(WTERMSIG(status))));
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code != 0) {
    co_return TaskOutcome::failure(ErrorKind::task_failed,
                                   with_tail("command exited with code " + std::to_string(code)));
  }

  auto outputs = read_outputs_file(outputs_path);
  if (!outputs) {
    co_return TaskOutcome::failure(ErrorKind::task_failed, outputs.error());
  }
  co_return TaskOutcome::success(std::move(*outputs));
}

engine::OperatorSchema make_schema() {
  using engine::ArgSpec;
  using engine::ValueType;
  engine::OperatorSchema schema;
  schema.args = {
      ArgSpec{.name = "command",
              .type = ValueType::string,
              .required = true,
              .default_value = std::nullopt,
              .description = "Shell command, run as `<shell> -c <command>`."},
      ArgSpec{.name = "env",
              .type = ValueType::object,
              .required = false,
              .default_value = std::nullopt,
              .description = "Extra environment variables (names to string values)."},
      ArgSpec{.name = "cwd",
              .type = ValueType::string,
              .required = false,
              .default_value = std::nullopt,
              .description = "Working directory; must exist. Default: the engine's."},
      ArgSpec{.name = "shell",
              .type = ValueType::string,
              .required = false,
              .default_value = Json(std::string(kDefaultShell)),
              .description = "Absolute path of the shell that runs the command with -c."},
  };
  schema.open_outputs = true;  // keys are whatever the command writes to $PODFLOW_OUTPUTS
  return schema;
}

class ShellOperator final : public engine::Operator {
 public:
  explicit ShellOperator(ShellOptions options) : options_(options) {}

  std::string_view name() const override { return "shell"; }
  const engine::OperatorSchema& schema() const override { return schema_; }

  asio::awaitable<TaskOutcome> execute(engine::TaskContext ctx) const override {
    // The body runs on a strand: its parallel waits (exit, output, timers) then never run on two
    // threads at once, and co_spawn forwards our cancellation onto that strand.
    auto strand = asio::make_strand(co_await asio::this_coro::executor);
    co_return co_await asio::co_spawn(strand, run_shell(std::move(ctx), options_),
                                      asio::use_awaitable);
  }

 private:
  ShellOptions options_;
  engine::OperatorSchema schema_ = make_schema();
};

}  // namespace

std::shared_ptr<const engine::Operator> make_shell_operator(ShellOptions options) {
  return std::make_shared<ShellOperator>(options);
}

}  // namespace podflow::operators
