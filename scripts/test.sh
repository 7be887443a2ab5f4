#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: system packages, build, unit, integration and
# end-to-end tests. The end-to-end tests start the services from target/debug, so the binaries
# are built first.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
# A clean CI build gains nothing from incremental compilation, which adds gigabytes of caches.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
cargo build --locked --workspace --bins
cargo test --locked --workspace --no-fail-fast
