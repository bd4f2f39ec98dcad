#!/usr/bin/env python3
"""One podflow engine watching 1,000 pods at once on `podflow runpod-sim` (1 s poll).

Runs the real binary on a generated workflow (create -> wait -> terminate per pod) and, while every
pod is RUNNING, samples the engine's CPU time and resident memory from /proc and the simulator's
request counts. Two cases in one invocation: status polling only (`follow_logs: false`), and polling
plus one log stream per pod (the default). Prints figures; never passes or fails.

Usage: bench/watch_pods.py PODFLOW_BINARY [--pods N] [--window SECONDS]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

KEY = "bench-key-0123456789"


def sim_script(run_seconds):
    return f"""\
time_scale: 1
gpu_types:
  - id: NVIDIA A40
    name: A40
    pool: AMPERE_48
    memory_gb: 48
    max_count: 8
    price: {{secure: 0.44, community: 0.35}}
    spot_price: {{secure: 0.25, community: 0.20}}
    capacity: true
pod:
  provision_seconds: 1
  start_seconds: 1
  line_interval_seconds: 5
  run_seconds: {run_seconds}
  on_exit: stop_pod
  lines:
    - podflow.metric name=loss value=0.9 step=1
    - podflow.metric name=loss value=0.5 step=2
"""


def workflow(pods, follow_logs):
    lines = ["tasks:"]
    for i in range(pods):
        lines += [
            f"  c{i}:",
            "    operator: runpod.create",
            "    retries: 3",
            "    retry_delay: 1s",
            "    with: {image: img, gpu_type: NVIDIA A40}",
            f"  w{i}:",
            "    operator: runpod.wait",
            f"    depends: [c{i}]",
            "    with:",
            f"      pod_id: \"{{{{ tasks.c{i}.outputs.pod_id }}}}\"",
            "      poll_interval: 1s",
            f"      follow_logs: {'true' if follow_logs else 'false'}",
            f"  t{i}:",
            "    operator: runpod.terminate",
            f"    depends: [w{i}]",
            "    trigger_rule: all_done",
            f"    with: {{task: c{i}}}",
        ]
    return "\n".join(lines) + "\n"


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kib(pid):
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def state(url):
    with urllib.request.urlopen(url + "/__sim/state", timeout=30) as response:
        return json.load(response)


def one_case(podflow, pods, window, follow_logs):
    home = tempfile.mkdtemp(prefix="podflow-watch-")
    try:
        with open(os.path.join(home, "sim.yaml"), "w") as f:
            # Long enough that every pod is still running when the window closes.
            f.write(sim_script(run_seconds=window + 90))
        wf = os.path.join(home, "watch.yaml")
        with open(wf, "w") as f:
            f.write(workflow(pods, follow_logs))
        env = dict(os.environ, PODFLOW_HOME=os.path.join(home, "data"))
        sim = subprocess.Popen([podflow, "runpod-sim", "--listen", "127.0.0.1:0", "--script",
                                os.path.join(home, "sim.yaml"), "--api-key", KEY],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        url = re.match(r"listening (\S+)", sim.stdout.readline()).group(1)
        env.update(RUNPOD_API_KEY=KEY, RUNPOD_REST_URL=url, RUNPOD_GRAPHQL_URL=url + "/graphql")
        began = time.monotonic()
        run = subprocess.Popen([podflow, "run", wf], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        try:
            # Every pod running and every wait task subscribed (a single-pod GET or a list call).
            while True:
                s = state(url)
                running = sum(1 for p in s["pods"] if p["status"] == "RUNNING")
                if running >= pods:
                    break
                if run.poll() is not None:
                    raise SystemExit(f"podflow run ended early ({run.returncode})")
                if time.monotonic() - began > 300:
                    raise SystemExit(f"only {running} of {pods} pods running after 300 s")
                time.sleep(0.5)
            ramp = time.monotonic() - began
            ramp_cpu = cpu_seconds(run.pid)
            time.sleep(3)  # let the wait tasks settle onto the shared schedule
            counts0 = state(url)["request_counts"]
            cpu0, t0 = cpu_seconds(run.pid), time.monotonic()
            time.sleep(window)
            cpu1, t1 = cpu_seconds(run.pid), time.monotonic()
            counts1 = state(url)["request_counts"]
            mem = memory_kib(run.pid)
        finally:
            run.terminate()  # cancels the run: waits stop, terminate tasks end the pods
            try:
                run.wait(timeout=300)
                leftover = sum(1 for p in state(url)["pods"] if not p.get("terminatedAt"))
            finally:
                if run.poll() is None:
                    run.kill()
                sim.terminate()
                sim.wait(timeout=30)
        elapsed = t1 - t0

        def delta(route):
            return counts1.get(route, 0) - counts0.get(route, 0)

        per_pod = delta("GET /v2/pods/{id}")
        others = sum(counts1.values()) - sum(counts0.values()) - delta("GET /v2/pods") - per_pod
        label = "poll + log stream per pod" if follow_logs else "poll only"
        print(f"watch {pods} pods, {label}: {ramp:.1f} s to all RUNNING "
              f"(engine CPU {ramp_cpu:.1f} s during it); over {elapsed:.1f} s: "
              f"engine CPU {100 * (cpu1 - cpu0) / elapsed:.1f}% of one core, "
              f"RSS {mem['VmRSS'] / 1024:.1f} MiB (peak {mem['VmHWM'] / 1024:.1f} MiB), "
              f"{delta('GET /v2/pods') / elapsed:.2f} list calls/s, "
              f"{per_pod} single-pod GETs, {others} other requests, "
              f"{counts1.get('GET /v2/pods/{id}/logs', 0)} log streams opened in all; "
              f"pods left running after cancel: {leftover}", flush=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("podflow")
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--window", type=int, default=20)
    args = parser.parse_args()
    for follow_logs in (False, True):
        one_case(args.podflow, args.pods, args.window, follow_logs)


if __name__ == "__main__":
    main()
