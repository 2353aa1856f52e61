#!/usr/bin/env bash
# The network services of the tests, installed when missing and started bound to 127.0.0.1:
#   - Kafka protocol: a tansu 0.6.0 broker (built once with its libsql feature, durable sqlite store);
#   - Elasticsearch API: noida-db 0.2.3 (presents itself as Elasticsearch 8, keeps data on disk);
#   - OpenSearch API: osmem-server 0.1.6 (in memory).
# Tools are cached outside the clone, keyed by version, in
# ${CDCFLOW_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cdcflow-tools}; data, logs and PID files
# live under target/services/. Idempotent: `start` starts only what is not running, `stop` stops
# only what this script started (by the PIDs it wrote).
#
#   eval "$(scripts/services.sh start)"    # prints `export CDCFLOW_TEST_...=...` lines on stdout
#   scripts/services.sh stop
#   scripts/services.sh restart-kafka [TERM|KILL]   # stop the broker (SIGTERM by default), start
#                                                   # it again on the same store, wait for its port
#   scripts/services.sh stop-kafka [TERM|KILL] | start-kafka
#   scripts/services.sh restart-es [TERM|KILL] | stop-es [TERM|KILL] | start-es     # noida-db
#   scripts/services.sh status
#
# Exported by `start`:
#   CDCFLOW_TEST_KAFKA             bootstrap servers, 127.0.0.1:PORT
#   CDCFLOW_TEST_TANSU_BIN         the tansu binary
#   CDCFLOW_TEST_TANSU_DIR         the broker's working directory (its sqlite store is tansu.db there)
#   CDCFLOW_TEST_TANSU_CMD         the broker's command line (run it from CDCFLOW_TEST_TANSU_DIR)
#   CDCFLOW_TEST_ES_URL            http://127.0.0.1:PORT (noida-db)
#   CDCFLOW_TEST_NOIDA_CMD         noida-db's full command line (shell words), to run it again
#   CDCFLOW_TEST_OPENSEARCH_URL    http://127.0.0.1:PORT (osmem-server)
#   CDCFLOW_TEST_SERVICES          this script (absolute path), for `restart-kafka` and `restart-es`
#
# A test that restarts the broker runs `"$CDCFLOW_TEST_SERVICES" restart-kafka` (or KILL for a
# crash). By hand it is: kill "$(cat target/services/tansu.pid)", wait until that process is gone,
# then `cd "$CDCFLOW_TEST_TANSU_DIR" && $CDCFLOW_TEST_TANSU_CMD` in the background; going through
# the script keeps the PID file right, so that `stop` still stops the new broker. The same holds for
# noida-db with restart-es, target/services/noida.pid and CDCFLOW_TEST_NOIDA_CMD.
# cargo runs tests in parallel and these servers are shared: a restart also hits every other test
# using them at that moment. A test that restarts a server had better start its own instance
# (CDCFLOW_TEST_TANSU_BIN with its own port and directory, or CDCFLOW_TEST_NOIDA_CMD with its own
# --data-dir and port) and stop it itself.
#
# Settings (environment):
#   CDCFLOW_TEST_KAFKA_PORT (39092), CDCFLOW_TEST_ES_PORT (39200), CDCFLOW_TEST_OPENSEARCH_PORT (39201)
#   CDCFLOW_TOOLS_DIR       where tools are installed (see above)
#   CDCFLOW_TANSU_BIN       use this tansu binary instead of building one
#   CDCFLOW_TANSU_STORAGE   storage engine URL (default sqlite://tansu.db, relative to the broker's
#                           directory: tansu refuses an absolute sqlite path). A tansu without the
#                           libsql feature needs memory://tansu/ here.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
SELF="$REPO/scripts/services.sh"
DIR="$REPO/target/services"
TOOLS="${CDCFLOW_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cdcflow-tools}"

TANSU_VERSION=0.6.0
TANSU_ROOT="$TOOLS/tansu-$TANSU_VERSION"
TANSU_BIN="${CDCFLOW_TANSU_BIN:-$TANSU_ROOT/bin/tansu}"
TANSU_STORAGE="${CDCFLOW_TANSU_STORAGE:-sqlite://tansu.db}"
TANSU_DIR="$DIR/tansu"
KAFKA_PORT="${CDCFLOW_TEST_KAFKA_PORT:-39092}"

