#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine, installing what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# busybox: the host executor's `sh` inside steps (Tekton's alpine/busybox images use it; Debian's
# dash rejects their `[ a == b ]` and `[[ ]]`). procps: `ps` in a conformance example. git: samples.
# python3-yaml: the Kubernetes emulator the kubernetes executor is tested against.
missing=()
[ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || missing+=(busybox-static)
command -v ps >/dev/null || missing+=(procps)
command -v git >/dev/null || missing+=(git)
# The Kubernetes executor's tests run against ../shared/kube-emu, which reads YAML with PyYAML.
python3 -c 'import yaml' 2>/dev/null || missing+=(python3-yaml)
# The controller's tests create Tekton objects in the emulator with kubectl (Debian's package is
# kubernetes-client; `deploy/`'s kustomization needs kubectl's kustomize from 1.22 on).
command -v kubectl >/dev/null || missing+=(kubernetes-client)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi
if ! cargo deny --version >/dev/null 2>&1; then
  cargo install cargo-deny --locked
fi

# Builds are shared between clones of this machine when CI points here.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/slipway/target}"
export CARGO_TERM_COLOR=never

# The Docker executor's tests need a daemon and registries: installed and started here so the
# installs happen once, outside test time limits (the tests call it again; it is idempotent).
./scripts/docker-env.sh >/dev/null
# Image pre-warming's tests: containerd nodes with CRI on their own sockets (installs Debian's
# containerd, and protobuf-compiler, which the CRI bindings need at build time).
./scripts/containerd-env.sh >/dev/null
./scripts/ui-env.sh >/dev/null

cargo fmt --all -- --check
cargo deny check bans
cargo clippy --workspace --all-targets -- -D warnings
cargo nextest run --workspace --no-fail-fast
# Fuzz targets, bounded: ~20 s each (5 targets), in their own target directory (see fuzz.sh).
./scripts/fuzz.sh "${SLIPWAY_FUZZ_SECONDS:-20}"
