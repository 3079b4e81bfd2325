#!/usr/bin/env bash
# The README's first command: runs the sample pipeline on the host executor with the embedded
# store, after installing the one build tool a fresh Debian machine lacks (protoc: the CRI and
# containerd API bindings of the pre-warming agent are generated when slipway is built).
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v protoc >/dev/null; then
  echo "installing: protobuf-compiler"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >/dev/null
fi
exec cargo run --release -p slipway -- run -f examples/hello-pipeline.yaml --logs "$@"
