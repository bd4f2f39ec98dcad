"""Shared pieces of the end-to-end tests: run the real podflow binary in a private PODFLOW_HOME."""

import os
import re
import subprocess
import tempfile
import textwrap
import unittest

PODFLOW = os.environ.get("PODFLOW_BIN", "build/app/podflow")
DEADLINE = 60  # seconds any single podflow command may take in these tests


class PodflowTestCase(unittest.TestCase):
    """A temporary folder and PODFLOW_HOME per test, and helpers to write workflows and run podflow."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="podflow-e2e-")
        self.dir = self.tmp.name
        self.env = dict(os.environ)
        self.env["PODFLOW_HOME"] = os.path.join(self.dir, "home")

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))
        return path

    def podflow(self, *args, expect=None):
        proc = subprocess.run([PODFLOW, *args], env=self.env, capture_output=True, text=True,
                              timeout=DEADLINE)
        if expect is not None and proc.returncode != expect:
            self.fail(f"podflow {' '.join(args)} exited {proc.returncode}, expected {expect}\n"
                      f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def run_id(self, output):
        match = re.search(r"^run (\S+) started", output, re.M)
        self.assertIsNotNone(match, output)
        return match.group(1)

    def task_row(self, show_output, task):
        """The words of `task`'s row in a `podflow runs show` table."""
        for line in show_output.splitlines():
            parts = line.split()
            if parts and parts[0] == task:
                return parts
        self.fail(f"task {task} not in:\n{show_output}")
