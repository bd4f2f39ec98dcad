// Tests of the shell operator: outputs, exit codes, environment, live log, killing process groups.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <regex>

#include "operator_runner.hpp"
#include "operators/core/core_operators.hpp"
#include "operators/core/outputs_file.hpp"

namespace {

using namespace std::chrono_literals;
using podflow::Json;
using podflow::engine::ErrorKind;
using podflow::engine::TaskContext;
using podflow::engine::TaskOutcome;
using podflow::testing::OperatorRun;
using podflow::testing::RecordingLog;
using podflow::testing::TempDir;

struct ShellFixture {
  TempDir dir;
  std::shared_ptr<RecordingLog> log = std::make_shared<RecordingLog>();

  TaskContext context(Json args) const {
    TaskContext ctx;
    ctx.run_id = "run-1";
    ctx.task_id = "task";
    ctx.args = std::move(args);
    ctx.log = log;
    ctx.scratch_dir = dir.path() / "scratch";
    return ctx;
  }
};

TaskOutcome run_shell(TaskContext ctx, podflow::operators::ShellOptions options = {}) {
  auto op = podflow::operators::make_shell_operator(options);
  OperatorRun run(*op, std::move(ctx));
  return run.wait();
}

// The pid the command printed as `pgid=<pid>` (its own pid: the shell leads its process group).
pid_t wait_for_pgid(RecordingLog& log) {
  const auto match = log.wait_for_match(std::regex("pgid=([0-9]+)\n"), 10s);
  REQUIRE(match.has_value());
  return static_cast<pid_t>(std::stol(*match));
}

// True once no process of the group exists. Orphans of a killed group are re-parented to this test
// process (a child subreaper, see below) and reaped here; the kernel ends them asynchronously, so
// this waits for that with a deadline.
bool process_group_gone(pid_t pgid) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    while (::waitpid(-pgid, nullptr, WNOHANG) > 0) {
    }
    if (::kill(-pgid, 0) != 0 && errno == ESRCH) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// Without this, orphans of killed groups go to the container's PID 1, which may never reap them,
// and their zombies would still count as members of the group.
void become_subreaper() { REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0); }

TEST_CASE("Shell.success_returns_outputs_in_both_forms" * doctest::timeout(30)) {
  ShellFixture f;
  const auto outcome = run_shell(
      f.context(Json{{"command",
                      "echo greeting=hello >> \"$PODFLOW_OUTPUTS\"\n"
                      "echo 'url=http://x/?a=b' >> \"$PODFLOW_OUTPUTS\"\n"
                      "printf 'notes<<EOF\\nline one\\nline two\\nEOF\\n' >> \"$PODFLOW_OUTPUTS\"\n"
                      "echo done"}}));
  REQUIRE_MESSAGE(!outcome.error, podflow::testing::error_text(outcome));
  CHECK(outcome.outputs ==
        Json{{"greeting", "hello"}, {"url", "http://x/?a=b"}, {"notes", "line one\nline two"}});
  CHECK(f.log->text().find("$ echo greeting=hello") == 0);
  CHECK(f.log->text().find("done\n") != std::string::npos);
}

TEST_CASE("Shell.no_outputs_gives_empty_object" * doctest::timeout(30)) {
  ShellFixture f;
  const auto outcome = run_shell(f.context(Json{{"command", "true"}}));
  REQUIRE_MESSAGE(!outcome.error, podflow::testing::error_text(outcome));
  CHECK(outcome.outputs == Json::object());
}

TEST_CASE("Shell.nonzero_exit_fails_with_code_and_last_output" * doctest::timeout(30)) {
  ShellFixture f;
  const auto outcome = run_shell(f.context(Json{{"command", "echo first; echo oops >&2; exit 3"}}));
  REQUIRE(outcome.error.has_value());
  CHECK(outcome.error->kind == ErrorKind::task_failed);
  CHECK(outcome.error->message.find("command exited with code 3") == 0);
  CHECK(outcome.error->message.find("first\noops") != std::string::npos);
}

TEST_CASE("Shell.killed_by_signal_names_the_signal" * doctest::timeout(30)) {
  ShellFixture f;
  const auto outcome = run_shell(f.context(Json{{"command", "kill -KILL $$"}}));
  REQUIRE(outcome.error.has_value());
  CHECK(outcome.error->kind == ErrorKind::task_failed);
  CHECK(outcome.error->message == "command killed by signal SIGKILL(9)");
}

