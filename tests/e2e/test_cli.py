"""End-to-end tests: run the real podflow binary on workflow files and check what a user observes."""

import hashlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import unittest

from podflow_e2e import DEADLINE, PODFLOW, PodflowTestCase


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_for(predicate, what, timeout=30):
    """Polls a condition a user could check by hand (a file appearing); fails after `timeout`."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class ValidateTest(PodflowTestCase):
    def test_valid_file_is_ok_and_bad_file_names_the_place(self):
        good = self.write("good.yaml", """\
            tasks:
              hello: {operator: shell, with: {command: echo hi}}
            """)
        bad = self.write("bad.yaml", """\
            tasks:
              hello:
                operator: shell
                depends: [helo]
                with: {command: echo hi}
            """)
        out = self.podflow("validate", good, expect=0)
        self.assertIn("ok " + good, out.stdout)
        out = self.podflow("validate", bad, expect=2)
        self.assertRegex(out.stderr, re.escape(bad) + r":4:\d+: .*'helo'")
        # A directory is walked, and one bad file makes the whole command fail.
        out = self.podflow("validate", self.dir, expect=2)
        self.assertIn("ok " + good, out.stdout)
        self.assertIn("1 of 2 workflow files have errors", out.stderr)

    def test_the_shipped_workflows_validate_and_the_example_runs(self):
        # The workflows users copy, and the one `make run` runs.
        workflows = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "workflows")
        self.podflow("validate", workflows, expect=0)
        out = self.podflow("run", os.path.join(workflows, "example.yaml"), expect=0)
        self.assertRegex(out.stdout, r"(?m)^train\s+success")
        self.assertIn("train | podflow.metric name=training_accuracy value=0.90 step=3", out.stdout)

    def test_bad_file_is_not_run(self):
        bad = self.write("bad.yaml", "tasks: [not, a, map]\n")
        self.podflow("run", bad, expect=2)
        out = self.podflow("runs", "list", expect=0)
        self.assertEqual(len(out.stdout.strip().splitlines()), 1)  # header only


class RunTest(PodflowTestCase):
    def test_success_outputs_templates_and_history(self):
        marker = os.path.join(self.dir, "result.txt")
        wf = self.write("train.yaml", f"""\
            params:
              epochs: {{type: integer, default: 2, minimum: 1}}
            tasks:
              prepare:
                operator: shell
                with:
                  command: |
                    echo "preparing"
                    echo "rows=1024" >> "$PODFLOW_OUTPUTS"
              train:
                operator: shell
                depends: [prepare]
                with:
                  command: echo "rows={{{{ tasks.prepare.outputs.rows }}}} epochs={{{{ params.epochs }}}} run=$PODFLOW_RUN_ID" > {marker}
            """)
        out = self.podflow("run", wf, "--param", "epochs=7", expect=0)
        run_id = self.run_id(out.stdout)
        with open(marker) as f:
            self.assertEqual(f.read().strip(), f"rows=1024 epochs=7 run={run_id}")
        # Live progress and the summary table.
        self.assertRegex(out.stdout, r"prepare\s+running\s+try 1")
        self.assertIn("prepare | preparing", out.stdout)
        self.assertRegex(out.stdout, r"(?m)^train\s+success\s+1\s+")
        self.assertIn(f"run {run_id} success", out.stdout)

        show = self.podflow("runs", "show", run_id, expect=0).stdout
        self.assertIn("state:     success", show)
        self.assertIn('"epochs":7', show)
        self.assertEqual(self.task_row(show, "prepare")[1:3], ["success", "1"])
        self.assertIn('prepare: {"rows":"1024"}', show)
        logs = self.podflow("runs", "logs", run_id, "prepare", expect=0).stdout
        # The shell operator logs the command first, then what it printed.
        self.assertTrue(logs.startswith('$ echo "preparing"'), logs)
        self.assertTrue(logs.endswith("\npreparing\n"), logs)
        listing = self.podflow("runs", "list", expect=0).stdout
        self.assertRegex(listing, re.escape(run_id) + r"\s+train\s+success")

    def test_failed_run_with_all_done_leaf_is_failed_and_retries_are_counted(self):
        cleanup = os.path.join(self.dir, "cleaned")
        wf = self.write("fail.yaml", f"""\
            tasks:
              train:
                operator: shell
                retries: 2
                retry_delay: 10ms
                with: {{command: "echo attempt $PODFLOW_TRY_NUMBER; exit 3"}}
              terminate:
                operator: shell
                depends: [train]
                trigger_rule: all_done
                with: {{command: "touch {cleanup}"}}
            """)
        out = self.podflow("run", wf, expect=1)
        run_id = self.run_id(out.stdout)
        self.assertTrue(os.path.exists(cleanup), "the all_done cleanup task must run")
        self.assertRegex(out.stdout, r"(?m)^train\s+failed\s+3\s+")
        self.assertRegex(out.stdout, r"(?m)^terminate\s+success\s+1\s+")
        self.assertRegex(out.stdout, r"(?m)^run " + re.escape(run_id) + " failed in ")
        self.assertIn("task 'train' failed: command exited with code 3", out.stdout)
        logs = self.podflow("runs", "logs", run_id, "train", expect=0).stdout
        for attempt in (1, 2, 3):
            self.assertIn(f"attempt {attempt}", logs)
        self.assertIn("failed", self.podflow("runs", "show", run_id, expect=0).stdout)

    def test_bad_params_are_refused_before_the_run(self):
        wf = self.write("p.yaml", """\
            params:
              batch_size: {type: integer, default: 16, minimum: 1}
            tasks:
              t: {operator: noop}
            """)
        out = self.podflow("run", wf, "--param", "batch_size=abc", expect=2)
        self.assertIn("batch_size", out.stderr)
        out = self.podflow("run", wf, "--param", "batch_size=0", expect=2)
        self.assertIn("at least 1", out.stderr)
        out = self.podflow("run", wf, "--param", "nope=1", expect=2)
        self.assertIn("unknown param 'nope'", out.stderr)
        secret = self.write("secret.yaml", """\
            params:
              pin: {type: integer, secret: true, minimum: 1000}
            tasks:
              t: {operator: noop}
            """)
        for value in ("hunter2-long", "313"):  # not an integer; below the minimum
            out = self.podflow("run", secret, "--param", "pin=" + value, expect=2)
            self.assertIn("param 'pin' must be", out.stderr)
            self.assertNotIn(value, out.stderr)
        listing = self.podflow("runs", "list", expect=0).stdout
        self.assertEqual(len(listing.strip().splitlines()), 1)

    def test_timeout_kills_the_whole_process_tree(self):
        pids = os.path.join(self.dir, "pids")
        wf = self.write("slow.yaml", f"""\
            tasks:
              slow:
                operator: shell
                timeout: 1s
                with:
                  command: |
                    sh -c 'sleep 1000 & echo $! >> {pids}; wait' &
                    echo $! >> {pids}
                    sleep 1000
            """)
        out = self.podflow("run", wf, expect=1)
        run_id = self.run_id(out.stdout)
        with open(pids) as f:
            children = [int(p) for p in f.read().split()]
        self.assertEqual(len(children), 2)
        for pid in children:
            self.assertFalse(pid_alive(pid), f"process {pid} survived the timeout")
        show = self.podflow("runs", "show", run_id, expect=0).stdout
        self.assertIn("error (timeout): timed out after 1s", show)

    def test_secrets_are_masked_everywhere(self):
        self.env["TRAINING_API_KEY"] = "sk-live-0123456789"
        wf = self.write("s.yaml", """\
            params:
              password: {type: string, secret: true}
            tasks:
              leak:
                operator: shell
                with:
                  command: |
                    echo "key=$TRAINING_API_KEY pw={{ params.password }}"
                    echo "token=$TRAINING_API_KEY" >> "$PODFLOW_OUTPUTS"
            """)
        out = self.podflow("run", wf, "--param", "password=hunter2-long", expect=0)
        run_id = self.run_id(out.stdout)
        self.assertIn("leak | key=*** pw=***", out.stdout)
        show = self.podflow("runs", "show", run_id, expect=0).stdout
        logs = self.podflow("runs", "logs", run_id, "leak", expect=0).stdout
        for text in (out.stdout, out.stderr, show, logs):
            self.assertNotIn("sk-live-0123456789", text)
            self.assertNotIn("hunter2-long", text)
        self.assertIn('{"token":"***"}', show)
        self.assertIn('"password":"***"', show)


class InterruptTest(PodflowTestCase):
    def start(self, wf):
        return subprocess.Popen([PODFLOW, "run", wf], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def test_ctrl_c_cancels_runs_cleanup_and_exits_130(self):
        started = os.path.join(self.dir, "started")
        cleanup = os.path.join(self.dir, "cleaned")
        notified = os.path.join(self.dir, "notified")
        wf = self.write("c.yaml", f"""\
            tasks:
              train:
                operator: shell
                with: {{command: "echo $$ > {started}; sleep 1000"}}
              log:
                operator: noop
                depends: [train]
              terminate:
                operator: shell
                depends: [log]
                trigger_rule: all_done
                with: {{command: "touch {cleanup}"}}
              notify:
                operator: shell
                depends: [train]
                trigger_rule: always
                with: {{command: "touch {notified}"}}
            """)
        proc = self.start(wf)
        wait_for(lambda: os.path.exists(started) and os.path.getsize(started) > 0, "train to start")
        with open(started) as f:
            train_pid = int(f.read())
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=DEADLINE)
        self.assertEqual(proc.returncode, 130, stdout + stderr)
        self.assertTrue(os.path.exists(cleanup))
        self.assertTrue(os.path.exists(notified))
        self.assertRegex(stdout, r"(?m)^notify\s+success")
        self.assertFalse(pid_alive(train_pid))
        self.assertRegex(stdout, r"(?m)^log\s+skipped")
        self.assertRegex(stdout, r"(?m)^terminate\s+success")
        self.assertRegex(stdout, r"(?m)^run \S+ cancelled in .*: cancelled by the user")

    def test_killed_run_is_finished_by_resume(self):
        first = os.path.join(self.dir, "first.count")
        gate = os.path.join(self.dir, "gate")
        started = os.path.join(self.dir, "started")
        sleeper = os.path.join(self.dir, "sleeper.pid")
        done = os.path.join(self.dir, "done")
        wf = self.write("r.yaml", f"""\
            tasks:
              first:
                operator: shell
                with: {{command: "echo once >> {first}"}}
              second:
                operator: shell
                depends: [first]
                retries: 1
                retry_delay: 10ms
                with:
                  command: |
                    if [ "$PODFLOW_TRY_NUMBER" = 1 ]; then
                      sleep 1000 &
                      echo $! > {sleeper}
                      touch {started}
                      wait
                    fi
                    echo "try=$PODFLOW_TRY_NUMBER" >> "$PODFLOW_OUTPUTS"
              third:
                operator: shell
                depends: [second]
                with: {{command: "echo {{{{ tasks.second.outputs.try }}}} > {done}"}}
            """)
        proc = self.start(wf)
        wait_for(lambda: os.path.exists(started), "second to start")
        proc.send_signal(signal.SIGKILL)
        stdout, _ = proc.communicate(timeout=DEADLINE)
        run_id = self.run_id(stdout)
        with open(sleeper) as f:
            sleeper_pid = int(f.read())
        self.assertTrue(pid_alive(sleeper_pid), "the try's process outlives a killed podflow")
        show = self.podflow("runs", "show", run_id, expect=0).stdout
        self.assertIn("state:     running", show)
        out = self.podflow("run", "--resume", run_id, expect=0)
        self.assertIn(f"resuming run {run_id}", out.stdout)
        self.assertFalse(pid_alive(sleeper_pid), "resume must kill what the dead engine left running")
        with open(first) as f:
            self.assertEqual(f.read(), "once\n", "a finished task must not run again")
        with open(done) as f:
            self.assertEqual(f.read().strip(), "2")
        show = self.podflow("runs", "show", run_id, expect=0).stdout
        self.assertIn("state:     success", show)
        self.assertEqual(self.task_row(show, "second")[1:3], ["success", "2"])
        # A finished run cannot be resumed again.
        self.podflow("run", "--resume", run_id, expect=2)


    def test_resume_asks_for_secret_params_again(self):
        started = os.path.join(self.dir, "started")
        seen = os.path.join(self.dir, "seen")
        wf = self.write("s.yaml", f"""\
            params:
              token: {{type: string, secret: true}}
            tasks:
              wait:
                operator: shell
                retries: 1
                retry_delay: 10ms
                with:
                  command: |
                    if [ "$PODFLOW_TRY_NUMBER" = 1 ]; then touch {started}; exec sleep 1000; fi
                    echo "{{{{ params.token }}}}" > {seen}
            """)
        proc = subprocess.Popen([PODFLOW, "run", wf, "--param", "token=tok-123456"], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: os.path.exists(started), "the first try to start")
        proc.send_signal(signal.SIGKILL)
        stdout, _ = proc.communicate(timeout=DEADLINE)
        run_id = self.run_id(stdout)
        out = self.podflow("run", "--resume", run_id, expect=2)
        self.assertIn("secret param 'token' is not stored with the run", out.stderr)
        self.podflow("run", "--resume", run_id, "--param", "token=tok-123456", expect=0)
        with open(seen) as f:
            self.assertEqual(f.read().strip(), "tok-123456")


class TokenTest(PodflowTestCase):
    def test_a_token_is_shown_once_stored_as_a_hash_listed_and_revoked(self):
        out = self.podflow("token", "create", "--role", "operator", "--name", "ci", expect=0).stdout
        secret = re.search(r"(?m)^  (pf_[0-9a-f]{40})$", out).group(1)
        token_id = re.search(r"token (tok_[0-9a-f]{8}) \(operator, ci\)", out).group(1)
        with sqlite3.connect(os.path.join(self.env["PODFLOW_HOME"], "podflow.db")) as db:
            rows = db.execute("SELECT id, role, hash, revoked_at FROM api_tokens").fetchall()
            dump = "\n".join(db.iterdump())
        self.assertEqual(rows, [(token_id, "operator", hashlib.sha256(secret.encode()).hexdigest(), 0)])
        self.assertNotIn(secret, dump)
        listing = self.podflow("token", "list", expect=0).stdout
        self.assertRegex(listing, rf"(?m)^{token_id}\s+operator\s+\S+Z\s+-\s+ci$")
        self.assertNotIn(secret, listing)
        self.assertIn("revoked", self.podflow("token", "revoke", token_id, expect=0).stdout)
        self.assertRegex(self.podflow("token", "list", expect=0).stdout,
                         rf"(?m)^{token_id}\s+operator\s+\S+Z\s+\S+Z\s+ci$")
        self.assertIn("viewer, operator or admin",
                      self.podflow("token", "create", "--role", "root", expect=2).stderr)
        self.assertIn("no token 'tok_nope'", self.podflow("token", "revoke", "tok_nope", expect=2).stderr)


class InspectTest(PodflowTestCase):
    def test_graph_next_version_and_help(self):
        wf = self.write("g.yaml", """\
            schedule: "30 2 * * *"
            timezone: Europe/Berlin
            tasks:
              a: {operator: noop}
              b: {operator: noop, depends: [a], trigger_rule: all_done}
            """)
        text = self.podflow("graph", wf, expect=0).stdout
        self.assertIn("b [noop, all_done] <- a", text)
        dot = self.podflow("graph", wf, "--format", "dot", expect=0).stdout
        self.assertIn('"a" -> "b" [label="all_done"];', dot)
        # 2026-03-29 is the spring-forward day in Berlin: 02:30 does not exist and fires at 03:00.
        nxt = self.podflow("next", wf, "--after", "2026-03-28T12:00:00Z", "--count", "2",
                           expect=0).stdout.splitlines()
        self.assertEqual(nxt, ["2026-03-29T01:00:00Z  2026-03-29 03:00:00+02:00 CEST",
                               "2026-03-30T00:30:00Z  2026-03-30 02:30:00+02:00 CEST"])
        for bad in (["--count", "0"], ["--after", "yesterday"]):
            out = self.podflow("next", wf, *bad, expect=2)
            self.assertIn(bad[0], out.stderr)
        unscheduled = self.write("u.yaml", "tasks:\n  a: {operator: noop}\n")
        out = self.podflow("next", unscheduled, expect=2)
        self.assertIn("has no schedule", out.stderr)
        self.assertIn("podflow", self.podflow("--version", expect=0).stdout)
        helptext = self.podflow("--help", expect=0).stdout
        for command in ("validate", "run", "graph", "next", "runs"):
            self.assertIn(command, helptext)
        self.podflow("frobnicate", expect=2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
