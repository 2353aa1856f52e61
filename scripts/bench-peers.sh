#!/usr/bin/env bash
# cdcflow against a one-pass DuckDB baseline, on the same generated file in the same run.
#
#   scripts/bench-peers.sh
#
# 1. Installs DuckDB from PyPI into a virtualenv cached outside the clone, keyed by version:
#    ${XDG_CACHE_HOME:-$HOME/.cache}/cdcflow/duckdb-venv-VERSION (made once, then reused).
# 2. Writes one outbound workload with `cdcflow gen` into a temporary directory.
# 3. Runs scripts/peers/duckdb_outbound.py (load the file, keep the newest version of each row
#    per primary key, run the three shipped views once, write their documents) and
#    `cdcflow replay --workers N` for each N, each measured for wall seconds and peak RSS
#    (scripts/peers/measure.py: the process's own ru_maxrss, as /usr/bin/time -v reports it).
# 4. Checks that cdcflow's final documents (its change log folded) equal DuckDB's exactly
#    (scripts/peers/compare.py): a difference fails the script and prints the first ones.
# 5. Prints a Markdown table: tool, workers, seconds, events/s, peak RSS, and the ratios to
#    DuckDB (its time / the tool's time: above 1 is faster than DuckDB; the tool's RSS / its RSS).
#
# Environment:
#   CDCFLOW_BIN            the cdcflow binary (default: `cargo build --release`, target/release/cdcflow)
#   BENCH_ORDERS           orders of the workload (default 100000: about 1M events, about 440 MB)
#   BENCH_SEED             gen's seed (default 1)
#   BENCH_SPAN_SECS        gen's commit-time span (default 3600, as `cargo bench --bench scaling`:
#                          one busy hour; gen's own default, a week, gives about one commit
#                          time per transaction and about four times as many changes)
#   BENCH_GEN_ARGS         more `cdcflow gen` options, e.g. "--shuffle 50 --duplicates 0.01"
#   BENCH_REPLAY_ARGS      more `cdcflow replay` options, e.g. "--allowed-lateness-ms 3600000"
#   BENCH_WORKERS          cdcflow worker counts (default "1 2")
#   BENCH_DUCKDB_VERSION   the DuckDB package version (default 1.5.6)
#   BENCH_DUCKDB_THREADS   DuckDB's threads (default: DuckDB's own, one per core)
#   BENCH_KEEP=1           keep the temporary directory (workload, change logs, documents)
#   TMPDIR                 where the temporary directory goes
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PEERS="$ROOT/scripts/peers"

ORDERS="${BENCH_ORDERS:-100000}"
SEED="${BENCH_SEED:-1}"
SPAN="${BENCH_SPAN_SECS:-3600}"
WORKERS="${BENCH_WORKERS:-1 2}"
DUCKDB_VERSION="${BENCH_DUCKDB_VERSION:-1.5.6}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/cdcflow"
VENV="$CACHE/duckdb-venv-$DUCKDB_VERSION"
read -r -a GEN_ARGS <<<"${BENCH_GEN_ARGS:-}"
read -r -a REPLAY_ARGS <<<"${BENCH_REPLAY_ARGS:-}"

