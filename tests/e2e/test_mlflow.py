"""End-to-end: the real podflow binary runs workflows/runpod_training.yaml against podflow runpod-sim
and a real MLflow server (CTest's mlflow fixture), and mlflow.log's outbox rides out an MLflow that
is down."""

import http.server
import json
import os
import re
import socket
import textwrap
import threading
import time
import urllib.parse
import urllib.request

from podflow_e2e import PodflowTestCase
from test_runpod import API_KEY, Simulator

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
REFERENCE = os.path.join(ROOT, "workflows", "runpod_training.yaml")


def mlflow_url():
    with open(os.environ["PODFLOW_MLFLOW_STATE"]) as f:
        return json.load(f)["url"]


def mlflow(url, method, path, body=None, query=None):
    target = url + "/api/2.0/mlflow/" + path
    if query:
        target += "?" + urllib.parse.urlencode(query)
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(target, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def runs_of(url, experiment, podflow_run):
    """The MLflow runs podflow made for one podflow run, by their identity tag."""
    try:
        found = mlflow(url, "GET", "experiments/get-by-name", query={"experiment_name": experiment})
    except urllib.error.HTTPError:
        return []
    experiment_id = found["experiment"]["experiment_id"]
    search = mlflow(url, "POST", "runs/search", {
        "experiment_ids": [experiment_id],
        "filter": f"tags.`podflow.run_id` = '{podflow_run}'"})
    return search.get("runs", [])


def history(url, run_id, key):
    points = mlflow(url, "GET", "metrics/get-history",
                    query={"run_id": run_id, "metric_key": key, "max_results": 1000})
    return [(p["step"], p["value"]) for p in points.get("metrics", [])]


def as_map(items):
    return {item["key"]: item.get("value") for item in items}


SIM_SCRIPT = """\
time_scale: 50
gpu_types:
  - id: NVIDIA RTX A4000
    name: RTX A4000
    pool: AMPERE_16
    memory_gb: 16
    max_count: 8
    price: {{secure: 0.25, community: 0.17}}
    spot_price: {{secure: 0.15, community: 0.10}}
    capacity: true
pod:
  on_exit: stop_pod
  lines:
    - epoch 1
    - podflow.metric name=training_accuracy value=0.71 step=1
    - podflow.metric name=validation_loss value=0.62 step=1
    - podflow.metric name=training_accuracy value=0.84 step=2
    - podflow.metric name=validation_loss value=0.41 step=2
    - podflow.metric name=training_accuracy value=0.90 step=3
    - podflow.metric name=validation_loss value=0.30 step=3
    - podflow.done status={done} exit={exit}
"""


class ReferenceWorkflowTest(PodflowTestCase):
    done = "ok"
    exit = 0

    def setUp(self):
        super().setUp()
        self.sim = Simulator(self.dir, SIM_SCRIPT.format(done=self.done, exit=self.exit), self.env)
        self.mlflow = mlflow_url()
        self.experiment = "runpod-training-" + os.path.basename(self.dir)
        self.env.update(RUNPOD_API_KEY=API_KEY, RUNPOD_REST_URL=self.sim.url,
                        RUNPOD_GRAPHQL_URL=self.sim.url + "/graphql",
                        MLFLOW_TRACKING_URI=self.mlflow)

    def tearDown(self):
        self.sim.stop()
        super().tearDown()

    def run_reference(self, expect):
        out = self.podflow("run", REFERENCE, "--param", "poll_interval=100ms",
                           "--param", f"experiment={self.experiment}", expect=expect)
        run_id = self.run_id(out.stdout)
        runs = runs_of(self.mlflow, self.experiment, run_id)
        self.assertEqual(len(runs), 1, f"one MLflow run per podflow run, got {runs}\n{out.stdout}")
        pods = self.sim.state()["pods"]
        self.assertEqual(len(pods), 1, pods)
        self.assertEqual([p for p in pods if not p.get("terminatedAt")], [],
                         "terminate_runpod must end the pod")
        return out, run_id, runs[0], pods[0]

    def assert_metric_series(self, run):
        run_id = run["info"]["run_id"]
        self.assertEqual(history(self.mlflow, run_id, "training_accuracy"),
                         [(1, 0.71), (2, 0.84), (3, 0.90)])
        self.assertEqual(history(self.mlflow, run_id, "validation_loss"),
                         [(1, 0.62), (2, 0.41), (3, 0.30)])

    def test_training_succeeds_and_mlflow_has_the_seed_run(self):
        out, run_id, run, pod = self.run_reference(expect=0)
        self.assertEqual(run["info"]["status"], "FINISHED")
        self.assertGreater(run["info"]["end_time"], run["info"]["start_time"])
        params = as_map(run["data"]["params"])
        self.assertEqual(params["pod_id"], pod["id"])
        self.assertEqual(params["template_id"], "runpod-torch-v280")
        self.assertEqual(params["final_status"], "EXITED")
        self.assertEqual(params["pod_type"], "INTERRUPTABLE")
        self.assertEqual(params["cloud_type"], "SECURE")
        self.assertEqual(params["bid_per_gpu"], "0.25")
        self.assertEqual(params["gpu_count"], "1")
        self.assertEqual(params["gpu_type"], "NVIDIA RTX A4000")
        self.assertTrue(params["machine_id"])
        self.assertGreater(float(params["cost_per_hr"]), 0)
        self.assertEqual(params["learning_rate"], "5e-05")
        self.assertEqual(params["batch_size"], "16")
        tags = as_map(run["data"]["tags"])
        self.assertEqual(tags["podflow.task"], "mlflow_log")
        self.assertEqual(tags["podflow.workflow"], "runpod_training")
        self.assertEqual(tags["mlflow.runName"], f"runpod_training-{run_id}")
        self.assert_metric_series(run)
        metrics = as_map(run["data"]["metrics"])
        self.assertIn("cost_usd", metrics)
        show = self.podflow("runs", "show", run_id, expect=0).stdout
        outputs = json.loads(re.search(r"(?m)^  mlflow_log: (\{.*\})$", show).group(1))
        self.assertTrue(outputs["delivered"])
        self.assertEqual(outputs["run_id"], run["info"]["run_id"])
        self.assertIn(f"/#/experiments/{outputs['experiment_id']}/runs/", outputs["run_url"])


class ReferenceWorkflowFailingTest(ReferenceWorkflowTest):
    done = "failed"
    exit = 3

    def test_training_succeeds_and_mlflow_has_the_seed_run(self):
        pass  # the success case belongs to the base class

    def test_failed_training_is_recorded_failed_and_the_pod_still_ends(self):
        out, run_id, run, pod = self.run_reference(expect=1)
        self.assertRegex(out.stdout, r"(?m)^monitor_runpod\s+failed")
        self.assertRegex(out.stdout, r"(?m)^mlflow_log\s+success")
        self.assertRegex(out.stdout, r"(?m)^terminate_runpod\s+success")
        self.assertEqual(run["info"]["status"], "FAILED")
        params = as_map(run["data"]["params"])
        self.assertEqual(params["pod_id"], pod["id"])
        self.assertEqual(params["final_status"], "FAILED")
        self.assert_metric_series(run)  # the points before the failure still reach MLflow


class Proxy:
    """Forwards to the real MLflow server once started: a server that is down, then back."""

    def __init__(self, port, target):
        self.requests = []  # (path, body) in the order they arrived
        requests = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                requests.append((self.path, body))
                request = urllib.request.Request(target + self.path, data=body, method=self.command,
                                                 headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(request, timeout=30) as answer:
                        status, payload = answer.status, answer.read()
                except urllib.error.HTTPError as error:
                    status, payload = error.code, error.read()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = forward
            do_POST = forward

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class OutboxTest(PodflowTestCase):
    def workflow(self, name, value):
        return self.write(f"{name}.yaml", f"""\
            name: {name}
            tasks:
              train:
                operator: noop
              log:
                operator: mlflow.log
                depends: [train]
                with:
                  experiment: {self.experiment}
                  delivery_timeout: 2s
                  params: {{order: "{value}"}}
                  metrics: {{accuracy: {value}}}
            """)

    def test_records_wait_in_the_outbox_while_mlflow_is_down_and_arrive_once_in_order(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        real = mlflow_url()
        self.experiment = "outbox-" + os.path.basename(self.dir)
        self.env["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{port}"
        self.env["PODFLOW_OUTBOX_WAIT"] = "1s"

        # MLflow is down: both runs succeed, their records stay pending.
        first = self.podflow("run", self.workflow("first", 1), expect=0)
        second = self.podflow("run", self.workflow("second", 2), expect=0)
        ids = [self.run_id(first.stdout), self.run_id(second.stdout)]
        self.assertIn("still pending", second.stdout)
        show = self.podflow("runs", "show", ids[0], expect=0).stdout
        self.assertIn('"delivered":false', show)
        self.assertRegex(show, r"mlflow\.outbox \S+ pending")
        logs = self.podflow("runs", "logs", ids[0], "log", expect=0).stdout
        self.assertIn("kept in the outbox", logs)

        # MLflow is back: the next podflow run delivers what waited, oldest first, then its own.
        proxy = Proxy(port, real)
        try:
            self.env["PODFLOW_OUTBOX_WAIT"] = "60s"
            third = self.podflow("run", self.workflow("third", 3), expect=0)
            ids.append(self.run_id(third.stdout))
        finally:
            proxy.stop()
        runs = [runs_of(real, self.experiment, run_id) for run_id in ids]
        self.assertEqual([len(r) for r in runs], [1, 1, 1], "each record arrives exactly once")
        self.assertEqual([as_map(r[0]["data"]["params"])["order"] for r in runs], ["1", "2", "3"])
        self.assertEqual([r[0]["info"]["status"] for r in runs], ["FINISHED"] * 3)
        creates = [json.loads(body) for path, body in proxy.requests
                   if path.endswith("/runs/create")]
        self.assertEqual([as_map(c["tags"])["podflow.run_id"] for c in creates], ids)
        for run in runs:
            self.assertEqual(len(history(real, run[0]["info"]["run_id"], "accuracy")), 1)
        # MLflow ignores an identical batch sent again, so count what was sent: one each.
        batches = [json.loads(body)["run_id"] for path, body in proxy.requests
                   if path.endswith("/runs/log-batch")]
        self.assertEqual(sorted(batches), sorted(r[0]["info"]["run_id"] for r in runs))
        show = self.podflow("runs", "show", ids[0], expect=0).stdout
        self.assertRegex(show, r"mlflow\.outbox \S+ delivered")


class RejectedTest(PodflowTestCase):
    def test_records_mlflow_refuses_fail_the_task_and_close_the_run(self):
        url = mlflow_url()
        self.env["MLFLOW_TRACKING_URI"] = url
        experiment = "rejected-" + os.path.basename(self.dir)
        long_key = "k" * 300  # MLflow's keys stop at 250 characters; it never cuts them
        wf = self.write("rejected.yaml", f"""\
            tasks:
              log:
                operator: mlflow.log
                with:
                  experiment: {experiment}
                  status: FINISHED
                  params: {{{long_key}: "0.2"}}
            """)
        out = self.podflow("run", wf, expect=1)
        run_id = self.run_id(out.stdout)
        show = self.podflow("runs", "show", run_id, expect=0).stdout
        self.assertIn("error (client): MLflow refused the records", show)
        self.assertIn("INVALID_PARAMETER_VALUE", show)
        self.assertRegex(show, r"mlflow\.outbox \S+ rejected")
        runs = runs_of(url, experiment, run_id)
        self.assertEqual(len(runs), 1)
        self.assertEqual(runs[0]["info"]["status"], "FAILED", "a run left RUNNING looks alive")


class HangingMlflowTest(PodflowTestCase):
    def test_an_mlflow_that_never_answers_holds_the_task_only_for_delivery_timeout(self):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # accepts connections, never answers
        try:
            self.env["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{listener.getsockname()[1]}"
            self.env["PODFLOW_OUTBOX_WAIT"] = "0s"
            wf = self.write("hang.yaml", """\
                tasks:
                  log:
                    operator: mlflow.log
                    with:
                      experiment: hang
                      delivery_timeout: 1s
                      metrics: {accuracy: 1}
                  after:
                    operator: noop
                    depends: [log]
                """)
            began = time.monotonic()
            out = self.podflow("run", wf, expect=0)
            self.assertLess(time.monotonic() - began, 20, "the task waited far past delivery_timeout")
            show = self.podflow("runs", "show", self.run_id(out.stdout), expect=0).stdout
            self.assertIn('"delivered":false', show)
            self.assertRegex(show, r"(?m)^after\s+success")
            logs = self.podflow("runs", "logs", self.run_id(out.stdout), "log", expect=0).stdout
            self.assertIn("timed out after 1s", logs)

            # The next run sends to a working server: its records go straight through although
            # this process's background is stuck on the hanging server's pending entry.
            self.env["MLFLOW_TRACKING_URI"] = mlflow_url()
            good = self.write("good.yaml", """\
                tasks:
                  log:
                    operator: mlflow.log
                    with:
                      experiment: hang-neighbour
                      metrics: {accuracy: 1}
                """)
            out = self.podflow("run", good, expect=0)
            show = self.podflow("runs", "show", self.run_id(out.stdout), expect=0).stdout
            self.assertIn('"delivered":true', show)
        finally:
            listener.close()
