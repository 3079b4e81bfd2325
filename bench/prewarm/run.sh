#!/usr/bin/env bash
# Pre-warming benchmark: the 126 MB test image onto 8 local containerd nodes with an
# ImagePullJob of parallelism 8 (one `slipway serve`, one `slipway agent --server` per node),
# against the same 8 pulls started by hand at once with `ctr images pull`, and one pull alone,
# in the same run; plus the bytes the registry served for the job (its access log) against the
# image's size × 8. Every pull starts from a node without the image's content.
#
#   bench/prewarm/run.sh [ROUNDS]        # SLIPWAY_BIN=path/to/slipway (default: target/release)
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS="${1:-3}"
NODES=8
BIN="${SLIPWAY_BIN:-${CARGO_TARGET_DIR:-target}/release/slipway}"
DIR=/tmp/slipway-containerd
LOG=/tmp/slipway-docker/registry.log
IMAGE=127.0.0.1:5000/slipway-test/big:latest
REPO=${IMAGE%:*}
[ -x "$BIN" ] || { echo "no slipway binary at $BIN (cargo build --release -p slipway, or SLIPWAY_BIN)" >&2; exit 2; }

bash scripts/docker-env.sh >/dev/null
SLIPWAY_CONTAINERD_NODES=$NODES bash scripts/containerd-env.sh >/dev/null
# The tests take the same locks: nobody else pulls onto these nodes meanwhile.
for n in $(seq 1 $NODES); do
  exec {fd}>"$DIR/node-$n/test.lock"
  flock "$fd"
done

ctr_() { local n=$1; shift; ctr --address "$DIR/node-$n/containerd.sock" -n k8s.io "$@"; }
now() { date +%s.%N; }
# Removes the image and the image-id name CRI adds, so containerd drops its content.
forget() {
  local n=$1 digests
  for l in $(ctr_ "$n" leases ls -q); do ctr_ "$n" leases rm "$l" >/dev/null; done
  digests=$(ctr_ "$n" images ls | awk -v r="$REPO" 'index($1, r ":") == 1 || index($1, r "@") == 1 {print $3}' | sort -u)
  for d in $digests; do
    for ref in $(ctr_ "$n" images ls | awk -v d="$d" '$3 == d {print $1}'); do
      ctr_ "$n" images rm --sync "$ref" >/dev/null
    done
  done
}
forget_all() { for n in $(seq 1 $NODES); do forget "$n"; done; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

SLIPWAY_HOME="$work/home" "$BIN" serve --listen 127.0.0.1:0 2>"$work/serve.log" >/dev/null &
pids+=($!)
for _ in $(seq 1 100); do grep -q "serving the slipway API on" "$work/serve.log" && break; sleep 0.1; done
URL=$(grep -o 'serving the slipway API on http://[^ ]*' "$work/serve.log" | sed 's/.* on //')
TOKEN=$(grep -o 'slw_[0-9a-f]*' "$work/serve.log" | head -1)
export SLIPWAY_SERVER=$URL SLIPWAY_TOKEN=$TOKEN SLIPWAY_HOME="$work/home"
for n in $(seq 1 $NODES); do
  "$BIN" agent --node "node-$n" --cri-endpoint "unix://$DIR/node-$n/containerd.sock" \
    --max-concurrent-pulls 2 >"$work/agent-$n.log" 2>&1 &
  pids+=($!)
done
sleep 2

# Bytes the registry answered GETs of the image's manifests and blobs with, from log offset $1.
served() {
  tail -c +"$(($1 + 1))" "$LOG" | awk -v p="GET /v2/${REPO#*/}/" \
    'index($0, p) && $9 == 200 {s += $10} END {printf "%d\n", s}'
}
# The image as the registry serves it: manifest, config and layers (compressed).
size=$(curl -sf -H "Accept: application/vnd.docker.distribution.manifest.v2+json" \
  "http://127.0.0.1:5000/v2/${REPO#*/}/manifests/${IMAGE##*:}" | python3 -c '
import json, sys
raw = sys.stdin.buffer.read(); m = json.loads(raw)
print(len(raw) + m["config"]["size"] + sum(l["size"] for l in m["layers"]))')

echo "# $(date -u +%FT%TZ) $(nproc) cores, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "round alone_s hand8_s job8_s job_pull_span_s job_bytes"
for r in $(seq 1 "$ROUNDS"); do
  forget_all
  t0=$(now); ctr_ 1 images pull --plain-http "$IMAGE" >/dev/null; t1=$(now)
  alone=$(echo "$t1 - $t0" | bc)

  forget_all
  t0=$(now)
  hp=()
  for n in $(seq 1 $NODES); do ctr_ "$n" images pull --plain-http "$IMAGE" >/dev/null & hp+=($!); done
  for p in "${hp[@]}"; do wait "$p"; done
  t1=$(now)
  hand=$(echo "$t1 - $t0" | bc)

  forget_all
  offset=$(stat -c %s "$LOG")
  t0=$(now)
  out=$("$BIN" prewarm "$IMAGE" --parallelism $NODES --wait)
  t1=$(now)
  job=$(echo "$t1 - $t0" | bc)
  name=$(echo "$out" | sed -n 's#^imagepulljob.apps.kruise.io/\(.*\) created$#\1#p')
  echo "$out" | tail -1 | grep -q "$NODES of $NODES node(s) succeeded" || { echo "job failed: $out" >&2; exit 1; }
  span=$(curl -sf -H "Authorization: Bearer $TOKEN" "$URL/apis/apps.kruise.io/v1alpha1/nodeimages" | python3 -c '
import json, sys, datetime
t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
starts, ends = [], []
for ni in json.load(sys.stdin)["items"]:
    for img in ni.get("status", {}).get("imageStatuses", {}).values():
        for tag in img["tags"]:
            if tag.get("startTime") and tag.get("completionTime"):
                starts.append(t(tag["startTime"])); ends.append(t(tag["completionTime"]))
print(f"{max(ends) - min(starts):.2f}")')
  sleep 1
  bytes=$(served "$offset")
  curl -sf -X DELETE -H "Authorization: Bearer $TOKEN" \
    "$URL/apis/apps.kruise.io/v1alpha1/namespaces/default/imagepulljobs/$name" >/dev/null
  sleep 2
  printf "%s %.2f %.2f %.2f %s %s\n" "$r" "$alone" "$hand" "$job" "$span" "$bytes"
done
echo "# image as served: $size bytes, x $NODES = $((size * NODES)); load after: $(cut -d' ' -f1-3 /proc/loadavg)"
