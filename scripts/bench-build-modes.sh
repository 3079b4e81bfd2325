#!/usr/bin/env bash
# Times `slipway build` of one context in both modes, without the cache:
#   privileged   on this machine (overlay mounts and runc; needs root),
#   unprivileged in a container of the test daemon without --privileged (Kaniko's way).
# Usage: scripts/bench-build-modes.sh CONTEXT_DIR [RUNS]   (SLIPWAY=path/to/slipway)
set -euo pipefail
ctx=$(realpath "${1:?context directory}")
runs=${2:-3}
bin=$(realpath "${SLIPWAY:-target/release/slipway}")
export DOCKER_HOST=${DOCKER_HOST:-unix:///tmp/slipway-docker/docker.sock}
image=127.0.0.1:5000/library/ubuntu:latest
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The container gets the binary, the libraries it links and CA certificates, as a builder
# image would carry them.
mkdir -p "$work/kit" "$work/out"
cp "$bin" "$work/kit/slipway"
for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do cp -L "$lib" "$work/kit/"; done
cp -L /etc/ssl/certs/ca-certificates.crt "$work/kit/"
now() { date +%s.%N; }
for i in $(seq "$runs"); do
  t0=$(now)
  "$bin" build --mode privileged --cache false --no-push -c "$ctx" \
    --cache-dir "$work/cache" --tar-path "$work/out/p.tar" 2>/dev/null
  t1=$(now)
  docker run --rm --network host -e SSL_CERT_FILE=/.slipway/ca-certificates.crt \
    -v "$work/kit:/.slipway:ro" -v "$ctx:/.ctx:ro" -v "$work/out:/.out" "$image" \
    /.slipway/ld-linux-x86-64.so.2 --library-path /.slipway /.slipway/slipway build \
    --mode unprivileged --cache false --no-push -c /.ctx --tar-path /.out/u.tar 2>/dev/null
  t2=$(now)
  printf 'run %d: privileged %.2fs, unprivileged %.2fs (container start included)\n' \
    "$i" "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)"
done
