#!/usr/bin/env bash
# Chaos: runs a windowed aggregate + interval join over files with checkpoints every
# 100 ms, kills it with SIGKILL at random moments N times (default 100; the test suite
# does 10), restarting it each time on 2, 3 or 1 workers in turn, then lets it finish,
# and checks that its output equals an uninterrupted run's line for line (nothing lost,
# nothing repeated) with no hidden part file left behind.
#   scripts/chaos.sh [KILLS]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
kills="${1:-100}"
SLUICE_CHAOS_KILLS="$kills" cargo test --workspace --locked --test it -- \
  --exact checkpoints::sigkill_at_random_moments_loses_and_repeats_nothing --nocapture
echo "chaos: $kills kills, output exact"
