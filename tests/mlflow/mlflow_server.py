#!/usr/bin/env python3
"""A real MLflow tracking server for the tests: `start STATE` and `stop STATE`.

start: makes sure the checkout's .venv/ has the pinned mlflow (pip from PyPI on first use), starts
`mlflow server` on a free loopback port with a SQLite backend in a temporary folder, waits for
/health, and writes {"url", "pid", "dir"} to STATE. stop: ends the server's process group and removes
the folder. CTest runs these as the setup and cleanup fixtures of every test that needs MLflow.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
REQUIREMENTS = os.path.join(HERE, "requirements.txt")
VENV = os.path.join(ROOT, ".venv")
STARTUP_SECONDS = 180


def ensure_venv():
    """Installs the pinned requirements once; a changed requirements file installs again."""
    with open(REQUIREMENTS) as f:
        wanted = f.read()
    marker = os.path.join(VENV, "podflow-mlflow-requirements.txt")
    if os.path.exists(marker):
        with open(marker) as f:
            if f.read() == wanted:
                return
    if not os.path.exists(os.path.join(VENV, "bin", "python")):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "--quiet",
                    "--disable-pip-version-check", "-r", REQUIREMENTS], check=True)
    with open(marker, "w") as f:
        f.write(wanted)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(state_path):
    ensure_venv()
    folder = tempfile.mkdtemp(prefix="podflow-mlflow-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(os.path.join(folder, "server.log"), "w")
    server = subprocess.Popen(
        [os.path.join(VENV, "bin", "mlflow"), "server",
         "--backend-store-uri", f"sqlite:///{folder}/mlflow.db",
         "--artifacts-destination", os.path.join(folder, "artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    began = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() - began > STARTUP_SECONDS:
            server.kill()
            with open(os.path.join(folder, "server.log")) as f:
                sys.exit(f"mlflow server did not come up on {url}:\n{f.read()[-4000:]}")
        time.sleep(0.25)
    with open(state_path, "w") as f:
        json.dump({"url": url, "pid": server.pid, "dir": folder}, f)
    print(f"mlflow serving {url} after {time.monotonic() - began:.1f} s")


def stop(state_path):
    try:
        with open(state_path) as f:
            state = json.load(f)
    except FileNotFoundError:
        return
    try:
        os.killpg(state["pid"], signal.SIGTERM)
        for _ in range(100):
            os.killpg(state["pid"], 0)
            time.sleep(0.05)
        os.killpg(state["pid"], signal.SIGKILL)
    except ProcessLookupError:
        pass
    shutil.rmtree(state["dir"], ignore_errors=True)
    os.remove(state_path)


if __name__ == "__main__":
    {"start": start, "stop": stop}[sys.argv[1]](sys.argv[2])