# Bump the suffix when the pinned Python packages change: a new venv is made beside the old one.
VENV="$TOOLS/venv-1"
PY_PACKAGES=(noida-db==0.2.3 osmem-server==0.1.6)
ES_PORT="${CDCFLOW_TEST_ES_PORT:-39200}"
OPENSEARCH_PORT="${CDCFLOW_TEST_OPENSEARCH_PORT:-39201}"
NOIDA_DIR="$DIR/noida"

log() { echo "services: $*" >&2; }
die() { echo "services: error: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Installation

install_tansu() {
    [ -x "$TANSU_BIN" ] && return
    [ -n "${CDCFLOW_TANSU_BIN:-}" ] && die "CDCFLOW_TANSU_BIN=$CDCFLOW_TANSU_BIN is not an executable"
    command -v cargo >/dev/null 2>&1 || die "cargo is needed to build tansu $TANSU_VERSION"
    mkdir -p "$TOOLS"
    local lock="$TOOLS/tansu-$TANSU_VERSION.lock"
    exec 9>"$lock"
    if ! flock -n 9; then
        log "another build of tansu $TANSU_VERSION is in progress (lock $lock); waiting for it"
        flock 9
    fi
    if [ ! -x "$TANSU_BIN" ]; then
        log "building tansu $TANSU_VERSION with libsql into $TANSU_ROOT (once; takes about 20 minutes)"
        # A target folder of its own, kept until success, so that an interrupted build resumes.
        local build="$TOOLS/tansu-$TANSU_VERSION.build"
        if ! CARGO_TARGET_DIR="$build" cargo install tansu --version "$TANSU_VERSION" --locked \
            --features libsql --root "$TANSU_ROOT" >"$TOOLS/tansu-$TANSU_VERSION.build.log" 2>&1; then
            tail -30 "$TOOLS/tansu-$TANSU_VERSION.build.log" >&2 || true
            die "building tansu failed; see $TOOLS/tansu-$TANSU_VERSION.build.log"
        fi
        rm -rf "$build"
        log "tansu built: $TANSU_BIN"
    fi
    flock -u 9
    exec 9>&-
}

install_venv() {
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -m pip show -q "${PY_PACKAGES[@]%%==*}" >/dev/null 2>&1 \
        && [ -f "$(site_packages)/noida_db/noida-db" ] && [ -f "$(site_packages)/osmem_server/bin/osmem-server" ]; then
        return
    fi
    command -v python3 >/dev/null 2>&1 || die "python3 is needed (Debian: apt-get install python3 python3-venv)"
    mkdir -p "$TOOLS"
    local lock="$TOOLS/venv-1.lock"
    exec 8>"$lock"
    flock 8
    if [ ! -x "$VENV/bin/pip" ]; then
        log "creating the Python venv $VENV"
        python3 -m venv "$VENV" >&2 || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    fi
    log "installing ${PY_PACKAGES[*]} into $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PACKAGES[@]}" >&2 || die "pip install failed"
    flock -u 8
    exec 8>&-
}

site_packages() {
    "$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
}

# ---------------------------------------------------------------------------------------------
# Processes

# Whether the process in PID file $1 runs and is the program named $2 (guards against PID reuse).
running() {
    local pidfile="$1" name="$2" pid cmdline
    [ -f "$pidfile" ] || return 1
    pid="$(cat "$pidfile")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    [[ "$cmdline" == *"$name"* ]]
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Waits until TCP port $1 accepts connections; $2 is the PID that must stay alive meanwhile.
wait_port() {
    local port="$1" pid="$2" what="$3" logfile="$4"
    for _ in $(seq 1 200); do
        port_open "$port" && return 0
        kill -0 "$pid" 2>/dev/null || { tail -20 "$logfile" >&2 || true; die "$what exited at start; see $logfile"; }
        sleep 0.1
    done
    tail -20 "$logfile" >&2 || true
    die "$what did not accept connections on 127.0.0.1:$port in 20 s; see $logfile"
}

# Waits until http://127.0.0.1:$1/ answers 200.
wait_http() {
    local port="$1" pid="$2" what="$3" logfile="$4" code
    for _ in $(seq 1 200); do
        code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/" 2>/dev/null || true)"
        [ "$code" = 200 ] && return 0
        kill -0 "$pid" 2>/dev/null || { tail -20 "$logfile" >&2 || true; die "$what exited at start; see $logfile"; }
        sleep 0.1
    done
    tail -20 "$logfile" >&2 || true
    die "$what did not answer 200 on http://127.0.0.1:$port/ in 20 s; see $logfile"
}

# Refuses to start on a port that something else already holds.
port_free() {
    local port="$1" what="$2" var="$3"
    for _ in $(seq 1 50); do
        port_open "$port" || return 0
        sleep 0.1
    done
    die "127.0.0.1:$port is already in use by another process; $what cannot start there (set $var)"
}

# Starts "$@" in the background from directory $1 with its output in $2; writes its PID to $3.
spawn() {
    local cwd="$1" logfile="$2" pidfile="$3"
    shift 3
    (cd "$cwd" && exec nohup "$@" >>"$logfile" 2>&1 </dev/null) &
    echo $! >"$pidfile"
}

# Stops the process of PID file $1 (program $2) with signal $3, waits until it is gone.
stop_pid() {
    local pidfile="$1" name="$2" signal="${3:-TERM}" pid
    if running "$pidfile" "$name"; then
        pid="$(cat "$pidfile")"
        kill -s "$signal" "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name (pid $pid) did not stop in 10 s; killing it"
            kill -s KILL "$pid" 2>/dev/null || true
            sleep 0.2
        fi
    fi
    rm -f "$pidfile"
}

# ---------------------------------------------------------------------------------------------
# Services

# The command lines, as arrays (tansu's runs in $TANSU_DIR).
tansu_argv() {
    ARGV=("$TANSU_BIN" broker --listener-url "tcp://127.0.0.1:$KAFKA_PORT"
        --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" --storage-engine "$TANSU_STORAGE")
}
noida_argv() {
    # The real binary, not the `noida-db` console script: that is a Python wrapper, and stopping
    # it by its PID would leave the server running.
    ARGV=("$(site_packages)/noida_db/noida-db" start --data-dir "$NOIDA_DIR" --host 127.0.0.1
        --only elasticsearch --elasticsearch-port "$ES_PORT")
}
osmem_argv() {
    ARGV=("$(site_packages)/osmem_server/bin/osmem-server" -addr "127.0.0.1:$OPENSEARCH_PORT"
        -no-stdin-watch -no-ja)
}
# Prints the array ARGV as one line of shell words.
argv_line() {
    local line
    line="$(printf '%q ' "${ARGV[@]}")"
    echo "${line% }"
}

# What this run started, stopped again if the run fails.
STARTED=()
cleanup_on_failure() {
    local rc=$? name
    if [ "$rc" != 0 ]; then
        for name in "${STARTED[@]}"; do
            stop_pid "$DIR/${name%%:*}.pid" "${name#*:}"
        done
    fi
    exit "$rc"
}
trap cleanup_on_failure EXIT

start_kafka() {
    install_tansu
    mkdir -p "$DIR" "$TANSU_DIR"
    running "$DIR/tansu.pid" tansu && return
    port_free "$KAFKA_PORT" "the tansu broker" CDCFLOW_TEST_KAFKA_PORT
    tansu_argv
    spawn "$TANSU_DIR" "$DIR/tansu.log" "$DIR/tansu.pid" "${ARGV[@]}"
    STARTED+=(tansu:tansu)
    wait_port "$KAFKA_PORT" "$(cat "$DIR/tansu.pid")" "tansu" "$DIR/tansu.log"
    log "tansu broker on 127.0.0.1:$KAFKA_PORT (pid $(cat "$DIR/tansu.pid"), store $TANSU_STORAGE in $TANSU_DIR)"
}

start_es() {
    install_venv
    mkdir -p "$DIR" "$NOIDA_DIR"
    running "$DIR/noida.pid" noida-db && return
    port_free "$ES_PORT" "noida-db" CDCFLOW_TEST_ES_PORT
    noida_argv
    [ -x "${ARGV[0]}" ] || chmod +x "${ARGV[0]}"
    spawn "$REPO" "$DIR/noida.log" "$DIR/noida.pid" "${ARGV[@]}"
    STARTED+=(noida:noida-db)
    wait_http "$ES_PORT" "$(cat "$DIR/noida.pid")" "noida-db" "$DIR/noida.log"
    log "noida-db (Elasticsearch API) on http://127.0.0.1:$ES_PORT (pid $(cat "$DIR/noida.pid"))"
}

start_opensearch() {
    install_venv
    mkdir -p "$DIR"
    running "$DIR/osmem.pid" osmem-server && return
    port_free "$OPENSEARCH_PORT" "osmem-server" CDCFLOW_TEST_OPENSEARCH_PORT
    osmem_argv
    [ -x "${ARGV[0]}" ] || chmod +x "${ARGV[0]}"
    spawn "$DIR" "$DIR/osmem.log" "$DIR/osmem.pid" "${ARGV[@]}"
    STARTED+=(osmem:osmem-server)
    wait_http "$OPENSEARCH_PORT" "$(cat "$DIR/osmem.pid")" "osmem-server" "$DIR/osmem.log"
    log "osmem-server (OpenSearch API) on http://127.0.0.1:$OPENSEARCH_PORT (pid $(cat "$DIR/osmem.pid"))"
}

start() {
    start_kafka
    start_es
    start_opensearch
    printf 'export CDCFLOW_TEST_KAFKA=%q\n' "127.0.0.1:$KAFKA_PORT"
    printf 'export CDCFLOW_TEST_TANSU_BIN=%q\n' "$TANSU_BIN"
    printf 'export CDCFLOW_TEST_TANSU_DIR=%q\n' "$TANSU_DIR"
    tansu_argv
    printf 'export CDCFLOW_TEST_TANSU_CMD=%q\n' "$(argv_line)"
    printf 'export CDCFLOW_TEST_ES_URL=%q\n' "http://127.0.0.1:$ES_PORT"
    noida_argv
    printf 'export CDCFLOW_TEST_NOIDA_CMD=%q\n' "$(argv_line)"
    printf 'export CDCFLOW_TEST_OPENSEARCH_URL=%q\n' "http://127.0.0.1:$OPENSEARCH_PORT"
    printf 'export CDCFLOW_TEST_SERVICES=%q\n' "$SELF"
}

stop() {
    stop_pid "$DIR/osmem.pid" osmem-server
    stop_pid "$DIR/noida.pid" noida-db
    stop_pid "$DIR/tansu.pid" tansu
}

status() {
    local name pidfile
    for pair in tansu:tansu noida:noida-db osmem:osmem-server; do
        pidfile="$DIR/${pair%%:*}.pid"
        name="${pair#*:}"
        if running "$pidfile" "$name"; then
            echo "$name: running (pid $(cat "$pidfile"))"
        else
            echo "$name: stopped"
        fi
    done
}

case "${1:-}" in
    stop-kafka | restart-kafka | stop-es | restart-es)
        signal="${2:-TERM}"
        [ "$signal" = TERM ] || [ "$signal" = KILL ] || die "the signal must be TERM or KILL, not $signal"
        ;;
esac
case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    start-kafka) start_kafka ;;
    stop-kafka) stop_pid "$DIR/tansu.pid" tansu "$signal" ;;
    restart-kafka)
        stop_pid "$DIR/tansu.pid" tansu "$signal"
        start_kafka
        ;;
    start-es) start_es ;;
    stop-es) stop_pid "$DIR/noida.pid" noida-db "$signal" ;;
    restart-es)
        stop_pid "$DIR/noida.pid" noida-db "$signal"
        start_es
        ;;
    *)
        echo "usage: $0 start|stop|status|start-kafka|stop-kafka [TERM|KILL]|restart-kafka [TERM|KILL]|start-es|stop-es [TERM|KILL]|restart-es [TERM|KILL]" >&2
        exit 2
        ;;
esac
