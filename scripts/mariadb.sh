#!/usr/bin/env bash
# A private MariaDB for the tests: installs the Debian packages when missing, starts one server
# bound to 127.0.0.1 with its data under target/, stops it by its PID. Idempotent.
# The server writes a row-based binlog with full row images and full table-map metadata (what
# the binlog source needs: column names, ENUM strings, signedness, primary keys); uncompressed.
#
#   scripts/mariadb.sh start   # prints the socket path on stdout
#   scripts/mariadb.sh stop
#
# CDCFLOW_MARIADB_DIR (default target/mariadb-test) and CDCFLOW_TEST_MARIADB_PORT (default
# 34306) choose another instance (scripts/binlog-fixture.sh uses its own).
# CDCFLOW_MARIADB_SERVER_ID (default 1) sets its server_id; it logs what it replicates
# (log_slave_updates), so that it can be made a replica of another and then promoted.
# CDCFLOW_MARIADB_TLS=1 also serves TLS, with a test CA and a server certificate for
# 127.0.0.1/localhost made with openssl under $DIR/tls (ca.pem is the CA to verify with).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${CDCFLOW_MARIADB_DIR:-$PWD/target/mariadb-test}"
PORT="${CDCFLOW_TEST_MARIADB_PORT:-34306}"
MARIADBD=/usr/sbin/mariadbd

install() {
    if [ -x "$MARIADBD" ] && command -v mariadb >/dev/null 2>&1 && command -v mariadb-install-db >/dev/null 2>&1; then
        return
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "error: MariaDB is not installed and installing it needs root: apt-get install mariadb-server mariadb-client" >&2
        exit 1
    fi
    echo "installing mariadb-server and mariadb-client (Debian packages)" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server mariadb-client >/dev/null
}

# A test CA and a server certificate signed by it, made once per instance directory.
tls_files() {
    local t="$DIR/tls"
    if [ -f "$t/server.pem" ]; then
        return
    fi
    if ! command -v openssl >/dev/null 2>&1; then
        if [ "$(id -u)" != 0 ]; then
            echo "error: openssl is not installed: apt-get install openssl" >&2
            exit 1
        fi
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
    fi
    mkdir -p "$t"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=cdcflow test CA" \
        -keyout "$t/ca-key.pem" -out "$t/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$t/server-key.pem" -out "$t/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
        >"$t/ext.cnf"
    openssl x509 -req -days 3650 -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca-key.pem" \
        -CAcreateserial -extfile "$t/ext.cnf" -out "$t/server.pem" 2>/dev/null
}

running() {
    [ -f "$DIR/pid" ] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null
}

start() {
    install
    mkdir -p "$DIR"
    if running; then
        echo "$DIR/sock"
        return
    fi
    if [ ! -d "$DIR/data/mysql" ]; then
        rm -rf "$DIR/data"
        if ! mariadb-install-db --no-defaults --datadir="$DIR/data" --auth-root-authentication-method=normal \
            --skip-test-db --user="$(id -un)" >"$DIR/install.log" 2>&1; then
            echo "error: mariadb-install-db failed; see $DIR/install.log" >&2
            tail -20 "$DIR/install.log" >&2 || true
            exit 1
        fi
    fi
    local tls=()
    if [ "${CDCFLOW_MARIADB_TLS:-0}" = 1 ]; then
        tls_files
        tls=(--ssl-ca="$DIR/tls/ca.pem" --ssl-cert="$DIR/tls/server.pem" --ssl-key="$DIR/tls/server-key.pem")
    fi
    "$MARIADBD" --no-defaults --user="$(id -un)" --datadir="$DIR/data" --socket="$DIR/sock" \
        --pid-file="$DIR/pid" --port="$PORT" --bind-address=127.0.0.1 --skip-name-resolve \
        --server-id="${CDCFLOW_MARIADB_SERVER_ID:-1}" --log-slave-updates --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
        --log-bin="$DIR/data/mysql-bin" --binlog-format=ROW --binlog-row-image=FULL \
        --binlog-row-metadata=FULL --skip-log-bin-compress "${tls[@]}" >"$DIR/server.log" 2>&1 &
    for _ in $(seq 1 100); do
        if mariadb --no-defaults --socket="$DIR/sock" -uroot -e 'SELECT 1' >/dev/null 2>&1; then
            echo "$DIR/sock"
            return
        fi
        sleep 0.1
    done
    echo "error: MariaDB did not start; see $DIR/server.log" >&2
    tail -20 "$DIR/server.log" >&2 || true
    exit 1
}

stop() {
    if running; then
        local pid
        pid="$(cat "$DIR/pid")"
        kill "$pid"
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || return 0
            sleep 0.1
        done
        echo "warning: MariaDB (pid $pid) did not stop in 10 s" >&2
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
