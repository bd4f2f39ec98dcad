#!/usr/bin/env python3
"""podflow's reference training program, the code a RunPod pod runs in runpod_training.yaml.

Logistic regression trained by mini-batch gradient descent on a synthetic, seeded data set (NumPy).
It speaks podflow's completion protocol (DESIGN.md section 6):

    podflow.metric name=training_accuracy value=<v> step=<epoch>   once per epoch
    podflow.metric name=validation_loss value=<v> step=<epoch>     once per epoch
    podflow.done status=ok exit=0                                  last line on stdout
    podflow.done status=failed exit=<n>                            instead, when training failed

and then stops its own pod (REST v2 `POST /v2/pods/{id}/action` with `{"action": "stop"}`), because
RunPod restarts a container that merely exits. Environment and details: README.md next to this file.
"""

import json
import math
import os
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

DEFAULT_REST_URL = "https://api.runpod.io"
STOP_TIMEOUT_SECONDS = 30
STOP_ATTEMPTS = 5
RETRYABLE_STATUSES = {408, 429, 500, 502, 503, 504}
EXIT_FAILED = 1  # training raised
EXIT_CONFIG = 2  # a hyperparameter in the environment is not usable


class ConfigError(ValueError):
    """A hyperparameter from the environment that cannot be used."""


class TrainingFailed(RuntimeError):
    """Training cannot go on (diverged, or TRAIN_FAIL asked for a failure)."""


def log(message):
    """Progress and diagnostics go to stderr, so the done line stays the last line on stdout."""
    print(f"train: {message}", file=sys.stderr, flush=True)


def emit(line):
    print(line, flush=True)


def env_number(name, default, kind, minimum):
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not a valid {kind.__name__}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name}={text!r} must be finite")
    if value < minimum or (kind is float and value <= 0):
        raise ConfigError(f"{name}={text!r} must be {'> 0' if kind is float else f'>= {minimum}'}")
    return value


def read_config():
    return {
        # The program's own default suits this toy problem; the reference workflow always passes its
        # `learning_rate` param (default 5e-05, a fine-tuning rate), which is used as given.
        "learning_rate": env_number("LEARNING_RATE", 0.05, float, 0.0),
        "batch_size": env_number("BATCH_SIZE", 16, int, 1),
        "epochs": env_number("EPOCHS", 5, int, 1),
        "seed": env_number("SEED", 0, int, 0),
        "samples": env_number("SAMPLES", 4000, int, 10),
        "features": env_number("FEATURES", 12, int, 1),
        "fail": os.environ.get("TRAIN_FAIL", "").strip() not in ("", "0", "false", "no"),
    }


def make_dataset(rng, samples, features):
    """Correlated Gaussian features and labels drawn from a noisy linear-logistic rule.

    The correlation makes plain gradient descent take a few epochs to find the right direction, and
    the label noise keeps the best reachable accuracy below 1 (around 0.9).
    """
    mixing = rng.normal(size=(features, features)) / math.sqrt(features)
    scales = rng.uniform(0.3, 3.0, size=features)
    x = (rng.normal(size=(samples, features)) @ mixing) * scales
    true_w = rng.normal(size=features)
    true_b = rng.normal() * 0.5
    logits = x @ true_w + true_b
    logits *= 4.0 / (np.std(logits) + 1e-12)
    y = (rng.random(samples) < sigmoid(logits)).astype(np.float64)
    split = int(samples * 0.8)
    x_train, x_val = x[:split], x[split:]
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-12
    return (x_train - mean) / std, y[:split], (x_val - mean) / std, y[split:]


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500.0, 500.0)))


def log_loss(p, y):
    p = np.clip(p, 1e-12, 1.0 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)))


def format_value(value):
    return f"{value:.6g}"


