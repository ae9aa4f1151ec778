#!/usr/bin/env bash
# The test command (README, .ci/run): builds the workspace and runs every test.
# Needs only a Rust toolchain; installs nothing else yet (later connectors' servers are
# started from here). Reuses a target dir outside the clone when one exists.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
cargo test --workspace --locked "$@"
