#!/usr/bin/env bash
# Runs slipway's benchmarks, each against a baseline measured in the same run.
# Results go to stdout; docs/benchmarks.md records them with the date.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/slipway/target}"
cargo build --release -p slipway -q
S="$CARGO_TARGET_DIR/release/slipway"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 bench/gen.py "$work"
export SLIPWAY_HOME="$work/home"
# `bench/run.sh docker` runs only the Docker executor's benchmarks.
only="${1:-all}"

if [ "$only" = all ]; then
echo "== (a) 200 one-step tasks in a chain vs 200 x 'sh -c true'"
hyperfine -N --warmup 2 --runs 15 --export-json "$work/a.json" \
  "$S run -f $work/chain-200.yaml --plain" \
  "env SLIPWAY_HOST_SANDBOX=0 $S run -f $work/chain-200.yaml --plain" \
  "sh -c 'for i in \$(seq 200); do sh -c true; done'" >/dev/null
python3 - "$work/a.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
base = r[2]["median"]
for name, x in (("sandboxed", r[0]), ("no namespaces", r[1])):
    print(f"{name:14} median {x['median']*1000:7.1f} ms  loop {base*1000:6.1f} ms  overhead per step {(x['median']-base)/200*1000:.2f} ms")
PY

echo "== (b) 10,000-task DAG, no-op executor"
cargo bench -q -p slipway-engine --bench dag 2>/dev/null | grep -A1 "10k_tasks" | tail -1 || true
dag=$(ls -t "$CARGO_TARGET_DIR"/release/deps/dag-* | grep -v '\.d$' | head -1)
DAG_ONCE=1 /usr/bin/time -f "peak RSS %M KB, wall %e s" "$dag"

echo "== (c) 10-task chain passing a 1 MiB result vs a 1-byte result"
hyperfine -N --warmup 1 --runs 10 --export-json "$work/c.json" \
  "$S run -f $work/relay-1mib.yaml --plain" \
  "$S run -f $work/relay-1b.yaml --plain" >/dev/null
python3 - "$work/c.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
big, small = r[0]["median"], r[1]["median"]
print(f"1 MiB relay {big*1000:.1f} ms, 1 B relay {small*1000:.1f} ms, ratio {big/small:.2f}, extra per hop {(big-small)/10*1000:.2f} ms")
PY
fi

# (d) and (e): the Docker executor against plain `docker run --rm` on the same private daemon.
config=$(./scripts/docker-env.sh | tail -1)
export DOCKER_HOST=unix:///tmp/slipway-docker/docker.sock
IMG=127.0.0.1:5000/library/busybox:latest
docker pull -q "$IMG" >/dev/null
cat >"$work/five.yaml" <<EOF
apiVersion: tekton.dev/v1
kind: TaskRun
metadata:
  generateName: five-
spec:
  taskSpec:
    steps:
$(for i in 1 2 3 4 5; do printf '    - name: s%s\n      image: %s\n      imagePullPolicy: IfNotPresent\n      command: [echo, step-%s]\n' $i "$IMG" $i; done)
EOF
echo "== (d) 5-step TaskRun vs 5 sequential 'docker run --rm' of the same commands"
hyperfine -N --warmup 2 --runs 15 --export-json "$work/d.json" \
  "$S run -f $work/five.yaml --plain --executor docker --config $config" \
  "sh -c 'for i in 1 2 3 4 5; do docker run --rm --network none $IMG echo step-\$i; done'" >/dev/null
python3 - "$work/d.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
s, d = r[0]["median"], r[1]["median"]
print(f"slipway {s*1000:.0f} ms, docker run x5 {d*1000:.0f} ms, ratio {s/d:.2f} (goal <= 1.10)")
PY

echo "== (e) time to the first step's first output line, image present"
python3 - "$S" "$config" "$IMG" "$work" <<'PY'
import os, statistics, subprocess, sys, time
slipway, config, img, work = sys.argv[1:5]
with open(f"{work}/first.yaml", "w") as f:
    f.write(f"""apiVersion: tekton.dev/v1
kind: TaskRun
metadata:
  generateName: first-
spec:
  taskSpec:
    steps:
    - name: hello
      image: {img}
      imagePullPolicy: IfNotPresent
      command: [echo, first-line]
""")
def first_line(cmd, needle):
    t = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in p.stdout:
        if needle in line:
            took = time.monotonic() - t
            break
    p.wait()
    return took
runs = {"slipway": [], "docker run": []}
for _ in range(15):
    runs["slipway"].append(first_line([slipway, "run", "-f", f"{work}/first.yaml", "--plain", "--logs",
                                       "--executor", "docker", "--config", config], "first-line"))
    runs["docker run"].append(first_line(["docker", "run", "--rm", "--network", "none", img, "echo", "first-line"], "first-line"))
s, d = statistics.median(runs["slipway"]), statistics.median(runs["docker run"])
print(f"first output: slipway {s*1000:.0f} ms, docker run {d*1000:.0f} ms (medians of 15), ratio {s/d:.2f}")
PY
