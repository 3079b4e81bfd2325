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

# (f): `bench/run.sh api` runs only the API load benchmark. 200 finished runs in the history, 50
# live runs printing a line every 100 ms; the same open-loop rate against /healthz alone (the
# HTTP stack's floor, same background) and against a mix of reads with 50 log followers.
if [ "$only" = all ] || [ "$only" = api ]; then
echo "== (f) API latency: 200 req/s of mixed reads + 50 SSE log followers vs 200 req/s of /healthz"
cargo build --release -p slipway-api-load -q
L="$CARGO_TARGET_DIR/release/slipway-api-load"
api="$work/api"
mkdir -p "$api"
cat >"$api/seed.yaml" <<'EOF'
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata:
  generateName: seed-
spec:
  pipelineSpec:
    tasks:
      - name: build
        taskSpec:
          steps:
            - name: compile
              image: busybox
              script: for i in $(seq 20); do echo "compiling unit $i"; done
      - name: test
        runAfter: [build]
        taskSpec:
          steps:
            - name: unit
              image: busybox
              script: for i in $(seq 20); do echo "test $i ok"; done
EOF
# Longer than the two measured phases together; the server stops them at the end.
cat >"$api/live.yaml" <<'EOF'
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata:
  generateName: live-
spec:
  pipelineSpec:
    tasks:
      - name: tail
        taskSpec:
          steps:
            - name: print
              image: busybox
              script: |
                i=0
                while [ $i -lt 3000 ]; do echo "live line $i"; i=$((i+1)); sleep 0.1; done
EOF
# 150 two-task runs and 50 of the five-TaskRun example, interleaved.
for i in $(seq 200); do
  f="$api/seed.yaml"; [ $((i % 4)) = 0 ] && f=examples/hello-pipeline.yaml
  SLIPWAY_HOME="$api/home" "$S" run -f "$f" --plain >/dev/null
done
SLIPWAY_HOME="$api/home" "$S" serve --listen 127.0.0.1:0 --max-runs 64 2>"$api/serve.log" &
spid=$!
# SIGTERM stops the server's running runs too.
trap 'kill $spid 2>/dev/null || true; wait $spid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q '^serving' "$api/serve.log" && break; sleep 0.1; done
url=$(grep '^serving' "$api/serve.log" | grep -o 'http://[0-9.:]*')
# The admin token of the first start, for the CLI and the load generator (both read SLIPWAY_TOKEN).
SLIPWAY_TOKEN=$(grep -o '#token=slw_[0-9a-f]*' "$api/serve.log" | cut -d= -f2)
export SLIPWAY_TOKEN
load() { "$L" --url "$url" --rate 200 --duration 30s --warmup 3s --server-pid "$spid" "$@" | tee -a "$api/load.txt"; }
echo "-- /healthz, idle server"
load --followers 0 --mix healthz=1 --label healthz-idle
for i in $(seq 50); do "$S" --server "$url" run -f "$api/live.yaml" -d 2>/dev/null; done >"$api/live.names"
python3 - "$url" <<'PY'
import json, os, sys, time, urllib.request
for _ in range(100):
    req = urllib.request.Request(f"{sys.argv[1]}/apis/tekton.dev/v1/namespaces/default/pipelineruns",
                                 headers={"Authorization": f"Bearer {os.environ['SLIPWAY_TOKEN']}"})
    items = json.load(urllib.request.urlopen(req))["items"]
    running = [i for i in items if (i.get("status", {}).get("conditions") or [{}])[0].get("reason") == "Running"]
    if len(running) >= 50:
        break
    time.sleep(0.2)
print(f"{len(items)} runs in the history, {len(running)} running")
PY
echo "-- (baseline) /healthz, 50 live runs"
load --followers 0 --mix healthz=1 --label baseline
echo "-- mixed reads, 50 followers on the 50 live runs"
load --followers 50 --label mixed
echo "-- the same, the unpaginated run list (as the web UI asks) replaced by ?limit=20"
load --followers 50 --mix list20=30,get=30,taskruns=20,logs=15,tasks=5 --label mixed-paged
python3 - "$api/load.txt" <<'PY'
import json, sys
r = {}
for line in open(sys.argv[1]):
    if line.startswith("{"):
        j = json.loads(line)
        r[j["label"]] = j
b, m = r["baseline"]["overall"], r["mixed"]["overall"]
for k, j in r.items():
    print(f"{k:13} p50 {j['overall']['p50_ms']:6.2f} ms  p99 {j['overall']['p99_ms']:7.2f} ms  max {j['overall']['max_ms']:7.2f} ms  "
          f"errors {j['errors']}  machine busy {j['machine_busy_pct']}%  server {j['server_cpu_pct']}% of a core")
print(f"p99 mixed {m['p99_ms']} ms (goal < 50 ms) vs baseline {b['p99_ms']} ms: ratio {m['p99_ms'] / b['p99_ms']:.1f}")
print("mixed p99 per class: " + ", ".join(f"{k} {v['p99_ms']} ms" for k, v in r["mixed"]["classes"].items()))
s = r["mixed"]["sse"]
print(f"sse: {s['events']} log events ({s['events_per_s']}/s) on {s['connected']} followers, "
      f"line age p50 {s['lag']['p50_ms']} ms p99 {s['lag']['p99_ms']} ms; errors {r['mixed']['errors']}")
PY
kill "$spid"; wait "$spid" 2>/dev/null || true
trap 'rm -rf "$work"' EXIT
fi
if [ "$only" = api ]; then exit 0; fi

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
