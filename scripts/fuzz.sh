#!/usr/bin/env bash
# Fuzzes the formats crate: every target in fuzz/fuzz_targets by default, 60 s each.
# Usage: scripts/fuzz.sh [seconds per target] [target...]
# Needs cargo-fuzz (installed here if absent); the stable toolchain works with
# RUSTC_BOOTSTRAP=1 (cargo-fuzz uses nightly-only flags). Crashes land in
# fuzz/artifacts/<target>/; reproduce one with `cargo fuzz run <target> <file>`.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=()
  for f in fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}/fuzz"
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  echo "== $target (${seconds}s)"
  # -s none: no AddressSanitizer (the code is safe Rust); keeps the build and runs light.
  cargo fuzz run -s none "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=4096
done
