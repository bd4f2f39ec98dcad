#!/usr/bin/env bash
# Runs every benchmark on a Release build and prints the figures recorded in bench/README.md.
# Usage: bench/run.sh BUILD_DIR
set -euo pipefail
build=${1:-build-release}
cd "$(dirname "$0")/.."

echo "== executor: noop DAGs, durable SQLite store vs in-memory store (same run)"
for shape in chain fan layered; do
  for store in sqlite memory; do
    "$build/bench/executor_bench" "$shape" "$store"
  done
done

echo "== loader"
"$build/bench/load_bench"

echo "== store"
"$build/bench/store_bench"

echo "== the real binary: podflow run on generated noop workflows"
python3 bench/run_binary.py "$build/app/podflow"

echo "== one engine watching 1,000 pods on podflow runpod-sim (1 s poll)"
python3 bench/watch_pods.py "$build/app/podflow"

echo "== idle podflow process (a run waiting on a sleeping shell task)"
home=$(mktemp -d)
cat > "$home/idle.yaml" <<'YAML'
tasks:
  wait:
    operator: shell
    with: {command: "sleep 2"}
YAML
PODFLOW_HOME="$home" "$build/app/podflow" run "$home/idle.yaml" > /dev/null &
pid=$!
sleep 1
echo "idle podflow run: $(grep VmRSS /proc/$pid/status | awk '{print $2, $3}') resident"
wait "$pid"
rm -rf "$home"
