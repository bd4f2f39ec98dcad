"""End-to-end: `podflow serve` through a real socket: tokens, Host allow-list, limits, headers."""

import http.client
import json
import re
import signal
import socket
import subprocess
import time

from podflow_e2e import DEADLINE, PODFLOW, PodflowTestCase


class ServeTest(PodflowTestCase):
    def setUp(self):
        super().setUp()
        wf = self.write("hello.yaml", """\
            tasks:
              hello:
                operator: shell
                with: {command: "echo hi; echo answer=42 >> $PODFLOW_OUTPUTS"}
            """)
        self.run_id_done = self.run_id(self.podflow("run", wf, expect=0).stdout)
        out = self.podflow("token", "create", "--role", "viewer", "--name", "test", expect=0).stdout
        self.token = re.search(r"(?m)^  (pf_[0-9a-f]{40})$", out).group(1)
        self.token_id = re.search(r"token (tok_[0-9a-f]{8})", out).group(1)
        self.server = subprocess.Popen(
            [PODFLOW, "serve", "--listen", "127.0.0.1:0", "--allowed-host", "podflow.example.com",
             "--request-timeout", "2s"],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = self.server.stdout.readline()
        match = re.match(r"listening http://127\.0\.0\.1:(\d+)", first)
        if not match:
            self.server.kill()
            self.fail(f"podflow serve did not start: {first!r} {self.server.stderr.read()}")
        self.port = int(match.group(1))

    def tearDown(self):
        if self.server.poll() is None:
            self.server.kill()
            self.server.communicate(timeout=DEADLINE)
        super().tearDown()

    def request(self, method, path, token=None, host=None, body=None, headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        if host:
            all_headers["Host"] = host
        connection.request(method, path, body=body, headers=all_headers)
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        return response.status, dict(response.getheaders()), payload

    def test_health_is_anonymous_and_everything_else_needs_a_valid_token(self):
        status, headers, body = self.request("GET", "/healthz")
        self.assertEqual((status, body), (200, b"ok\n"))
        self.assertEqual(headers["X-Content-Type-Options"], "nosniff")
        self.assertIn("frame-ancestors 'none'", headers["Content-Security-Policy"])
        for token in (None, "pf_" + "0" * 40, "not-a-token"):
            status, headers, body = self.request("GET", "/api/v1/runs", token=token)
            self.assertEqual(status, 401, token)
            self.assertEqual(json.loads(body)["code"], "unauthenticated")
            self.assertIn("Bearer", headers["WWW-Authenticate"])
        # Forged identity headers prove nothing.
        status, _, _ = self.request("GET", "/api/v1/runs",
                                    headers={"Cf-Access-Authenticated-User-Email": "a@b.c"})
        self.assertEqual(status, 401)

    def test_runs_are_listed_and_shown_with_their_tasks(self):
        status, _, body = self.request("GET", "/api/v1/runs", token=self.token)
        self.assertEqual(status, 200)
        runs = json.loads(body)["runs"]
        self.assertEqual([r["id"] for r in runs], [self.run_id_done])
        self.assertEqual(runs[0]["state"], "success")
        status, _, body = self.request("GET", f"/api/v1/runs/{self.run_id_done}", token=self.token)
        self.assertEqual(status, 200)
        run = json.loads(body)
        self.assertEqual(run["tasks"][0]["task_id"], "hello")
        self.assertEqual(run["tasks"][0]["outputs"], {"answer": "42"})
        status, _, body = self.request("GET", "/api/v1/runs/nope", token=self.token)
        self.assertEqual((status, json.loads(body)["code"]), (404, "not_found"))
        status, _, body = self.request("GET", "/api/v1/runs?limit=0", token=self.token)
        self.assertEqual(status, 400)

    def test_a_revoked_token_stops_working_at_once(self):
        self.assertEqual(self.request("GET", "/api/v1/runs", token=self.token)[0], 200)
        self.podflow("token", "revoke", self.token_id, expect=0)
        self.assertEqual(self.request("GET", "/api/v1/runs", token=self.token)[0], 401)

    def test_unknown_hosts_are_refused_and_allowed_ones_answered(self):
        status, _, body = self.request("GET", "/api/v1/runs", token=self.token,
                                       host="evil.example.net")
        self.assertEqual((status, json.loads(body)["code"]), (421, "misdirected_request"))
        status, _, _ = self.request("GET", "/api/v1/runs", token=self.token,
                                    host="podflow.example.com")
        self.assertEqual(status, 200)

    def test_oversized_bodies_and_slow_clients_are_cut_off(self):
        status, _, body = self.request("POST", "/api/v1/runs", token=self.token,
                                       body=b"x" * (2 * 1024 * 1024))
        self.assertEqual((status, json.loads(body)["code"]), (413, "payload_too_large"))
        status, _, _ = self.request("GET", "/api/v1/runs", token=self.token,
                                    headers={"X-Big": "y" * 20000})
        self.assertEqual(status, 431)
        # A request that never finishes its headers is dropped, not waited on forever.
        slow = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        began = time.monotonic()
        self.assertEqual(slow.recv(1024), b"")  # closed by the server
        self.assertLess(time.monotonic() - began, 20)
        slow.close()

    def test_sigterm_stops_the_server_cleanly(self):
        self.server.send_signal(signal.SIGTERM)
        stdout, _ = self.server.communicate(timeout=DEADLINE)
        self.assertEqual(self.server.returncode, 0)
        self.assertIn("terminate received; stopping", stdout)
