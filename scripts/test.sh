#!/usr/bin/env bash
# Sets up and runs every test of cdcflow. Idempotent; safe on a fresh machine.
#
# Needs only a Rust toolchain (cargo, rustfmt, clippy). The tests start no external service:
# the engine is tested from Debezium JSON bytes in memory and in files under fixtures/.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo is not installed (https://rustup.rs)" >&2
    exit 1
fi
for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
        rustup component add "$component" >/dev/null 2>&1 || echo "warning: could not install $component" >&2
    fi
done

echo "== format"
cargo fmt --all -- --check
if cargo clippy --version >/dev/null 2>&1; then
    echo "== clippy"
    cargo clippy --all-targets --quiet -- -D warnings
fi
echo "== tests"
cargo test --all-targets
echo "== doc tests"
cargo test --doc
