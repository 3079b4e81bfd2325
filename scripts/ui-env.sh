#!/usr/bin/env bash
# Installs what the web UI's end-to-end tests need: Debian's `chromium` and `playwright-core` from
# npm (the library only: browsers cannot be downloaded here, so the tests drive /usr/bin/chromium).
# Building and running slipway needs neither. Idempotent and quiet on success; concurrent callers
# wait for the first one.
#
#   scripts/ui-env.sh     # prints the node module directory on the last line
set -euo pipefail

NODE_DIR="${SLIPWAY_UI_NODE_DIR:-$HOME/.cache/slipway/ui-node}"
PLAYWRIGHT_VERSION="${PLAYWRIGHT_CORE_VERSION:-1.49.1}"

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

mkdir -p "$NODE_DIR"
exec 9>"$NODE_DIR/.lock"
flock 9

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
# Without fonts, headless Chromium draws text as boxes in the screenshots.
[ -d /usr/share/fonts/truetype/dejavu ] || missing+=(fonts-dejavu-core)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

installed=$(node -p "require('$NODE_DIR/node_modules/playwright-core/package.json').version" 2>/dev/null || true)
if [ "$installed" != "$PLAYWRIGHT_VERSION" ]; then
  echo "installing: playwright-core@$PLAYWRIGHT_VERSION" >&2
  [ -f "$NODE_DIR/package.json" ] || echo '{"private":true}' >"$NODE_DIR/package.json"
  # The library only; its browser download is skipped (this machine cannot fetch browsers).
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$NODE_DIR" --no-audit --no-fund \
    --loglevel=error "playwright-core@$PLAYWRIGHT_VERSION" >/dev/null
fi

echo "$NODE_DIR/node_modules"