log() { echo "== $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

# --- DuckDB in a cached venv -----------------------------------------------------------------
install_duckdb() {
    local check=(-c "import duckdb, sys; sys.exit(duckdb.__version__ != '$DUCKDB_VERSION')")
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" "${check[@]}" 2>/dev/null; then
        return
    fi
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        [ "$(id -u)" = 0 ] || die "python3 with venv is needed (Debian: apt-get install python3 python3-venv)"
        log "installing Debian packages: python3 python3-venv"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
    fi
    mkdir -p "$CACHE"
    exec 8>"$VENV.lock"
    flock 8
    if ! { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" "${check[@]}" 2>/dev/null; }; then
        if [ ! -x "$VENV/bin/pip" ]; then
            log "creating the Python venv $VENV"
            python3 -m venv "$VENV" >&2 || die "python3 -m venv failed"
        fi
        log "installing duckdb==$DUCKDB_VERSION into $VENV"
        "$VENV/bin/pip" install -q --disable-pip-version-check "duckdb==$DUCKDB_VERSION" >&2 \
            || die "pip install duckdb==$DUCKDB_VERSION failed"
    fi
    flock -u 8
    exec 8>&-
}
install_duckdb
PY="$VENV/bin/python"

# --- cdcflow ---------------------------------------------------------------------------------
if [ -n "${CDCFLOW_BIN:-}" ]; then
    BIN="$CDCFLOW_BIN"
else
    command -v cargo >/dev/null 2>&1 || die "cargo is not installed; or set CDCFLOW_BIN"
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet) >&2
    BIN="$ROOT/target/release/cdcflow"
fi
[ -x "$BIN" ] || die "$BIN is not an executable"
VIEWS="$ROOT/dataflows"

# --- the workload ----------------------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cdcflow-peers.XXXXXX")"
if [ "${BENCH_KEEP:-0}" = 1 ]; then
    log "keeping $WORK"
else
    trap 'rm -rf "$WORK"' EXIT
fi
INPUT="$WORK/outbound.jsonl"
GEN=(gen --orders "$ORDERS" --seed "$SEED" --span-secs "$SPAN" "${GEN_ARGS[@]}")
log "cdcflow ${GEN[*]}"
"$BIN" "${GEN[@]}" --out "$INPUT" 2>"$WORK/gen.log" \
    || { cat "$WORK/gen.log" >&2; die "cdcflow gen failed"; }
cat "$WORK/gen.log" >&2
EVENTS="$(wc -l <"$INPUT")"
BYTES="$(wc -c <"$INPUT")"

# --- the runs --------------------------------------------------------------------------------
# measure NAME COMMAND...: NAME.json (seconds, max_rss_kib, rc), NAME.out, NAME.err in $WORK.
measure() {
    local name="$1"
    shift
    if ! "$PY" "$PEERS/measure.py" "$WORK/$name.json" "$WORK/$name.out" "$WORK/$name.err" -- "$@"; then
        tail -n 20 "$WORK/$name.err" >&2
        die "$name failed: $*"
    fi
}

DUCK_ARGS=()
[ -n "${BENCH_DUCKDB_THREADS:-}" ] && DUCK_ARGS+=(--threads "$BENCH_DUCKDB_THREADS")
log "duckdb $DUCKDB_VERSION: load, upsert by key, the three views"
measure duckdb "$PY" "$PEERS/duckdb_outbound.py" "$INPUT" --views "$VIEWS" \
    --out "$WORK/duckdb.docs.jsonl" --stats "$WORK/duckdb.stats.json" "${DUCK_ARGS[@]}"
cat "$WORK/duckdb.err" >&2

for w in $WORKERS; do
    log "cdcflow replay --workers $w"
    # Exit 3 (records rejected or rows not evaluated) fails too: the views would be partial.
    measure "cdcflow-$w" "$BIN" replay --quiet --workers "$w" --views "$VIEWS" "${REPLAY_ARGS[@]}" \
        --out "$WORK/cdcflow-$w.changes.jsonl" "$INPUT"
    tail -n 1 "$WORK/cdcflow-$w.err" >&2
done

# --- the check and the table -----------------------------------------------------------------
ok=1
for w in $WORKERS; do
    log "comparing cdcflow --workers $w with DuckDB"
    "$PY" "$PEERS/compare.py" "$WORK/cdcflow-$w.changes.jsonl" "$WORK/duckdb.docs.jsonl" || ok=0
done

"$PY" - "$WORK" "$EVENTS" "$BYTES" "$WORKERS" "$("$BIN" --version)" "cdcflow ${GEN[*]}" <<'EOF'
import json, sys, datetime
work, events, size, workers, version, gen = sys.argv[1:7]
events, size = int(events), int(size)
def load(name):
    return json.load(open(f"{work}/{name}.json"))
duck = load("duckdb")
stats = json.load(open(f"{work}/duckdb.stats.json"))
threads = f"{stats['threads']} thread" + "s" * (stats["threads"] != 1)
rows = [("duckdb " + stats["duckdb"], threads, duck)]
rows += [(version, w, load(f"cdcflow-{w}")) for w in workers.split()]
print()
print(f"{datetime.date.today()}: {events:,} events (lines; {size / 1e6:,.0f} MB of Debezium JSON "
      f"from `{gen}`), one run of each on the same file")
print()
print("| tool | workers | seconds | events/s | peak RSS MiB | speed vs DuckDB | RSS vs DuckDB |")
print("|---|---:|---:|---:|---:|---:|---:|")
for tool, w, m in rows:
    s, rss = m["seconds"], m["max_rss_kib"] / 1024
    print(f"| {tool} | {w} | {s:.2f} | {events / s:,.0f} | {rss:,.0f} | "
          f"{duck['seconds'] / s:.2f}x | {rss / (duck['max_rss_kib'] / 1024):.2f}x |")
print()
print(f"DuckDB phases: load {stats['load_s']} s, upsert {stats['upsert_s']} s, "
      f"views {stats['views_s']} s, write {stats['write_s']} s; {stats['documents']} documents")
EOF

[ "$ok" = 1 ] || die "cdcflow's documents differ from DuckDB's (see above)"
echo "documents: cdcflow (workers ${WORKERS// /, }) equals DuckDB exactly"
