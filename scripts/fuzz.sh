#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (default 20 s each) and fails on a crash.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer, sanitizer coverage); this machine has
# only a stable toolchain, so the build sets RUSTC_BOOTSTRAP=1, which lets stable rustc accept
# them. Targets are built once with debug assertions (-a: integer overflow panics, as in tests)
# and AddressSanitizer, into their own target directory under ~/.cache/slipway.
#
# The seed corpus (fuzz/corpus/<target>/, in the repository) is only read: what libFuzzer
# learns goes to a working corpus in the cache, so runs get better over time without new files
# in the repository. A crash leaves its input in ~/.cache/slipway/fuzz/artifacts/<target>/;
# reproduce it with `cargo fuzz run -a <target> <file>` (with RUSTC_BOOTSTRAP=1) from fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
shift || true
cache="${SLIPWAY_FUZZ_CACHE:-$HOME/.cache/slipway/fuzz}"
mkdir -p "$cache"
export CARGO_TARGET_DIR="$cache/target"
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

cd fuzz
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

# One build for all targets; `run` below finds it up to date.
if ! cargo fuzz build -a >"$cache/build.log" 2>&1; then
  tail -n 40 "$cache/build.log"
  exit 1
fi

failed=()
for t in "${targets[@]}"; do
  work="$cache/corpus/$t"
  artifacts="$cache/artifacts/$t"
  mkdir -p "$work" "$artifacts" "corpus/$t"
  log="$cache/$t.log"
  echo "fuzz: $t for ${seconds}s"
  if cargo fuzz run -a "$t" "$work" "corpus/$t" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1; then
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo "?")
    rate=$(grep -Eo 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo "?")
    echo "fuzz: $t ok, $runs runs, $rate execs/s"
  else
    echo "fuzz: $t FAILED; the end of its log ($log):"
    tail -n 40 "$log"
    failed+=("$t")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]} (inputs in $cache/artifacts/)"
  exit 1
fi
