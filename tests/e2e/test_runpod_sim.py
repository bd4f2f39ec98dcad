"""End-to-end test: the real `podflow runpod-sim` binary serves RunPod's REST API and stops on SIGTERM."""

import json
import os
import signal
import subprocess
import unittest
import urllib.error
import urllib.request

PODFLOW = os.environ.get("PODFLOW_BIN", "build/app/podflow")
KEY = "e2e-sim-key"


class RunPodSimTest(unittest.TestCase):
    def setUp(self):
        self.proc = subprocess.Popen(
            [PODFLOW, "runpod-sim", "--listen", "127.0.0.1:0", "--api-key", KEY],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(self._kill)
        first = self.proc.stdout.readline().strip()
        self.assertTrue(first.startswith("listening http://127.0.0.1:"), first)
        self.base = first.split(" ", 1)[1]
        rest = [self.proc.stdout.readline().strip() for _ in range(2)]
        self.assertEqual(rest, [f"RUNPOD_REST_URL={self.base}",
                                f"RUNPOD_GRAPHQL_URL={self.base}/graphql"])

    def _kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()

    def request(self, method, path, body=None, key=KEY):
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=20) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def test_create_get_state_then_sigterm(self):
        status, pod = self.request("POST", "/v2/pods", {
            "name": "podflow-e2e", "image": "runpod/pytorch:2.4",
            "gpu": {"id": "NVIDIA GeForce RTX 4090", "count": 1}})
        self.assertEqual(status, 201, pod)
        status, got = self.request("GET", f"/v2/pods/{pod['id']}")
        self.assertEqual(status, 200)
        self.assertEqual(got["name"], "podflow-e2e")
        status, body = self.request("GET", "/v2/pods", key="wrong")
        self.assertEqual(status, 401)
        self.assertEqual(body["title"], "Unauthorized")

        status, state = self.request("GET", "/__sim/state", key=None)
        self.assertEqual(status, 200)
        self.assertEqual([p["name"] for p in state["pods"]], ["podflow-e2e"])
        self.assertEqual(state["request_counts"]["POST /v2/pods"], 1)
        self.assertNotIn(KEY, json.dumps(state))

        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(timeout=30), 0)

    def test_non_loopback_address_is_refused(self):
        out = subprocess.run([PODFLOW, "runpod-sim", "--listen", "0.0.0.0:0"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 2)
        self.assertIn("--allow-remote", out.stderr)


if __name__ == "__main__":
    unittest.main()
