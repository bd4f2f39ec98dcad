#!/usr/bin/env python3
"""The real `podflow run` on generated noop workflows: process start, YAML load, SQLite, console.

executor_bench times the executor alone; this times what a user waits for. Prints figures; never
passes or fails.

Usage: bench/run_binary.py PODFLOW_BINARY [--repeat N]
"""

import argparse
import os
import resource
import shutil
import subprocess
import tempfile
import time


def chain(n):
    lines = ["tasks:"]
    for i in range(n):
        lines.append(f"  t{i}: {{operator: noop" + (f", depends: [t{i - 1}]" if i else "") + "}")
    return "\n".join(lines) + "\n"


def fan(n):
    lines = ["tasks:", "  start: {operator: noop}"]
    for i in range(n):
        lines.append(f"  t{i}: {{operator: noop, depends: [start]}}")
    lines.append("  end:")
    lines.append("    operator: noop")
    lines.append("    depends: [" + ", ".join(f"t{i}" for i in range(n)) + "]")
    return "\n".join(lines) + "\n"


def run_once(podflow, workflow):
    home = tempfile.mkdtemp(prefix="podflow-bench-")
    try:
        path = os.path.join(home, "wf.yaml")
        with open(path, "w") as f:
            f.write(workflow)
        env = dict(os.environ, PODFLOW_HOME=os.path.join(home, "data"))
        began = time.monotonic()
        proc = subprocess.Popen([podflow, "run", path], env=env, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.monotonic() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"podflow run exited {proc.returncode}")
        return elapsed, usage.ru_maxrss / 1024
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("podflow")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for label, workflow in (("chain of 1,000 noop", chain(1000)),
                            ("fan-out/fan-in of 2,000 noop", fan(2000))):
        runs = sorted(run_once(args.podflow, workflow) for _ in range(args.repeat))
        walls = [wall for wall, _ in runs]
        peak = max(rss for _, rss in runs)
        print(f"podflow run, {label}: median {1000 * walls[len(walls) // 2]:.0f} ms, "
              f"min {1000 * walls[0]:.0f} ms over {args.repeat} runs (process start to exit, "
              f"stdout to /dev/null); peak RSS {peak:.1f} MiB", flush=True)


if __name__ == "__main__":
    main()
