"""End-to-end: the real podflow binary creates and terminates pods on `podflow runpod-sim`."""

import json
import os
import re
import signal
import sqlite3
import subprocess
import time
import textwrap
import unittest
import urllib.request

from podflow_e2e import DEADLINE, PODFLOW, PodflowTestCase

API_KEY = "rp-test-key-0123456789"

SCRIPT = """\
time_scale: 50
gpu_types:
  - id: NVIDIA RTX A4000
    name: RTX A4000
    pool: AMPERE_16
    memory_gb: 16
    max_count: 8
    price: {secure: 0.25, community: 0.17}
    spot_price: {secure: 0.15, community: 0.10}
    capacity: false
  - id: NVIDIA A40
    name: A40
    pool: AMPERE_48
    memory_gb: 48
    max_count: 8
    price: {secure: 0.44, community: 0.35}
    spot_price: {secure: 0.25, community: 0.20}
    capacity: true
pod:
  on_exit: keep_running
"""


class Simulator:
    def __init__(self, directory, script, env):
        path = os.path.join(directory, "sim.yaml")
        with open(path, "w") as f:
            f.write(script)
        self.proc = subprocess.Popen(
            [PODFLOW, "runpod-sim", "--listen", "127.0.0.1:0", "--script", path,
             "--api-key", API_KEY],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline()
        match = re.match(r"listening (http://\S+)", first)
        if not match:
            self.proc.kill()
            raise AssertionError(f"runpod-sim did not start: {first!r} {self.proc.stderr.read()}")
        self.url = match.group(1)

    def state(self):
        with urllib.request.urlopen(self.url + "/__sim/state", timeout=10) as response:
            return json.load(response)

    def stop(self):
        self.proc.terminate()
        self.proc.communicate(timeout=DEADLINE)


class RunPodTest(PodflowTestCase):
    script = SCRIPT

    def setUp(self):
        super().setUp()
        self.sim = Simulator(self.dir, self.script, self.env)
        self.env["RUNPOD_API_KEY"] = API_KEY
        self.env["RUNPOD_REST_URL"] = self.sim.url
        self.env["RUNPOD_GRAPHQL_URL"] = self.sim.url + "/graphql"

    def tearDown(self):
        self.sim.stop()
        super().tearDown()

    def live_pods(self):
        return [p for p in self.sim.state()["pods"] if p.get("terminatedAt") in (None, "")]

    def assert_key_nowhere(self, *texts):
        for text in texts:
            self.assertNotIn(API_KEY, text)
        with sqlite3.connect(os.path.join(self.env["PODFLOW_HOME"], "podflow.db")) as db:
            for table, in db.execute("SELECT name FROM sqlite_master WHERE type='table'"):
                for row in db.execute(f"SELECT * FROM {table}"):
                    self.assertNotIn(API_KEY, repr(row), table)
        for root, _, files in os.walk(os.path.join(self.env["PODFLOW_HOME"], "logs")):
            for name in files:
                with open(os.path.join(root, name)) as f:
                    self.assertNotIn(API_KEY, f.read())



class CreateTest(RunPodTest):
    """runpod.create, terminate, stop/start and reap on the default script."""

    def test_failover_to_the_next_candidate_and_terminate_by_task(self):
        wf = self.write("train.yaml", """\
            tasks:
              trigger_runpod:
                operator: runpod.create
                with:
                  image: runpod/pytorch:2.4.0
                  candidates:
                    - {gpu_type: NVIDIA RTX A4000, cloud_type: SECURE}
                    - {gpu_type: NVIDIA A40, cloud_type: ALL}
              train:
                operator: shell
                depends: [trigger_runpod]
                with: {command: "echo training on {{ tasks.trigger_runpod.outputs.pod_id }}; exit 1"}
              terminate_runpod:
                operator: runpod.terminate
                depends: [train]
                trigger_rule: all_done
                with: {task: trigger_runpod}
            """)
        out = self.podflow("run", wf, expect=1)
        run_id = self.run_id(out.stdout)
        pods = self.sim.state()["pods"]
        self.assertEqual(len(pods), 1, pods)
        self.assertEqual(pods[0]["gpu"]["id"], "NVIDIA A40")
        self.assertEqual(self.live_pods(), [], "terminate must end the pod after a failed train")
        logs = self.podflow("runs", "logs", run_id, "trigger_runpod", expect=0).stdout
        self.assertRegex(logs, r"attempt 1/3 \(NVIDIA RTX A4000, SECURE.*no longer any instances")
        self.assertRegex(logs, r"attempt 2/3 \(NVIDIA A40, SECURE.*created pod")
        show = self.podflow("runs", "show", run_id, expect=0).stdout
        self.assertRegex(show, r"(?m)^terminate_runpod\s+success")
        self.assertIn('"gpu_type":"NVIDIA A40"', show)
        self.assertIn("runpod.pod podflow-", show)
        self.assert_key_nowhere(out.stdout, out.stderr, show, logs)

    def test_all_candidates_without_capacity_fail_with_kind_capacity(self):
        wf = self.write("none.yaml", """\
            tasks:
              trigger_runpod:
                operator: runpod.create
                with: {image: img, gpu_type: NVIDIA RTX A4000}
            """)
        out = self.podflow("run", wf, expect=1)
        run_id = self.run_id(out.stdout)
        show = self.podflow("runs", "show", run_id, expect=0).stdout
        self.assertIn("error (capacity): no candidate had capacity", show)
        self.assertEqual(self.sim.state()["pods"], [])

    def test_a_spot_pod_with_a_bid_reports_its_facts(self):
        wf = self.write("spot.yaml", """\
            tasks:
              trigger_runpod:
                operator: runpod.create
                with:
                  image: img
                  candidates:
                    - {gpu_type: NVIDIA RTX A4000, pricing: spot, bid_per_gpu: 0.25}
                    - {gpu_type: NVIDIA A40, cloud_type: COMMUNITY, pricing: spot, bid_per_gpu: 0.3}
              terminate_runpod:
                operator: runpod.terminate
                depends: [trigger_runpod]
                with: {task: trigger_runpod}
            """)
        out = self.podflow("run", wf, expect=0)
        run_id = self.run_id(out.stdout)
        show = self.podflow("runs", "show", run_id, expect=0).stdout
        outputs = json.loads(re.search(r"(?m)^  trigger_runpod: (\{.*\})$", show).group(1))
        pods = self.sim.state()["pods"]
        self.assertEqual(len(pods), 1, pods)
        self.assertEqual(outputs["pod_id"], pods[0]["id"])
        self.assertEqual(outputs["pod_type"], "INTERRUPTABLE")
        self.assertEqual(outputs["bid_per_gpu"], 0.3)
        self.assertEqual(outputs["cloud_type"], "COMMUNITY")
        self.assertEqual(outputs["gpu_type"], "NVIDIA A40")
        self.assertEqual(outputs["api"], "graphql")
        self.assertTrue(outputs["machine_id"])
        self.assertEqual(pods[0]["bidPerGpu"], 0.3)
        self.assertEqual(pods[0]["cloud"], "COMMUNITY")
        self.assertGreater(outputs["cost_per_hr"], 0)
        logs = self.podflow("runs", "logs", run_id, "trigger_runpod", expect=0).stdout
        self.assertRegex(logs, r"attempt 1/2 \(NVIDIA RTX A4000, SECURE, 1 GPU, spot bid 0.25\): ")
        self.assertEqual(self.live_pods(), [])


    def sim_request(self, method, path, body=None):
        request = urllib.request.Request(
            self.sim.url + path, method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def foreign_pod(self, name):
        """A pod someone else made on the same account, straight through the API."""
        return self.sim_request("POST", "/v2/pods", {
            "name": name, "image": "img", "gpu": {"id": "NVIDIA A40", "count": 1}})["id"]

    def orphan_run(self):
        """A run that created a pod and ended without terminating it."""
        wf = self.write("orphan.yaml", """\
            tasks:
              trigger_runpod:
                operator: runpod.create
                with: {image: img, gpu_type: NVIDIA A40}
            """)
        out = self.podflow("run", wf, expect=0)
        show = self.podflow("runs", "show", self.run_id(out.stdout), expect=0).stdout
        return re.search(r'"pod_id":"([^"]+)"', show).group(1)

    def test_reap_terminates_only_this_installations_orphans(self):
        other_id = self.foreign_pod("podflow-otherins-train-r1-trigger-runpod-1")
        unrelated_id = self.foreign_pod("jupyter-notebook")
        orphan_id = self.orphan_run()
        self.assertEqual(len(self.live_pods()), 3)

        dry = self.podflow("reap", "--dry-run", "--older-than", "0s", expect=0).stdout
        self.assertRegex(
            dry, rf"(?m)^podflow-\S+\s+{orphan_id}\s+\S+\s+would terminate: run \S+ ended success")
        self.assertRegex(dry, rf"(?m)^podflow-otherins-\S+\s+{other_id}\s+\S+\s+skip: ")
        self.assertRegex(dry, rf"(?m)^jupyter-notebook\s+{unrelated_id}\s+\S+\s+skip: ")
        self.assertEqual(len(self.live_pods()), 3, "--dry-run must not terminate anything")

        # Inside the default grace period of 10m the orphan is still kept.
        young = self.podflow("reap", expect=0).stdout
        self.assertRegex(young, rf"{orphan_id}\s+\S+\s+keep: .*inside the grace period of 10m")
        self.assertEqual(len(self.live_pods()), 3)

        out = self.podflow("reap", "--older-than", "0s", expect=0).stdout
        self.assertRegex(out, rf"(?m)^podflow-\S+\s+{orphan_id}\s+\S+\s+terminated: ")
        self.assertEqual(sorted(p["id"] for p in self.live_pods()), sorted([other_id, unrelated_id]))
        with sqlite3.connect(os.path.join(self.env["PODFLOW_HOME"], "podflow.db")) as db:
            states = db.execute("SELECT state FROM resources WHERE external_id = ?",
                                (orphan_id,)).fetchall()
        self.assertEqual(states, [("terminated",)])

    def test_reap_without_an_api_key_says_how_to_set_it(self):
        del self.env["RUNPOD_API_KEY"]
        out = self.podflow("reap", expect=2)
        self.assertIn("RUNPOD_API_KEY", out.stderr)
        bad = self.podflow("reap", "--older-than", "soon", expect=2)
        self.assertIn("--older-than", bad.stderr)

    def test_stop_then_start_an_on_demand_pod(self):
        wf = self.write("pause.yaml", """\
            tasks:
              trigger_runpod:
                operator: runpod.create
                with: {image: img, gpu_type: NVIDIA A40}
              pause:
                operator: runpod.stop
                depends: [trigger_runpod]
                with: {pod_id: "{{ tasks.trigger_runpod.outputs.pod_id }}"}
              pause_again:
                operator: runpod.stop
                depends: [pause]
                with: {pod_id: "{{ tasks.trigger_runpod.outputs.pod_id }}"}
              resume:
                operator: runpod.start
                depends: [pause_again]
                with: {pod_id: "{{ tasks.trigger_runpod.outputs.pod_id }}"}
              terminate_runpod:
                operator: runpod.terminate
                depends: [resume]
                trigger_rule: all_done
                with: {task: trigger_runpod}
            """)
        out = self.podflow("run", wf, expect=0)
        run_id = self.run_id(out.stdout)
        show = self.podflow("runs", "show", run_id, expect=0).stdout
        self.assertIn('pause: {"status":"EXITED"}', show)
        self.assertRegex(show, r'resume: \{"status":"(PROVISIONING|STARTING|RUNNING)",'
                               r'"cost_per_hr":0\.44\}')
        again = self.podflow("runs", "logs", run_id, "pause_again", expect=0).stdout
        self.assertIn("already stopped", again)
        counts = self.sim.state()["request_counts"]
        # One stop and one start: the second stop saw the pod stopped and sent nothing.
        self.assertEqual(counts.get("POST /v2/pods/{id}/action"), 2, counts)
        self.assertEqual(self.live_pods(), [])


# A create with tries to spare, and a terminate that ends whatever it made.
RETRIED_CREATE = """\
tasks:
  trigger_runpod:
    operator: runpod.create
    retries: 3
    retry_delay: 10ms
    with: {image: img, gpu_type: NVIDIA A40}
  terminate_runpod:
    operator: runpod.terminate
    depends: [trigger_runpod]
    trigger_rule: all_done
    with: {task: trigger_runpod}
"""


class LostCreateAnswerTest(RunPodTest):
    # The pod is created but the answer is a 500: podflow must find it by name, not make another.
    script = SCRIPT + textwrap.dedent("""\
        faults:
          - route: POST /v2/pods
            status: 500
            after_handling: true
            times: 1
        """)

    def test_a_500_on_create_never_makes_a_second_pod(self):
        wf = self.write("lost.yaml", RETRIED_CREATE)
        out = self.podflow("run", wf, expect=0)
        self.assertEqual(len(self.sim.state()["pods"]), 1)
        self.assertEqual(self.live_pods(), [])
        run_id = self.run_id(out.stdout)
        logs = self.podflow("runs", "logs", run_id, "trigger_runpod", expect=0).stdout
        self.assertIn("but pod", logs)


class LostLookupTest(RunPodTest):
    # The create's answer is lost and the look-ups that would find the pod fail twice: the task
    # must keep failing rather than create a second pod, and adopt the first once it is visible.
    script = SCRIPT + textwrap.dedent("""\
        faults:
          - route: POST /v2/pods
            status: 500
            after_handling: true
            times: 1
          - route: GET /v2/pods
            status: 503
            times: 2
        """)

    def test_a_failed_look_up_never_makes_a_second_pod(self):
        wf = self.write("lookup.yaml", RETRIED_CREATE)
        out = self.podflow("run", wf, expect=0)
        run_id = self.run_id(out.stdout)
        pods = self.sim.state()["pods"]
        self.assertEqual(len(pods), 1, pods)
        self.assertEqual(self.live_pods(), [])
        logs = self.podflow("runs", "logs", run_id, "trigger_runpod", "--try", "2",
                            expect=0).stdout
        self.assertIn("not creating another until it can be looked up", logs)
        logs = self.podflow("runs", "logs", run_id, "trigger_runpod", "--try", "3",
                            expect=0).stdout
        self.assertIn("try 1 already created pod " + pods[0]["id"], logs)
        show = self.podflow("runs", "show", run_id, expect=0).stdout
        self.assertRegex(show, r"(?m)^trigger_runpod\s+success\s+3\b")


class RateLimitTest(RunPodTest):
    # Every 4th request is refused with 429: the whole create -> wait -> terminate still succeeds,
    # with no pod left and no request sent before RunPod allowed it.
    script = "time_scale: 50\n" + """\
gpu_types:
  - id: NVIDIA A40
    name: A40
    pool: AMPERE_48
    memory_gb: 48
    max_count: 8
    price: {secure: 0.44, community: 0.35}
    spot_price: {secure: 0.25, community: 0.20}
    capacity: true
pod:
  on_exit: stop_pod
  lines:
    - podflow.metric name=loss value=0.5 step=1
    - podflow.done status=ok exit=0
rate_limit: {every: 4, retry_after_seconds: 1}
"""

    def test_rate_limited_requests_are_retried_and_nothing_is_left_running(self):
        wf = self.write("limited.yaml", """\
            defaults:
              retries: 5
              retry_delay: 10ms
            tasks:
              trigger_runpod:
                operator: runpod.create
                with: {image: img, gpu_type: NVIDIA A40}
              wait_runpod:
                operator: runpod.wait
                depends: [trigger_runpod]
                with:
                  pod_id: "{{ tasks.trigger_runpod.outputs.pod_id }}"
                  poll_interval: 100ms
              terminate_runpod:
                operator: runpod.terminate
                depends: [wait_runpod]
                trigger_rule: all_done
                with: {task: trigger_runpod}
            """)
        out = self.podflow("run", wf, expect=0)
        run_id = self.run_id(out.stdout)
        state = self.sim.state()
        self.assertEqual(len(state["pods"]), 1, state["pods"])
        self.assertEqual(self.live_pods(), [])
        self.assertGreater(state["rate_limited"], 0)
        show = self.podflow("runs", "show", run_id, expect=0).stdout
        self.assertIn('"loss":0.5', show.replace(" ", ""))


WAIT_GPU = """\
gpu_types:
  - id: NVIDIA A40
    name: A40
    pool: AMPERE_48
    memory_gb: 48
    max_count: 8
    price: {secure: 0.44, community: 0.35}
    spot_price: {secure: 0.25, community: 0.20}
    capacity: true
"""

# create -> wait -> terminate, terminate ending every pod create made whatever wait did.
WAIT_WORKFLOW = """\
tasks:
  trigger_runpod:
    operator: runpod.create
    with: {create_with}
  wait_runpod:
    operator: runpod.wait
    depends: [trigger_runpod]
    {wait_extra}
    with:
      pod_id: "{{{{ tasks.trigger_runpod.outputs.pod_id }}}}"
      poll_interval: 100ms
      {wait_with}
  terminate_runpod:
    operator: runpod.terminate
    depends: [wait_runpod]
    trigger_rule: all_done
    with: {{task: trigger_runpod}}
"""


class WaitTestBase(RunPodTest):
    def run_wait(self, expect, create_with="{image: img, gpu_type: NVIDIA A40}", wait_extra="",
                 wait_with=""):
        wf = self.write("wait.yaml", WAIT_WORKFLOW.format(
            create_with=create_with, wait_extra=wait_extra, wait_with=wait_with))
        out = self.podflow("run", wf, expect=expect)
        run_id = self.run_id(out.stdout)
        show = self.podflow("runs", "show", run_id, expect=0).stdout
        return run_id, show


class WaitForDoneLineTest(WaitTestBase):
    script = "time_scale: 50\n" + WAIT_GPU + textwrap.dedent("""\
        pod:
          on_exit: stop_pod
          lines:
            - epoch 1
            - podflow.metric name=loss value=0.9 step=1
            - podflow.metric name=acc value=0.5 step=1
            - podflow.metric name=loss value=0.7 step=2
            - podflow.metric name=loss value=0.4 step=3
            - podflow.metric name=acc value=0.8 step=3
            - podflow.done status=ok exit=0
        """)

    def test_metrics_and_done_line_are_recorded_and_the_pod_ends(self):
        run_id, show = self.run_wait(expect=0)
        self.assertRegex(show, r"(?m)^wait_runpod\s+success")
        self.assertIn("metrics (last value, points):", show)
        self.assertIn("wait_runpod.loss = 0.4 at step 3 (3 points)", show)
        self.assertIn("wait_runpod.acc = 0.8 at step 3 (2 points)", show)
        outputs = re.search(r"(?m)^  wait_runpod: (\{.*\})$", show)
        self.assertIsNotNone(outputs, show)
        wait = json.loads(outputs.group(1))
        self.assertEqual(wait["final_status"], "EXITED")
        self.assertEqual(wait["done_status"], "ok")
        self.assertEqual(wait["exit_code"], 0)
        self.assertEqual(wait["metrics"], {"loss": 0.4, "acc": 0.8})
        self.assertTrue(wait["last_status_change"].startswith("Exited by user"), wait)
        self.assertGreater(wait["cost_usd"], 0)
        logs = self.podflow("runs", "logs", run_id, "wait_runpod", expect=0).stdout
        self.assertIn("epoch 1", logs)
        self.assertEqual(logs.count("podflow.metric name=loss value=0.7 step=2"), 1, logs)
        self.assertEqual(self.live_pods(), [])


class WaitRestartingContainerTest(WaitTestBase):
    # The program exits without stopping its pod: RunPod restarts it, so only the timeout ends it.
    script = "time_scale: 50\n" + WAIT_GPU + textwrap.dedent("""\
        pod:
          on_exit: restart
          restart_delay_seconds: 2
          lines:
            - podflow.metric name=loss value=0.9 step=1
            - podflow.metric name=loss value=0.5 step=2
        """)

    def test_the_task_timeout_ends_the_wait_and_terminate_still_ends_the_pod(self):
        run_id, show = self.run_wait(expect=1, wait_extra="timeout: 2s")
        self.assertRegex(show, r"(?m)^wait_runpod\s+failed")
        self.assertIn("error (timeout)", show)
        self.assertRegex(show, r"(?m)^terminate_runpod\s+success")
        # Lines repeated after each restart are the same points, not new ones.
        self.assertIn("wait_runpod.loss = 0.5 at step 2 (2 points)", show)
        pods = self.sim.state()["pods"]
        self.assertEqual(len(pods), 1)
        self.assertGreater(pods[0]["containerStarts"], 1, "the container must have restarted")
        self.assertEqual(self.live_pods(), [])


class WaitPreemptionTest(WaitTestBase):
    script = "time_scale: 50\n" + WAIT_GPU + textwrap.dedent("""\
        pod:
          on_exit: keep_running
          preempt_after_seconds: 20
        """)

    def test_a_preempted_spot_pod_fails_with_kind_preempted(self):
        run_id, show = self.run_wait(
            expect=1,
            create_with="{image: img, gpu_type: NVIDIA A40, pricing: spot, bid_per_gpu: 0.3}",
            wait_with="on_preemption: fail")
        self.assertIn("error (preempted): spot pod", show)
        self.assertIn("Outbid", show)
        self.assertEqual(self.live_pods(), [])


class WaitPreemptionResumeTest(WaitTestBase):
    # Outbid twice, 20 simulated seconds after each (re)start; the second resume then prints its
    # lines and stops itself.
    script = "time_scale: 50\n" + WAIT_GPU + textwrap.dedent("""\
        pod:
          on_exit: stop_pod
          preempt_after_seconds: 20
          preempt_times: 2
          line_interval_seconds: 30
          lines:
            - podflow.metric name=loss value=0.9 step=1
            - podflow.done status=ok exit=0
        """)

    def test_a_preempted_spot_pod_is_resumed_with_a_rising_bid_and_finishes(self):
        run_id, show = self.run_wait(
            expect=0,
            create_with="{image: img, gpu_type: NVIDIA A40, pricing: spot, bid_per_gpu: 0.25}",
            wait_with="on_preemption: resume\n      bid_per_gpu: 0.26\n      max_bid_per_gpu: 0.3")
        self.assertRegex(show, r"(?m)^wait_runpod\s+success")
        outputs = json.loads(re.search(r"(?m)^  wait_runpod: (\{.*\})$", show).group(1))
        self.assertEqual(outputs["preemptions"], 2)
        self.assertEqual(outputs["done_status"], "ok")
        logs = self.podflow("runs", "logs", run_id, "wait_runpod", expect=0).stdout
        # The first resume bids bid_per_gpu, the next 25% more, capped at max_bid_per_gpu.
        self.assertIn("resuming it with a bid of 0.26 per GPU", logs)
        self.assertIn("resuming it with a bid of 0.3 per GPU", logs)
        state = self.sim.state()
        self.assertEqual(state["request_counts"].get("graphql podBidResume"), 2,
                         state["request_counts"])
        self.assertEqual([p["preemptions"] for p in state["pods"]], [2])
        self.assertEqual([p["bidPerGpu"] for p in state["pods"]], [0.3])
        self.assertEqual(self.live_pods(), [])


class WaitReattachTest(WaitTestBase):
    # Ten metric lines half a real second apart; podflow is killed after the third and resumed.
    script = "time_scale: 50\n" + WAIT_GPU + textwrap.dedent("""\
        pod:
          on_exit: stop_pod
          line_interval_seconds: 25
          lines:
        """) + "".join(f"    - podflow.metric name=loss value={1 - i / 10} step={i}\n"
                       for i in range(1, 11)) + "    - podflow.done status=ok exit=0\n"

    def recorded_steps(self):
        db_path = os.path.join(self.env["PODFLOW_HOME"], "podflow.db")
        if not os.path.exists(db_path):
            return []
        try:
            with sqlite3.connect(db_path) as db:
                return [step for step, in db.execute(
                    "SELECT step FROM metrics WHERE name = 'loss' ORDER BY step")]
        except sqlite3.OperationalError:
            return []  # podflow is still creating the schema

    def test_a_resumed_wait_continues_the_stream_without_repeating_a_point(self):
        wf = self.write("wait.yaml", WAIT_WORKFLOW.format(
            create_with="{image: img, gpu_type: NVIDIA A40}", wait_extra="retries: 1",
            wait_with=""))
        proc = subprocess.Popen([PODFLOW, "run", wf], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + DEADLINE
        while len(self.recorded_steps()) < 3:
            self.assertLess(time.monotonic(), deadline, "three metric points were never recorded")
            self.assertIsNone(proc.poll(), "podflow run ended before it was killed")
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        stdout, _ = proc.communicate(timeout=DEADLINE)
        run_id = self.run_id(stdout)
        before = self.recorded_steps()
        self.assertLess(len(before), 10)

        out = self.podflow("run", "--resume", run_id, expect=0)
        self.assertIn(f"resuming run {run_id}", out.stdout)
        self.assertEqual(self.recorded_steps(), list(range(1, 11)))
        show = self.podflow("runs", "show", run_id, expect=0).stdout
        self.assertEqual(self.task_row(show, "wait_runpod")[1:3], ["success", "2"])
        outputs = json.loads(re.search(r"(?m)^  wait_runpod: (\{.*\})$", show).group(1))
        self.assertEqual(outputs["metrics"], {"loss": 0.0})
        # The second try streamed on from the recorded cursor. The cursor is written just after
        # a point, so only the point the kill interrupted may come again (the store keeps it
        # once, as checked above).
        second = self.podflow("runs", "logs", run_id, "wait_runpod", "--try", "2", expect=0).stdout
        self.assertIn("re-attaching to the logs of pod", second)
        for step in before[:-1]:
            self.assertNotIn(f"step={step}\n", second)
        self.assertIn("step=10", second)
        self.assertEqual(len(self.sim.state()["pods"]), 1)
        self.assertEqual(self.live_pods(), [])


class WaitStartDeadlineTest(WaitTestBase):
    # The container takes 1,000 simulated seconds (20 real ones) to start.
    script = "time_scale: 50\n" + WAIT_GPU + textwrap.dedent("""\
        pod:
          provision_seconds: 1
          start_seconds: 1000
          on_exit: keep_running
        """)

    def test_a_pod_that_never_starts_fails_at_start_deadline_and_is_terminated(self):
        run_id, show = self.run_wait(expect=1, wait_with="start_deadline: 1s")
        self.assertRegex(show, r"(?m)^wait_runpod\s+failed")
        self.assertIn("pod never started: no container runtime within 1s", show)
        self.assertRegex(show, r"(?m)^terminate_runpod\s+success")
        self.assertEqual(self.live_pods(), [])


class GraphqlOffTest(RunPodTest):
    def test_without_graphql_spot_candidates_are_skipped_and_on_demand_still_works(self):
        self.env["RUNPOD_GRAPHQL_URL"] = "off"
        wf = self.write("nographql.yaml", """\
            tasks:
              trigger_runpod:
                operator: runpod.create
                with:
                  image: img
                  terminate_after: 1h
                  candidates:
                    - {gpu_type: NVIDIA A40, pricing: spot, bid_per_gpu: 0.3}
                    - {gpu_type: NVIDIA A40, pricing: on_demand}
              terminate_runpod:
                operator: runpod.terminate
                depends: [trigger_runpod]
                with: {task: trigger_runpod}
            """)
        out = self.podflow("run", wf, expect=0)
        run_id = self.run_id(out.stdout)
        logs = self.podflow("runs", "logs", run_id, "trigger_runpod", expect=0).stdout
        self.assertRegex(logs, r"attempt 1/2 .*skipped, spot pods need RunPod's GraphQL API")
        self.assertIn("terminate_after needs RunPod's GraphQL API", logs)
        self.assertRegex(logs, r"attempt 2/2 .*created pod")
        show = self.podflow("runs", "show", run_id, expect=0).stdout
        outputs = json.loads(re.search(r"(?m)^  trigger_runpod: (\{.*\})$", show).group(1))
        self.assertEqual(outputs["api"], "rest")
        self.assertEqual(outputs["pod_type"], "RESERVED")
        state = self.sim.state()
        self.assertFalse([r for r in state["request_counts"] if r.startswith("graphql")],
                         state["request_counts"])
        self.assertEqual(self.live_pods(), [])


class WaitCostCapTest(WaitTestBase):
    # An hour of pod time per real second: $0.44 a second.
    script = "time_scale: 3600\n" + WAIT_GPU + textwrap.dedent("""\
        pod:
          on_exit: keep_running
        """)

    def test_exceeding_max_cost_stops_the_pod_and_fails_with_kind_cost_cap(self):
        run_id, show = self.run_wait(expect=1, wait_with="max_cost_usd: 0.5")
        self.assertIn("error (cost_cap): pod", show)
        self.assertIn("over max_cost_usd $0.5; stopped it", show)
        state = self.sim.state()
        stops = [r for r in state["requests"]
                 if r.get("route") == "POST /v2/pods/{id}/action"]
        self.assertGreaterEqual(len(stops), 1, state["request_counts"])
        self.assertEqual(self.live_pods(), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
