#!/usr/bin/env bash
# Sets up and runs every test of cdcflow. Idempotent; safe on a fresh machine.
#
# Needs a Rust toolchain (cargo, rustfmt, clippy) and installs what else is missing: the Debian
# packages of the build and Debian's chromium for the dashboard's browser test (as root), MariaDB (a private server on 127.0.0.1 runs the same view SQL
# as the engine, as the oracle of tests/it/mariadb.rs) and the network services of
# scripts/services.sh (a tansu Kafka broker, built once in about 20 minutes, and two servers of the
# Elasticsearch/OpenSearch HTTP API). The script stops every server it started.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the build needs: rdkafka's ssl feature links the system OpenSSL.
debs=(libssl-dev pkg-config)
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    debs+=(python3 python3-venv) # scripts/services.sh makes a venv for its Python packages
fi
command -v curl >/dev/null 2>&1 || debs+=(curl)
# A real browser for the dashboard tests (tests/it/dashboard.rs): Debian's chromium, and its
# WebDriver server, which the live test drives the page through.
command -v chromium >/dev/null 2>&1 || debs+=(chromium)
command -v chromedriver >/dev/null 2>&1 || debs+=(chromium-driver)
missing=()
for deb in "${debs[@]}"; do
    dpkg -s "$deb" >/dev/null 2>&1 || missing+=("$deb")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "error: missing Debian packages; run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    echo "== installing Debian packages: ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

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
echo "== services (Kafka, Elasticsearch API, OpenSearch API)"
trap 'scripts/services.sh stop; scripts/mariadb.sh stop' EXIT
# Assigned first: a failing `start` must stop the script (eval "$(...)" would hide its status).
service_env="$(scripts/services.sh start)"
eval "$service_env"
echo "== tests"
log="$(mktemp)"
status=0
# --no-fail-fast: every test target runs, so that the counts below cover them all.
cargo test --all-targets --no-fail-fast 2>&1 | tee "$log" || status=$?
passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s += $1} END {print s + 0}')
rm -f "$log"
echo "tests: $passed passed, $failed failed"
# cargo's status: non-zero when a test failed or a test target did not build.
exit "$status"
