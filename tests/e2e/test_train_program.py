"""End-to-end: workflows/train/train.py trains, prints podflow's metric and done lines, and stops
its own pod through the REST API of `podflow runpod-sim` (as on RunPod, where RUNPOD_POD_ID and a
pod-scoped RUNPOD_API_KEY are injected)."""

import functools
import json
import os
import re
import subprocess
import sys
import time
import unittest
import urllib.request

from podflow_e2e import PodflowTestCase
from test_runpod import API_KEY, Simulator

TRAIN = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                      "..", "..", "workflows", "train", "train.py"))


@functools.lru_cache(maxsize=None)
def python_with_numpy():
    """The interpreter running the tests (Debian's /usr/bin/python3 under ctest, with
    python3-numpy), else Debian's when this one lacks NumPy (a pyenv or venv python3 on PATH)."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        if candidate and subprocess.run([candidate, "-c", "import numpy"],
                                        capture_output=True).returncode == 0:
            return candidate
    return sys.executable  # the test then fails with the import error and a hint


TRAIN_DEADLINE = 25  # seconds; the program trains in well under one

SCRIPT = """\
time_scale: 50
pod:
  on_exit: keep_running
"""

ACTION_ROUTE = "POST /v2/pods/{id}/action"
METRIC = re.compile(r"^podflow\.metric name=(\S+) value=(\S+) step=(\d+)$")


class TrainProgramCase(PodflowTestCase):
    """A simulator per test, a pod on it, and the training program run as a subprocess."""

    script = SCRIPT

    def setUp(self):
        super().setUp()
        for name in list(self.env):
            if name.startswith("RUNPOD_") or name in (
                    "LEARNING_RATE", "BATCH_SIZE", "EPOCHS", "SEED", "SAMPLES", "FEATURES",
                    "TRAIN_FAIL"):
                del self.env[name]
        self.sim = Simulator(self.dir, self.script, self.env)

    def tearDown(self):
        self.sim.stop()
        super().tearDown()

    def sim_request(self, method, path, body=None):
        request = urllib.request.Request(
            self.sim.url + path, method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def running_pod(self):
        """A pod created straight through the REST API, once it is RUNNING."""
        pod_id = self.sim_request("POST", "/v2/pods", {
            "name": "train-program-test", "image": "podflow/train:test",
            "gpu": {"id": "NVIDIA GeForce RTX 4090", "count": 1}})["id"]
        deadline = time.monotonic() + 10
        while self.sim_request("GET", f"/v2/pods/{pod_id}")["status"] != "RUNNING":
            self.assertLess(time.monotonic(), deadline, "the pod never became RUNNING")
            time.sleep(0.05)
        return pod_id

    def train(self, pod_id=None, key=API_KEY, **settings):
        env = dict(self.env)
        env.update({"EPOCHS": "3", "BATCH_SIZE": "16", "LEARNING_RATE": "0.05", "SEED": "7"})
        env.update({k: str(v) for k, v in settings.items()})
        env["RUNPOD_REST_URL"] = self.sim.url
        if key is not None:
            env["RUNPOD_API_KEY"] = key
        if pod_id is not None:
            env["RUNPOD_POD_ID"] = pod_id
        python = python_with_numpy()
        proc = subprocess.run([python, TRAIN], env=env, capture_output=True, text=True,
                              timeout=TRAIN_DEADLINE, cwd=self.dir)
        self.assertNotIn(API_KEY, proc.stdout)
        self.assertNotIn(API_KEY, proc.stderr)
        self.assertNotIn("ModuleNotFoundError: No module named 'numpy'", proc.stderr,
                         f"{python} lacks NumPy: run scripts/install-deps.sh (python3-numpy)")
        return proc

    def metrics(self, stdout):
        series = {}
        for line in stdout.splitlines():
            match = METRIC.match(line)
            if line.startswith("podflow.metric"):
                self.assertIsNotNone(match, f"malformed metric line {line!r}")
            if match:
                series.setdefault(match.group(1), []).append(
                    (int(match.group(3)), float(match.group(2))))
        return series

    def last_line(self, stdout):
        lines = stdout.strip().splitlines()
        self.assertTrue(lines, "no output on stdout")
        return lines[-1]

    def pod_state(self, pod_id):
        return next(p for p in self.sim.state()["pods"] if p["id"] == pod_id)

    def action_requests(self):
        return [r for r in self.sim.state()["requests"] if r["route"] == ACTION_ROUTE]


class TrainProgramTest(TrainProgramCase):
    def test_trains_reports_metrics_and_stops_its_own_pod(self):
        pod_id = self.running_pod()
        proc = self.train(pod_id)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        series = self.metrics(proc.stdout)
        self.assertEqual(sorted(series), ["training_accuracy", "validation_loss"])
        accuracy, loss = series["training_accuracy"], series["validation_loss"]
        self.assertEqual([step for step, _ in accuracy], [1, 2, 3])
        self.assertEqual([step for step, _ in loss], [1, 2, 3])
        self.assertGreater(accuracy[-1][1], 0.7, accuracy)
        self.assertLessEqual(accuracy[-1][1], 1.0, accuracy)
        self.assertGreaterEqual(accuracy[-1][1], accuracy[0][1], accuracy)
        self.assertLess(loss[-1][1], loss[0][1], loss)
        self.assertEqual(self.last_line(proc.stdout), "podflow.done status=ok exit=0")

        pod = self.pod_state(pod_id)
        self.assertEqual(pod["status"], "EXITED", pod)
        self.assertRegex(pod["lastStatusChange"], r"^Exited by user")
        actions = self.action_requests()
        self.assertEqual(len(actions), 1, actions)
        self.assertEqual(actions[0]["method"], "POST")
        self.assertEqual(actions[0]["path"], f"/v2/pods/{pod_id}/action")
        self.assertTrue(actions[0]["authorization"])
        self.assertIn(f"asked RunPod to stop pod {pod_id}", proc.stderr)

    def test_the_same_seed_gives_the_same_metrics(self):
        first, second = self.train(), self.train()
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertEqual(first.stdout, second.stdout)

    def test_a_failing_run_says_failed_exits_non_zero_and_still_stops_its_pod(self):
        pod_id = self.running_pod()
        proc = self.train(pod_id, TRAIN_FAIL="1")
        self.assertNotEqual(proc.returncode, 0)
        done = self.last_line(proc.stdout)
        match = re.fullmatch(r"podflow\.done status=failed exit=(\d+)", done)
        self.assertIsNotNone(match, done)
        self.assertEqual(int(match.group(1)), proc.returncode)
        self.assertIn("TRAIN_FAIL", proc.stderr)
        # It fails after its first epoch, whose metrics were already reported.
        series = self.metrics(proc.stdout)
        self.assertEqual([step for step, _ in series["training_accuracy"]], [1])
        self.assertEqual(self.pod_state(pod_id)["status"], "EXITED")
        self.assertEqual(len(self.action_requests()), 1)

    def test_a_bad_hyperparameter_fails_with_exit_2_and_stops_the_pod(self):
        pod_id = self.running_pod()
        proc = self.train(pod_id, BATCH_SIZE="zero")
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertEqual(self.last_line(proc.stdout), "podflow.done status=failed exit=2")
        self.assertIn("BATCH_SIZE", proc.stderr)
        self.assertEqual(self.pod_state(pod_id)["status"], "EXITED")

    def test_off_runpod_it_trains_and_sends_nothing(self):
        proc = self.train(pod_id=None)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(len(self.metrics(proc.stdout)["validation_loss"]), 3)
        self.assertEqual(self.last_line(proc.stdout), "podflow.done status=ok exit=0")
        self.assertIn("RUNPOD_POD_ID is not set", proc.stderr)
        self.assertEqual(self.sim.state()["requests"], [])

    def test_a_rejected_key_is_reported_not_retried_and_never_printed(self):
        pod_id = self.running_pod()
        wrong = "rp-wrong-key-9876543210"
        proc = self.train(pod_id, key=wrong)
        self.assertEqual(proc.returncode, 0, proc.stderr)  # training itself succeeded
        self.assertEqual(self.last_line(proc.stdout), "podflow.done status=ok exit=0")
        self.assertIn(f"could not stop pod {pod_id}: HTTP 401", proc.stderr)
        self.assertIn("done_grace", proc.stderr)
        self.assertNotIn(wrong, proc.stdout + proc.stderr)
        self.assertEqual(len(self.action_requests()), 1)
        self.assertEqual(self.pod_state(pod_id)["status"], "RUNNING")


class StopRetryTest(TrainProgramCase):
    """The stop call rides out a server error."""

    script = SCRIPT + """\
faults:
  - route: POST /v2/pods/{id}/action
    status: 503
    times: 1
"""

    def test_a_503_on_stop_is_retried(self):
        pod_id = self.running_pod()
        proc = self.train(pod_id, EPOCHS="1")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("HTTP 503", proc.stderr)
        self.assertIn("retrying in 1s (attempt 2/5)", proc.stderr)
        self.assertEqual(len(self.action_requests()), 2)
        self.assertEqual(self.pod_state(pod_id)["status"], "EXITED")


if __name__ == "__main__":
    unittest.main()
