#!/usr/bin/env bash
# Starts N containerd instances ("nodes") from Debian's containerd, each with its own root, state,
# sockets and CRI plugin, for the image pre-warming tests; pushes a large multi-layer test image
# to the plain loopback registry. Needs scripts/docker-env.sh (registries, Docker daemon) first.
# Idempotent: instances that answer are reused. Writes $DIR/nodes.env listing the sockets.
#
#   scripts/containerd-env.sh              # SLIPWAY_CONTAINERD_NODES=3 by default, up to 8
#   scripts/containerd-env.sh stop         # stops the instances it started
set -euo pipefail
cd "$(dirname "$0")/.."

# Short paths: unix socket paths are limited to 108 bytes. Apart from the Docker test daemon's
# own containerd (under /tmp/slipway-docker), so the two never share a socket or a root.
DIR="${SLIPWAY_CONTAINERD_DIR:-/tmp/slipway-containerd}"
NODES="${SLIPWAY_CONTAINERD_NODES:-3}"
PORT="${SLIPWAY_REGISTRY_PORT:-5000}"
AUTH_PORT="${SLIPWAY_AUTH_REGISTRY_PORT:-5001}"
FLAKY_PORT="${SLIPWAY_FLAKY_REGISTRY_PORT:-5002}"
DOCKER_DIR="${SLIPWAY_DOCKER_DIR:-/tmp/slipway-docker}"

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! [[ "$NODES" =~ ^[1-8]$ ]]; then
  echo "SLIPWAY_CONTAINERD_NODES must be 1 to 8, not '$NODES'" >&2
  exit 2
fi

stop() {
  for pidfile in "$DIR"/node-*/containerd.pid; do
    [ -f "$pidfile" ] && sudo_if_needed kill "$(cat "$pidfile")" 2>/dev/null || true
  done
}
if [ "${1:-}" = stop ]; then stop; exit 0; fi

missing=()
command -v containerd >/dev/null || missing+=(containerd)
command -v curl >/dev/null || missing+=(curl)
command -v flock >/dev/null || missing+=(util-linux)
# protoc: the CRI and containerd API bindings are generated at build time.
command -v protoc >/dev/null || missing+=(protobuf-compiler)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Debian's package enables a system containerd; ours never touch /run/containerd.
mkdir -p "$DIR"
# Test processes call this at once; one of them sets things up, the others wait for it.
exec 9>"$DIR/lock"
flock 9

wait_for() { # what, command...
  local what=$1; shift
  for _ in $(seq 1 150); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "$what did not come up; see $DIR/node-*/containerd.log" >&2
  return 1
}

# A unary gRPC call with an empty request, through curl: CRI's ListImages answers grpc-status 0
# only once the CRI plugin has loaded (ctr's `version` answers before that).
cri_list_images() { # socket
  curl -sS --max-time 5 --http2-prior-knowledge --unix-socket "$1" -o /dev/null -D - \
    -H 'content-type: application/grpc' -H 'te: trailers' \
    --data-binary @<(printf '\0\0\0\0\0') \
    http://localhost/runtime.v1.ImageService/ListImages | tr -d '\r' | grep -qx 'grpc-status: 0'
}

node_config() { # node directory
  local d=$1
  cat <<EOF
# Written by scripts/containerd-env.sh.
version = 2
root = "$d/root"
state = "$d/state"

[grpc]
  address = "$d/containerd.sock"

[ttrpc]
  address = "$d/containerd.sock.ttrpc"

[debug]
  address = "$d/debug.sock"
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"

[plugins."io.containerd.grpc.v1.cri"]
  # Pulls need no pod network: an empty CNI directory leaves the network "not ready", which
  # only matters to pod sandboxes.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  sandbox_image = "127.0.0.1:$PORT/library/busybox:latest"

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "$d/cni/bin"
  conf_dir = "$d/cni/net.d"

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"

# The loopback registries speak plain HTTP.
[plugins."io.containerd.grpc.v1.cri".registry.mirrors."127.0.0.1:$PORT"]
  endpoint = ["http://127.0.0.1:$PORT"]

[plugins."io.containerd.grpc.v1.cri".registry.mirrors."127.0.0.1:$AUTH_PORT"]
  endpoint = ["http://127.0.0.1:$AUTH_PORT"]

# A port tests open and close in front of the plain registry: a registry that goes away.
[plugins."io.containerd.grpc.v1.cri".registry.mirrors."127.0.0.1:$FLAKY_PORT"]
  endpoint = ["http://127.0.0.1:$FLAKY_PORT"]
EOF
}