TEST_CASE("Shell.env_and_cwd_reach_the_command" * doctest::timeout(30)) {
  ShellFixture f;
  const auto workdir = f.dir.path() / "work";
  std::filesystem::create_directories(workdir);
  auto ctx = f.context(Json{{"command",
                             "echo \"run=$PODFLOW_RUN_ID\" >> \"$PODFLOW_OUTPUTS\"; "
                             "echo \"greeting=$GREETING\" >> \"$PODFLOW_OUTPUTS\"; "
                             "echo \"count=$COUNT\" >> \"$PODFLOW_OUTPUTS\"; "
                             "echo \"path_set=${PATH:+yes}\" >> \"$PODFLOW_OUTPUTS\"; "
                             "echo \"dir=$(pwd -P)\" >> \"$PODFLOW_OUTPUTS\""},
                            {"env", {{"GREETING", "hi there"}, {"COUNT", 3}}},
                            {"cwd", workdir.string()}});
  ctx.env["PODFLOW_RUN_ID"] = "run-42";
  const auto outcome = run_shell(std::move(ctx));
  REQUIRE_MESSAGE(!outcome.error, podflow::testing::error_text(outcome));
  CHECK(outcome.outputs["run"] == "run-42");
  CHECK(outcome.outputs["greeting"] == "hi there");
  CHECK(outcome.outputs["count"] == "3");
  CHECK(outcome.outputs["path_set"] == "yes");  // the engine's own environment is inherited
  CHECK(outcome.outputs["dir"] == std::filesystem::canonical(workdir).string());
}

TEST_CASE("Shell.missing_cwd_is_bad_input_naming_the_directory" * doctest::timeout(30)) {
  ShellFixture f;
  const auto missing = (f.dir.path() / "nope").string();
  const auto outcome = run_shell(f.context(Json{{"command", "true"}, {"cwd", missing}}));
  REQUIRE(outcome.error.has_value());
  CHECK(outcome.error->kind == ErrorKind::bad_input);
  CHECK(outcome.error->message.find("'" + missing + "'") != std::string::npos);
}

TEST_CASE("Shell.missing_shell_is_bad_input" * doctest::timeout(30)) {
  ShellFixture f;
  const auto outcome = run_shell(f.context(Json{{"command", "true"}, {"shell", "/no/such/shell"}}));
  REQUIRE(outcome.error.has_value());
  CHECK(outcome.error->kind == ErrorKind::bad_input);
  CHECK(outcome.error->message.find("/no/such/shell") != std::string::npos);
}

TEST_CASE("Shell.stdout_and_stderr_go_to_the_log_in_order" * doctest::timeout(30)) {
  ShellFixture f;
  const auto outcome =
      run_shell(f.context(Json{{"command", "echo out1; echo err1 >&2; echo out2; echo err2 >&2"}}));
  REQUIRE_MESSAGE(!outcome.error, podflow::testing::error_text(outcome));
  CHECK(f.log->text().find("out1\nerr1\nout2\nerr2\n") != std::string::npos);
}

TEST_CASE("Shell.output_is_streamed_while_the_command_runs" * doctest::timeout(30)) {
  ShellFixture f;
  // The command blocks on the FIFO until the test writes to it, which the test does only after
  // it saw the first line in the log: the test cannot pass if output is only delivered at exit.
  const auto fifo = f.dir.path() / "go";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto op = podflow::operators::make_shell_operator();
  OperatorRun run(*op, f.context(Json{{"command", "echo first line; read word < '" + fifo.string() +
                                                      "'; echo got $word"}}));
  REQUIRE(f.log->wait_for("first line\n", 10s));
  CHECK(f.log->text().find("got ready") == std::string::npos);
  {
    std::ofstream go(fifo);
    go << "ready\n";
  }
  const auto outcome = run.wait();
  REQUIRE_MESSAGE(!outcome.error, podflow::testing::error_text(outcome));
  CHECK(f.log->text().find("first line\ngot ready\n") != std::string::npos);
}

