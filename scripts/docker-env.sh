#!/usr/bin/env bash
# Starts a private Docker daemon, a Podman API service, and OCI registries on loopback; builds
# the images Tekton's examples name (alpine, busybox, bash, ubuntu) from busybox-static and
# bash-static, pushes them, and writes slipway configs (one per engine) whose rewrite rules point
# those names (digest pins included) at the local registry. Idempotent: what runs is reused.
#
#   scripts/docker-env.sh            # prints the config path on the last line
#   scripts/docker-env.sh stop       # stops what it started
set -euo pipefail
cd "$(dirname "$0")/.."

# A short path: containerd's sockets live under it and unix socket paths are limited to 108 bytes.
DIR="${SLIPWAY_DOCKER_DIR:-/tmp/slipway-docker}"
PORT="${SLIPWAY_REGISTRY_PORT:-5000}"
# A second registry that demands a password, for pull secrets.
AUTH_PORT="${SLIPWAY_AUTH_REGISTRY_PORT:-5001}"
AUTH_USER=slipway-ci
AUTH_PASSWORD=not-a-real-secret
SOCK="$DIR/docker.sock"
export DOCKER_HOST="unix://$SOCK"

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

stop() {
  for f in "$DIR/registry.pid" "$DIR/registry-auth.pid" "$DIR/podman.pid" "$DIR/dockerd.pid"; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
}
if [ "${1:-}" = stop ]; then stop; exit 0; fi

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v podman >/dev/null || missing+=(podman)
command -v docker-registry >/dev/null || missing+=(docker-registry)
[ -x /bin/busybox ] || missing+=(busybox-static)
[ -x /bin/bash-static ] || missing+=(bash-static)
command -v htpasswd >/dev/null || missing+=(apache2-utils)
command -v curl >/dev/null || missing+=(curl)
command -v flock >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Debian's docker-registry service would hold port 5000 on 0.0.0.0; ours is bound to loopback.
if command -v systemctl >/dev/null && systemctl is-active --quiet docker-registry 2>/dev/null; then
  sudo_if_needed systemctl stop docker-registry || true
fi
mkdir -p "$DIR"
# Test processes call this at once; one of them sets things up, the others wait for it.
exec 9>"$DIR/lock"
flock 9

wait_for() { # what, command...
  local what=$1; shift
  for _ in $(seq 1 100); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "$what did not come up; see $DIR/*.log" >&2
  return 1
}

if ! docker version >/dev/null 2>&1; then
  rm -f "$SOCK"
  # No bridge and no iptables: this machine has no network beyond loopback, and containers
  # run with --network none unless a test asks otherwise.
  # dockerd needs root; the socket's group lets this user talk to it.
  sudo_if_needed dockerd --host "$DOCKER_HOST" --data-root "$DIR/data" --exec-root "$DIR/exec" \
    --pidfile "$DIR/dockerd.pid" --iptables=false --ip6tables=false --bridge=none \
    --group "$(id -gn)" \
    >"$DIR/dockerd.log" 2>&1 9>&- &
  wait_for dockerd docker version
fi

start_registry() { # name port extra-config
  local name=$1 port=$2 extra=$3
  if curl -sS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null; then return 0; fi
  cat >"$DIR/$name.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $DIR/$name
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
$extra
EOF
  docker-registry serve "$DIR/$name.yml" >"$DIR/$name.log" 2>&1 9>&- &
  echo $! >"$DIR/$name.pid"
  wait_for "$name" curl -sS -o /dev/null "http://127.0.0.1:$port/v2/"
}
start_registry registry "$PORT" ""
[ -f "$DIR/htpasswd" ] || htpasswd -Bbc "$DIR/htpasswd" "$AUTH_USER" "$AUTH_PASSWORD" >/dev/null 2>&1
start_registry registry-auth "$AUTH_PORT" "auth:
  htpasswd:
    realm: slipway-test
    path: $DIR/htpasswd"

# Podman's API service, Docker-compatible, on its own socket and storage. Debian's defaults set
# rlimits this sandbox may not raise, and the loopback registry speaks plain HTTP.
cat >"$DIR/containers.conf" <<EOF
[containers]
default_ulimits = []
EOF
cat >"$DIR/registries.conf" <<EOF
[[registry]]
location = "127.0.0.1:$PORT"
insecure = true
EOF
export CONTAINERS_CONF="$DIR/containers.conf" CONTAINERS_REGISTRIES_CONF="$DIR/registries.conf"
PODMAN_SOCK="$DIR/podman.sock"
if ! curl -fs -o /dev/null --unix-socket "$PODMAN_SOCK" http://d/_ping; then
  rm -f "$PODMAN_SOCK"
  sudo_if_needed env CONTAINERS_CONF="$CONTAINERS_CONF" CONTAINERS_REGISTRIES_CONF="$CONTAINERS_REGISTRIES_CONF" \
    podman --root "$DIR/podman/root" --runroot "$DIR/podman/run" \
    system service --time=0 "unix://$PODMAN_SOCK" >"$DIR/podman.log" 2>&1 9>&- &
  echo $! >"$DIR/podman.pid"
  wait_for podman curl -fs -o /dev/null --unix-socket "$PODMAN_SOCK" http://d/_ping
fi

