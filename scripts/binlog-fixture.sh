#!/usr/bin/env bash
# Makes a binlog fixture from the real database: starts a private MariaDB (scripts/mariadb.sh,
# with its own port and data folder under target/, binlog flags included) on a fresh datadir,
# loads dataflows/schema.sql, runs the scenario SQL file in one client connection, and saves
#   fixtures/binlog/<scenario>/mysql-bin.NNNNNN   the binlog files (no index file)
#   fixtures/binlog/<scenario>/expected/<view>.tsv   MariaDB's result of each dataflows/<view>.sql
#                                                     (sorted, tab-separated, as `mariadb --batch --raw`)
#   fixtures/binlog/<scenario>/events.txt          the decoded events (mariadb-binlog -v), for review
#                                                     (not with CDCFLOW_FIXTURE_EVENTS=0)
#   and with CDCFLOW_FIXTURE_GZIP=1 the binlog files gzipped (mysql-bin.NNNNNN.gz)
# then stops the server.
#
#   scripts/binlog-fixture.sh fixtures/binlog/scenarios/outbound_cases.sql [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
scenario_sql="${1:?usage: $0 SCENARIO.sql [OUT_DIR]}"
name="$(basename "$scenario_sql" .sql)"
out="${2:-fixtures/binlog/$name}"
export CDCFLOW_MARIADB_DIR="$PWD/target/binlog-fixture-$name"
export CDCFLOW_TEST_MARIADB_PORT="${CDCFLOW_FIXTURE_MARIADB_PORT:-34307}"
scripts/mariadb.sh stop
rm -rf "$CDCFLOW_MARIADB_DIR"
sock="$(scripts/mariadb.sh start)"
trap 'scripts/mariadb.sh stop' EXIT
sql() { mariadb --no-defaults -uroot --socket="$sock" --batch --raw --skip-column-names "$@"; }
# Start the scenario in a binlog of its own.
sql -e 'FLUSH BINARY LOGS'
first="$(sql -e 'SHOW MASTER STATUS' | cut -f1)"
{ echo "SET timestamp = 1717236000;"; cat dataflows/schema.sql; echo; cat "$scenario_sql"; } | sql
sql -e 'FLUSH BINARY LOGS'
rm -rf "$out"
mkdir -p "$out/expected"
dir="$CDCFLOW_MARIADB_DIR/data"
for f in $(sql -e 'SHOW BINARY LOGS' | cut -f1); do
    # The binlogs of the scenario: from its first file up to the one FLUSH just closed.
    if [[ "$f" > "$first" || "$f" == "$first" ]] && [ "$f" != "$(sql -e 'SHOW MASTER STATUS' | cut -f1)" ]; then
        cp "$dir/$f" "$out/$f" && chmod 644 "$out/$f"
    fi
done
if [ "${CDCFLOW_FIXTURE_EVENTS:-1}" != 0 ]; then
    mariadb-binlog --no-defaults -v --base64-output=decode-rows "$out"/mysql-bin.[0-9]* \
        | grep -v -E '^# at |^#[0-9]{6} |^/\*!|^DELIMITER|^SET @@session|^SET TIMESTAMP' >"$out/events.txt" || true
fi
for v in dataflows/*.sql; do
    view="$(basename "$v" .sql)"
    [ "$view" = schema ] && continue
    sql <"$v" | LC_ALL=C sort >"$out/expected/$view.tsv"
done
if [ "${CDCFLOW_FIXTURE_GZIP:-0}" = 1 ]; then
    gzip -9n "$out"/mysql-bin.[0-9]*
fi
ls -l "$out" "$out/expected" >&2
