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