def train(config):
    rng = np.random.default_rng(config["seed"])
    x_train, y_train, x_val, y_val = make_dataset(rng, config["samples"], config["features"])
    log(f"logistic regression on {len(y_train)} training and {len(y_val)} validation samples, "
        f"{x_train.shape[1]} features; learning_rate={config['learning_rate']} "
        f"batch_size={config['batch_size']} epochs={config['epochs']} seed={config['seed']}")
    w = np.zeros(x_train.shape[1])
    b = 0.0
    lr, batch = config["learning_rate"], config["batch_size"]
    for epoch in range(1, config["epochs"] + 1):
        order = rng.permutation(len(y_train))
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            error = sigmoid(x_train[idx] @ w + b) - y_train[idx]
            w -= lr * (x_train[idx].T @ error) / len(idx)
            b -= lr * float(np.mean(error))
        if not (np.all(np.isfinite(w)) and math.isfinite(b)):
            raise TrainingFailed(f"the weights diverged in epoch {epoch}; lower LEARNING_RATE")
        accuracy = float(np.mean((sigmoid(x_train @ w + b) >= 0.5) == (y_train == 1.0)))
        val_loss = log_loss(sigmoid(x_val @ w + b), y_val)
        emit(f"podflow.metric name=training_accuracy value={format_value(accuracy)} step={epoch}")
        emit(f"podflow.metric name=validation_loss value={format_value(val_loss)} step={epoch}")
        if config["fail"]:
            raise TrainingFailed(f"TRAIN_FAIL is set: failing on purpose after epoch {epoch}")


def redact(text, secret):
    return text.replace(secret, "***") if secret else text


def retry_after(error):
    """Seconds from a Retry-After header in seconds form, if any (capped)."""
    value = error.headers.get("Retry-After") if error.headers else None
    try:
        return min(max(float(value), 0.0), 60.0) if value is not None else None
    except ValueError:
        return None


def stop_own_pod():
    """Ask RunPod to stop the pod this program runs on. True when the pod is stopped or stopping.

    On a real pod the stop ends this container, possibly before the answer arrives: that is fine,
    the done line is already in the log.
    """
    pod_id = os.environ.get("RUNPOD_POD_ID", "").strip()
    key = os.environ.get("RUNPOD_API_KEY", "").strip()
    if not pod_id:
        log("RUNPOD_POD_ID is not set (not on a RunPod pod): nothing to stop")
        return True
    if not key:
        log(f"cannot stop pod {pod_id}: RUNPOD_API_KEY is not set; podflow's runpod.wait will stop "
            "it after its done_grace")
        return False
    base = os.environ.get("RUNPOD_REST_URL", "").strip() or DEFAULT_REST_URL
    url = f"{base.rstrip('/')}/v2/pods/{urllib.parse.quote(pod_id, safe='')}/action"
    body = json.dumps({"action": "stop"}).encode()
    delay = 1.0
    for attempt in range(1, STOP_ATTEMPTS + 1):
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Authorization": f"Bearer {key}",
        })
        wait = delay
        try:
            with urllib.request.urlopen(request, timeout=STOP_TIMEOUT_SECONDS) as response:
                response.read()
            log(f"asked RunPod to stop pod {pod_id}")
            return True
        except urllib.error.HTTPError as error:
            detail = redact(error.read().decode("utf-8", "replace").strip()[:500], key)
            if error.code == 409:
                # The pod is not running any more (stopped by podflow or a person): nothing to do.
                log(f"pod {pod_id} is already stopped or stopping (409: {detail})")
                return True
            if error.code not in RETRYABLE_STATUSES:
                log(f"could not stop pod {pod_id}: HTTP {error.code} {detail}; podflow's "
                    "runpod.wait will stop it after its done_grace")
                return False
            problem = f"HTTP {error.code} {detail}"
            wait = retry_after(error) or delay
        except (urllib.error.URLError, OSError) as error:
            problem = redact(str(getattr(error, "reason", error)), key)
        if attempt == STOP_ATTEMPTS:
            log(f"could not stop pod {pod_id} after {STOP_ATTEMPTS} attempts ({problem}); "
                "podflow's runpod.wait will stop it after its done_grace")
            return False
        log(f"stopping pod {pod_id} failed ({problem}); retrying in {wait:g}s "
            f"(attempt {attempt + 1}/{STOP_ATTEMPTS})")
        time.sleep(wait)
        delay = min(delay * 2, 30.0)
    return False


def main():
    try:
        train(read_config())
        code = 0
    except ConfigError as error:
        log(f"error: {error}")
        code = EXIT_CONFIG
    except Exception:  # noqa: BLE001 - every failure must still end in a done line and a stop
        key = os.environ.get("RUNPOD_API_KEY", "").strip()
        log("training failed:\n" + redact(traceback.format_exc(), key).rstrip())
        code = EXIT_FAILED
    emit(f"podflow.done status={'ok' if code == 0 else 'failed'} exit={code}")
    stop_own_pod()
    return code


if __name__ == "__main__":
    sys.exit(main())