launch_node() { # dir
  local d=$1
  local sock="$d/containerd.sock"
  # A dead instance leaves its pid file and sockets behind.
  if [ -f "$d/containerd.pid" ] && kill -0 "$(cat "$d/containerd.pid")" 2>/dev/null; then
    local old
    old=$(cat "$d/containerd.pid")
    sudo_if_needed kill "$old" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$old" 2>/dev/null || break; sleep 0.2; done
  fi
  mkdir -p "$d/cni/bin" "$d/cni/net.d"
  rm -f "$sock" "$sock.ttrpc" "$d/debug.sock"
  node_config "$d" >"$d/config.toml"
  # containerd writes no pid file: the shell that becomes it writes its own pid first.
  sudo_if_needed sh -c 'echo $$ >"$1/containerd.pid"; exec containerd --config "$1/config.toml"' \
    sh "$d" >"$d/containerd.log" 2>&1 8>&- 9>&- &
}

start_node() { # index
  local d="$DIR/node-$1"
  local sock="$d/containerd.sock"
  if ! { ctr --address "$sock" version >/dev/null 2>&1 && cri_list_images "$sock"; }; then
    launch_node "$d"
    return 0
  fi
  if node_config "$d" | cmp -s - "$d/config.toml"; then return 0; fi
  # Running with an older configuration: restarted once no test holds the node, which is held
  # (fd 8) until it answers again; containerd itself must not inherit the lock.
  exec 8>"$d/test.lock"
  flock 8
  launch_node "$d"
  wait_for "containerd node-$1" ctr --address "$sock" version
  wait_for "containerd node-$1 CRI" cri_list_images "$sock"
  exec 8>&-
}

for i in $(seq 1 "$NODES"); do start_node "$i"; done
for i in $(seq 1 "$NODES"); do
  sock="$DIR/node-$i/containerd.sock"
  wait_for "containerd node-$i" ctr --address "$sock" version
  wait_for "containerd node-$i CRI" cri_list_images "$sock"
done

# A large image with several layers of incompressible data: pulls long enough to watch their
# progress, and the benchmark's image. Built with COPY only, so no container runs.
export DOCKER_HOST="unix://$DOCKER_DIR/docker.sock"
REG="127.0.0.1:$PORT"
BIG="$REG/slipway-test/big:latest"
ACCEPT='Accept: application/vnd.docker.distribution.manifest.v2+json'
if ! curl -fs -o /dev/null -H "$ACCEPT" "http://$REG/v2/slipway-test/big/manifests/latest"; then
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  printf 'FROM scratch\n' >"$ctx/Dockerfile"
  for n in 1 2 3; do
    head -c 40M /dev/urandom >"$ctx/layer$n"
    printf 'COPY layer%s /data/layer%s\n' "$n" "$n" >>"$ctx/Dockerfile"
  done
  # The legacy builder warns that it is deprecated on every build: shown only on failure.
  if ! docker build -q -t "$BIG" "$ctx" >/dev/null 2>"$DIR/big-build.log"; then
    cat "$DIR/big-build.log" >&2
    exit 1
  fi
  docker push -q "$BIG" >/dev/null
  docker rmi -f "$BIG" >/dev/null
fi

# Other processes read this while this one may run: written aside, then renamed into place.
{
  echo "# Written by scripts/containerd-env.sh: one CRI socket per node."
  echo "SLIPWAY_CONTAINERD_NODES=$NODES"
  for i in $(seq 1 "$NODES"); do
    echo "SLIPWAY_CONTAINERD_NODE_$i=$DIR/node-$i/containerd.sock"
  done
  echo "SLIPWAY_CONTAINERD_BIG_IMAGE=$BIG"
} >"$DIR/nodes.env.tmp"
mv -f "$DIR/nodes.env.tmp" "$DIR/nodes.env"
echo "$DIR/nodes.env"
