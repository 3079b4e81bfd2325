#!/usr/bin/env bash
# Builds Slipway's own image (deploy/image/Containerfile) with `slipway build`: the binary
# (stripped), the loader and the libraries `ldd` names under /tekton/bin, the system's CA
# certificates, an empty sticky /tmp. Extra arguments go to `slipway build` (e.g. --no-push
# --tar-path out.tar, --mode unprivileged).
#
#   scripts/image.sh IMAGE [BUILD-ARGS...]      # SLIPWAY_BIN=path (default: the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: scripts/image.sh IMAGE [slipway build arguments...]" >&2; exit 2; }
IMAGE=$1; shift
BIN="${SLIPWAY_BIN:-${CARGO_TARGET_DIR:-target}/release/slipway}"
[ -x "$BIN" ] || { echo "no slipway binary at $BIN (cargo build --release -p slipway, or SLIPWAY_BIN)" >&2; exit 2; }

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/tekton/bin/lib" "$ctx/etc/ssl/certs" "$ctx/tmp"
chmod 1777 "$ctx/tmp"
strip -o "$ctx/tekton/bin/slipway" "$BIN" 2>/dev/null || cp "$BIN" "$ctx/tekton/bin/slipway"
for lib in $(ldd "$BIN" | grep -o '/[^ ]*\.so[^ ]*'); do
  case "$lib" in
    *ld-linux*) cp -L "$lib" "$ctx/tekton/bin/ld.so" ;;
    *) cp -L "$lib" "$ctx/tekton/bin/lib/" ;;
  esac
done
[ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$ctx/etc/ssl/certs/"
cp deploy/image/Containerfile "$ctx/Containerfile"
exec "$BIN" build -c "$ctx" -f "$ctx/Containerfile" -d "$IMAGE" "$@"