# One root filesystem serves as all four images: busybox's applets (sh, ps, env, sleep...) and
# a static bash, with the users Tekton's examples run as. Each name gets the entrypoint and cmd
# of the real image, since Tekton runs a step without a command as its image's entrypoint (else
# cmd) followed by the step's args. IMAGES_VERSION changes when the images do, to rebuild them.
REG="127.0.0.1:$PORT"
ACCEPT='Accept: application/vnd.docker.distribution.manifest.v2+json'
IMAGES_VERSION=2
if [ "$(cat "$DIR/images.version" 2>/dev/null)" != "$IMAGES_VERSION" ] \
  || ! docker image inspect slipway-test/base:latest >/dev/null 2>&1 \
  || ! curl -fs -o /dev/null -H "$ACCEPT" "http://$REG/v2/library/ubuntu/manifests/latest" \
  || ! curl -fs -o /dev/null -H "$ACCEPT" -u "$AUTH_USER:$AUTH_PASSWORD" \
    "http://127.0.0.1:$AUTH_PORT/v2/private/busybox/manifests/1"; then
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,home,proc,sys,dev,var/tmp}
  chmod 1777 "$root/tmp" "$root/var/tmp"
  cp /bin/busybox "$root/bin/busybox"
  cp /bin/bash-static "$root/bin/bash"
  for applet in $(/bin/busybox --list-full); do
    [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
  done
  ln -sf /bin/bash "$root/usr/bin/bash"
  cat >"$root/etc/passwd" <<EOF
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/sh
EOF
  cat >"$root/etc/group" <<EOF
root:x:0:
nogroup:x:65534:
EOF
  # The bash image's entrypoint: bash for options or nothing, else the command given.
  mkdir -p "$root/usr/local/bin"
  printf '%s\n' '#!/bin/bash' \
    'if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then exec bash "$@"; fi' \
    'exec "$@"' >"$root/usr/local/bin/docker-entrypoint.sh"
  chmod 755 "$root/usr/local/bin/docker-entrypoint.sh"
  path_env='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  tar -C "$root" -c . | docker import --change 'CMD ["/bin/sh"]' --change "$path_env" \
    - slipway-test/base:latest >/dev/null
  # Name, entrypoint and cmd of each real image.
  for spec in 'busybox||["sh"]' 'alpine||["/bin/sh"]' 'ubuntu||["/bin/bash"]' \
    'bash|["docker-entrypoint.sh"]|["bash"]'; do
    IFS='|' read -r name entrypoint cmd <<<"$spec"
    changes=(--change "$path_env" --change "CMD $cmd")
    [ -n "$entrypoint" ] && changes+=(--change "ENTRYPOINT $entrypoint")
    tar -C "$root" -c . | docker import "${changes[@]}" - "$REG/library/$name:latest" >/dev/null
    docker push -q "$REG/library/$name:latest" >/dev/null
  done
  # An image whose entrypoint comes from its config, for steps without a command.
  tar -C "$root" -c . | docker import --change 'ENTRYPOINT ["/bin/echo", "from-entrypoint"]' \
    - "$REG/slipway-test/entrypoint:latest" >/dev/null
  docker push -q "$REG/slipway-test/entrypoint:latest" >/dev/null
  # The private copy: pushing needs a login, kept out of the user's own Docker config.
  export DOCKER_CONFIG="$DIR/docker-config"
  echo "$AUTH_PASSWORD" | docker login -u "$AUTH_USER" --password-stdin "127.0.0.1:$AUTH_PORT" >/dev/null 2>&1
  docker tag slipway-test/base:latest "127.0.0.1:$AUTH_PORT/private/busybox:1"
  docker push -q "127.0.0.1:$AUTH_PORT/private/busybox:1" >/dev/null
  docker rmi -f "127.0.0.1:$AUTH_PORT/private/busybox:1" >/dev/null
  unset DOCKER_CONFIG
  # Pulls in tests must go to the registry: keep the daemon's cache free of the pushed names.
  for name in alpine busybox bash ubuntu; do docker rmi -f "$REG/library/$name:latest" >/dev/null; done
  docker rmi -f "$REG/slipway-test/entrypoint:latest" >/dev/null
  echo "$IMAGES_VERSION" >"$DIR/images.version"
fi

# Other processes read these while this one may run: written aside, then renamed into place.
# What tests need to know about the private registry.
cat >"$DIR/private-registry.env.tmp" <<EOF
SLIPWAY_TEST_AUTH_REGISTRY=127.0.0.1:$AUTH_PORT
SLIPWAY_TEST_AUTH_USER=$AUTH_USER
SLIPWAY_TEST_AUTH_PASSWORD=$AUTH_PASSWORD
EOF
cat >"$DIR/slipway.toml.tmp" <<EOF
# Written by scripts/docker-env.sh: the private daemon and the loopback registry.
[docker]
host = "$DOCKER_HOST"
network = "none"

# Tekton's examples pin images on mirror.gcr.io, some by digest; the local registry holds
# rebuilt images under the same names, so digest pins are dropped for these.
[[registry.rewrite]]
prefix = "mirror.gcr.io/"
replace = "$REG/library/"
drop_digest = true

# The catalog's kaniko Task pins Hub's bash by digest; the local copy is a rebuild.
[[registry.rewrite]]
prefix = "docker.io/library/bash@sha256:c523c636b722339f41b6a431b44588ab2f762c5de5ec3bd7964420ff982fb1d9"
replace = "$REG/library/bash:latest"
drop_digest = true

[registry.mirrors]
"docker.io" = ["$REG"]
EOF
sed "s#^host = .*#host = \"unix://$PODMAN_SOCK\"#" "$DIR/slipway.toml.tmp" >"$DIR/slipway-podman.toml.tmp"
mv -f "$DIR/slipway-podman.toml.tmp" "$DIR/slipway-podman.toml"
mv -f "$DIR/private-registry.env.tmp" "$DIR/private-registry.env"
mv -f "$DIR/slipway.toml.tmp" "$DIR/slipway.toml"
echo "$DIR/slipway.toml"
