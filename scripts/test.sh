#!/usr/bin/env bash
# Sets up and runs every test of cdcflow. Idempotent; safe on a fresh machine.
#
# Needs a Rust toolchain (cargo, rustfmt, clippy) and installs MariaDB (Debian packages, as root)
# when it is missing: a private MariaDB server on 127.0.0.1 runs the same view SQL as the
# engine, as the oracle of tests/it/mariadb.rs. The script stops the server it started.
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
echo "== MariaDB (oracle)"
socket="$(scripts/mariadb.sh start)"
trap 'scripts/mariadb.sh stop' EXIT
export CDCFLOW_TEST_MARIADB_SOCKET="$socket"
echo "== tests"
log="$(mktemp)"
cargo test --all-targets 2>&1 | tee "$log"
passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s += $1} END {print s + 0}')
rm -f "$log"
echo "tests: $passed passed, $failed failed"