TEST_CASE("Shell.cancel_kills_the_whole_process_tree" * doctest::timeout(30)) {
  become_subreaper();
  ShellFixture f;
  auto op = podflow::operators::make_shell_operator();
  const auto started = std::chrono::steady_clock::now();
  OperatorRun run(*op, f.context(Json{{"command",
                                       "sh -c 'sleep 1000 & sleep 1000' & sleep 1000 & "
                                       "echo pgid=$$; wait"}}));
  const pid_t pgid = wait_for_pgid(*f.log);
  run.cancel();
  const auto outcome = run.wait();
  REQUIRE(outcome.error.has_value());
  CHECK(outcome.error->kind == ErrorKind::cancelled);
  CHECK(std::chrono::steady_clock::now() - started < 4s);  // SIGTERM was enough: no grace wait
  CHECK(process_group_gone(pgid));
}

TEST_CASE("Shell.command_ignoring_sigterm_is_killed_after_the_grace" * doctest::timeout(30)) {
  become_subreaper();
  ShellFixture f;
  auto op = podflow::operators::make_shell_operator({.kill_grace = 300ms, .output_drain = 100ms});
  // `trap '' TERM` is inherited by the sleeps: nothing in the group reacts to SIGTERM.
  OperatorRun run(
      *op, f.context(Json{{"command", "trap '' TERM; sleep 1000 & echo pgid=$$; sleep 1000"}}));
  const pid_t pgid = wait_for_pgid(*f.log);
  run.cancel();
  const auto outcome = run.wait();
  REQUIRE(outcome.error.has_value());
  CHECK(outcome.error->kind == ErrorKind::cancelled);
  CHECK(f.log->text().find("sending SIGKILL") != std::string::npos);
  CHECK(process_group_gone(pgid));
}

TEST_CASE("Shell.background_process_neither_hangs_nor_outlives_the_task" * doctest::timeout(30)) {
  become_subreaper();
  ShellFixture f;
  const auto started = std::chrono::steady_clock::now();
  const auto outcome = run_shell(
      f.context(
          Json{{"command", "sleep 1000 & echo pgid=$$; echo done=yes >> \"$PODFLOW_OUTPUTS\""}}),
      {.kill_grace = 5s, .output_drain = 200ms});
  REQUIRE_MESSAGE(!outcome.error, podflow::testing::error_text(outcome));
  CHECK(outcome.outputs == Json{{"done", "yes"}});
  CHECK(std::chrono::steady_clock::now() - started < 4s);
  CHECK(process_group_gone(wait_for_pgid(*f.log)));
}

TEST_CASE("Shell.unreadable_outputs_line_fails_naming_the_line" * doctest::timeout(30)) {
  ShellFixture f;
  const auto outcome = run_shell(f.context(
      Json{{"command", "echo ok=1 >> \"$PODFLOW_OUTPUTS\"; echo junk >> \"$PODFLOW_OUTPUTS\""}}));
  REQUIRE(outcome.error.has_value());
  CHECK(outcome.error->kind == ErrorKind::task_failed);
  CHECK(outcome.error->message.find("line 2") != std::string::npos);
  CHECK(outcome.error->message.find("junk") != std::string::npos);
}

TEST_CASE("Shell.command_must_be_a_string" * doctest::timeout(30)) {
  ShellFixture f;
  const auto outcome = run_shell(f.context(Json{{"command", 12}}));
  REQUIRE(outcome.error.has_value());
  CHECK(outcome.error->kind == ErrorKind::bad_input);
}

TEST_CASE("Outputs.parse_handles_crlf_repeats_and_unclosed_heredoc" * doctest::timeout(30)) {
  using podflow::operators::parse_outputs;
  auto parsed = parse_outputs("a=1\r\n\na=2\nb<<END\r\nx=y\n\nEND\n");
  REQUIRE(parsed.has_value());
  CHECK(*parsed == Json{{"a", "2"}, {"b", "x=y\n"}});

  auto unclosed = parse_outputs("ok=1\nlog<<EOF\nno end\n");
  REQUIRE(unclosed.has_error());
  CHECK(unclosed.error().find("line 2") != std::string::npos);
  CHECK(unclosed.error().find("EOF") != std::string::npos);

  auto empty_key = parse_outputs("=v\n");
  CHECK(empty_key.has_error());
}

}  // namespace
