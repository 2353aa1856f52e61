#!/usr/bin/env python3
"""The one-pass DuckDB baseline of scripts/bench-peers.sh: the shipped outbound views, computed
once from a Debezium JSON-lines file.

It loads the file, keeps the newest version of every row per (table, primary key), runs the
three shipped views (dataflows/*.sql, adapted to DuckDB's dialect below) once and writes their
documents, one JSON line per document, sorted by view and id:

    {"view": V, "id": ID, "doc": {...}}

Semantics kept from cdcflow (src/time.rs, src/decode/debezium.rs, ARCHITECTURE.md):
- A row's version is its source position (binlog file sequence from the numeric suffix of
  `source.file`, "" being 0; `source.pos`; `source.row`, 0 if absent). Per (table, key) the
  greatest version wins, whatever the order of the lines; a delete (`op` d) is a tombstone with
  its version; duplicates (the same version again) change nothing. An update whose primary key
  changed deletes the old key at the same version.
- Lines without `op` (transaction markers, heartbeats) change nothing. Other ops (`t`) and
  messages with schemas are refused: this script reads the schemaless JSON of `cdcflow gen`
  (DECIMAL as strings, DATETIME(3) as epoch milliseconds).
- Text compares and groups as MySQL's utf8mb4_general_ci (case- and accent-insensitive, PAD
  SPACE): a text group key is its folded text (lower-cased, accents stripped, trailing spaces
  cut; DuckDB's lower/strip_accents, equal to cdcflow's key for ASCII and the common accented
  letters), the document id carries that key, and the document shows the smallest spelling by
  bytes among the group's rows (src/sql/collation.rs).
- Decimals are exact: DECIMAL(12,2)/(10,2) columns are DuckDB DECIMALs; SUM of them, and of INT
  x DECIMAL(12,2), has scale 2 as in MySQL; SUM of INT is an integer (MySQL's DECIMAL(32,0)).
  The views divide and round nothing, so MySQL's division rules do not come into it.
- Document ids: the GROUP BY values joined by `|` (`\\` escapes `|` and `\\`, NULL is `\\N`),
  dates as YYYY-MM-DD (src/dataflow/emit.rs).

The adapted queries are only valid for the view and schema texts they were written from: those
texts are kept below and compared (whitespace-insensitively) with the files in --views, and a
difference stops the script, so that a changed view cannot be compared against a stale query.

Timing of the phases goes to stderr as one JSON line (with --stats, to that file as well).
"""

import argparse
import json
import os
import re
import sys
import time
from decimal import Decimal

import duckdb

# The texts the queries below were adapted from.
SCHEMA_SQL = """
CREATE DATABASE orders;
CREATE TABLE orders.orders (
  id BIGINT NOT NULL PRIMARY KEY,
  customer_id BIGINT NOT NULL,
  status ENUM('placed','paid','cancelled') NOT NULL,
  placed_at DATETIME(3) NOT NULL
);
CREATE TABLE orders.order_items (
  id BIGINT NOT NULL PRIMARY KEY,
  order_id BIGINT NOT NULL,
  item_type VARCHAR(64) NOT NULL,
  quantity INT NOT NULL,
  unit_price DECIMAL(12,2) NOT NULL
);
CREATE DATABASE warehouse;
CREATE TABLE warehouse.shipments (
  id BIGINT NOT NULL PRIMARY KEY,
  order_id BIGINT NOT NULL,
  warehouse_id INT NOT NULL,
  status ENUM('picking','packed','shipped','returned') NOT NULL,
  shipped_at DATETIME(3) NULL
);
CREATE DATABASE logistics;
CREATE TABLE logistics.couriers (
  id INT NOT NULL PRIMARY KEY,
  name VARCHAR(64) NOT NULL
);
CREATE TABLE logistics.deliveries (
  id BIGINT NOT NULL PRIMARY KEY,
  shipment_id BIGINT NOT NULL,
  courier_id INT NOT NULL,
  shipping_cost DECIMAL(10,2) NOT NULL,
  dispatched_at DATETIME(3) NOT NULL
);
"""

VIEWS_SQL = {
    "courier_orders": """
SELECT DATE(d.dispatched_at) AS day, c.name AS courier,
       COUNT(DISTINCT s.order_id) AS orders, SUM(d.shipping_cost) AS shipping_cost
FROM logistics.deliveries d
JOIN logistics.couriers c ON c.id = d.courier_id
JOIN warehouse.shipments s ON s.id = d.shipment_id
WHERE s.status = 'shipped'
GROUP BY DATE(d.dispatched_at), c.name
""",
    "units_shipped": """
SELECT DATE(s.shipped_at) AS day, s.warehouse_id, i.item_type, SUM(i.quantity) AS units
FROM warehouse.shipments s
JOIN orders.order_items i ON i.order_id = s.order_id
WHERE s.status = 'shipped'
GROUP BY DATE(s.shipped_at), s.warehouse_id, i.item_type
""",
    "warehouse_cost": """
SELECT DATE(s.shipped_at) AS day, s.warehouse_id, SUM(i.quantity * i.unit_price) AS items_cost
FROM warehouse.shipments s
JOIN orders.order_items i ON i.order_id = s.order_id
JOIN orders.orders o ON o.id = s.order_id
WHERE s.status = 'shipped' AND o.status <> 'cancelled'
GROUP BY DATE(s.shipped_at), s.warehouse_id
""",
}

# Source tables: (db, table) -> [(column, DuckDB type as read from the JSON, SQL to type it)],
# the first column being the primary key. `{c}` is the column as read.
DATETIME_MS = "make_timestamp({c} * 1000)"  # DATETIME(3) without schema: epoch milliseconds
TABLES = {
    ("orders", "orders"): [
        ("id", "BIGINT", "{c}"),
        ("customer_id", "BIGINT", "{c}"),
        ("status", "VARCHAR", "{c}"),
        ("placed_at", "BIGINT", DATETIME_MS),
    ],
    ("orders", "order_items"): [
        ("id", "BIGINT", "{c}"),
        ("order_id", "BIGINT", "{c}"),
        ("item_type", "VARCHAR", "{c}"),
        ("quantity", "INTEGER", "{c}"),
        ("unit_price", "VARCHAR", "CAST({c} AS DECIMAL(12,2))"),
    ],
    ("warehouse", "shipments"): [
        ("id", "BIGINT", "{c}"),
        ("order_id", "BIGINT", "{c}"),
        ("warehouse_id", "INTEGER", "{c}"),
        ("status", "VARCHAR", "{c}"),
        ("shipped_at", "BIGINT", DATETIME_MS),
    ],
    ("logistics", "couriers"): [
        ("id", "BIGINT", "{c}"),
        ("name", "VARCHAR", "{c}"),
    ],
    ("logistics", "deliveries"): [
        ("id", "BIGINT", "{c}"),
        ("shipment_id", "BIGINT", "{c}"),
        ("courier_id", "INTEGER", "{c}"),
        ("shipping_cost", "VARCHAR", "CAST({c} AS DECIMAL(10,2))"),
        ("dispatched_at", "BIGINT", DATETIME_MS),
    ],
}

# The views in DuckDB. Each selects its GROUP BY values (`k_*`, for the document id) and then
# the document's columns in the view's order. `ci(x)` is the utf8mb4_general_ci key of a text.
QUERIES = {
    "courier_orders": """
SELECT CAST(d.dispatched_at AS DATE) AS k_day, ci(c.name) AS k_courier,
       CAST(d.dispatched_at AS DATE) AS day, min(c.name) AS courier,
       COUNT(DISTINCT s.order_id) AS orders, SUM(d.shipping_cost) AS shipping_cost
FROM deliveries d
JOIN couriers c ON c.id = d.courier_id
JOIN shipments s ON s.id = d.shipment_id
WHERE ci(s.status) = 'shipped'
GROUP BY CAST(d.dispatched_at AS DATE), ci(c.name)
""",
    "units_shipped": """
SELECT CAST(s.shipped_at AS DATE) AS k_day, s.warehouse_id AS k_warehouse_id,
       ci(i.item_type) AS k_item_type,
       CAST(s.shipped_at AS DATE) AS day, s.warehouse_id, min(i.item_type) AS item_type,
       SUM(i.quantity) AS units
FROM shipments s
JOIN order_items i ON i.order_id = s.order_id
WHERE ci(s.status) = 'shipped'
GROUP BY CAST(s.shipped_at AS DATE), s.warehouse_id, ci(i.item_type)
""",
    "warehouse_cost": """
SELECT CAST(s.shipped_at AS DATE) AS k_day, s.warehouse_id AS k_warehouse_id,
       CAST(s.shipped_at AS DATE) AS day, s.warehouse_id,
       SUM(i.quantity * i.unit_price) AS items_cost
FROM shipments s
JOIN order_items i ON i.order_id = s.order_id
JOIN orders o ON o.id = s.order_id
WHERE ci(s.status) = 'shipped' AND ci(o.status) <> 'cancelled'
GROUP BY CAST(s.shipped_at AS DATE), s.warehouse_id
""",
}


def squash(sql):
    return " ".join(sql.split())


def check_views(views_dir):
    """Refuses view or schema files other than those the queries were adapted from."""
    problems = []
    if squash(open(os.path.join(views_dir, "schema.sql")).read()) != squash(SCHEMA_SQL):
        problems.append("schema.sql")
    present = sorted(
        f[:-4] for f in os.listdir(views_dir) if f.endswith(".sql") and f != "schema.sql"
    )
    if present != sorted(VIEWS_SQL):
        problems.append(f"the set of views ({', '.join(present)})")
    for name, sql in VIEWS_SQL.items():
        path = os.path.join(views_dir, name + ".sql")
        if os.path.exists(path) and squash(open(path).read()) != squash(sql):
            problems.append(f"{name}.sql")
    if problems:
        sys.exit(
            "duckdb_outbound.py: "
            + ", ".join(problems)
            + f" in {views_dir}: not the text this script's DuckDB queries were adapted "
            "from; adapt QUERIES (and SCHEMA_SQL/VIEWS_SQL) in scripts/peers/duckdb_outbound.py"
        )


def load(con, path):
    """The file -> `ev(db, tbl, k, vf, vp, vr, r)`: one row per key change, `r` NULL for a delete."""
    after_cols = {}
    for cols in TABLES.values():
        assert cols[0][0] == "id", "`before` is read for its `id`: every primary key is `id`"
        for name, typ, _ in cols:
            if after_cols.setdefault(name, typ) != typ:
                raise SystemExit(f"column {name} is read with two types")
    after = "STRUCT(" + ", ".join(f'"{n}" {t}' for n, t in after_cols.items()) + ")"
    columns = {
        "schema": "JSON",
        "payload": "JSON",
        "op": "VARCHAR",
        "before": "STRUCT(id BIGINT)",
        "after": after,
        "source": 'STRUCT(db VARCHAR, "table" VARCHAR, file VARCHAR, pos UBIGINT, "row" UBIGINT)',
    }
    cols_sql = "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"
    con.execute(
        f"""
CREATE TEMP TABLE msg AS
SELECT op, before.id AS old_k, after.id AS new_k, after AS r, source.db AS db,
       source."table" AS tbl,
       CASE WHEN source.file = '' THEN 0
            ELSE TRY_CAST(string_split(source.file, '.')[-1] AS UBIGINT) END AS vf,
       source.pos AS vp, coalesce(source."row", 0) AS vr,
       schema IS NOT NULL OR payload IS NOT NULL AS enveloped
FROM read_json(?, format = 'newline_delimited', columns = {cols_sql})
WHERE op IS NOT NULL OR schema IS NOT NULL OR payload IS NOT NULL
""",
        [path],
    )
    bad = con.execute(
        """
SELECT count(*) FILTER (WHERE enveloped),
       count(*) FILTER (WHERE op NOT IN ('c', 'r', 'u', 'd')),
       count(*) FILTER (WHERE vf IS NULL OR vp IS NULL),
       min(op) FILTER (WHERE op NOT IN ('c', 'r', 'u', 'd'))
FROM msg
"""
    ).fetchone()
    if bad[0]:
        raise SystemExit("messages with schemas are not supported (use `cdcflow gen --schemas off`)")
    if bad[1]:
        raise SystemExit(f"{bad[1]} messages with unsupported op (e.g. `{bad[3]}`)")
    if bad[2]:
        raise SystemExit(f"{bad[2]} messages without a binlog position")
    con.execute(
        """
CREATE TEMP TABLE ev AS
SELECT db, tbl, new_k AS k, vf, vp, vr, r FROM msg WHERE op IN ('c', 'r', 'u')
UNION ALL
SELECT db, tbl, old_k, vf, vp, vr, NULL FROM msg
WHERE op = 'd' OR (op = 'u' AND old_k IS NOT NULL AND old_k <> new_k)
"""
    )
    con.execute("DROP TABLE msg")


def upsert(con):
    """The newest version per (table, key); deleted keys are dropped. One table per source."""
    con.execute(
        """
CREATE TEMP TABLE latest AS
SELECT db, tbl, arg_max_null(r, (vf, vp, vr)) AS r
FROM ev GROUP BY db, tbl, k
"""
    )
    con.execute("DROP TABLE ev")
    for (db, table), cols in TABLES.items():
        select = ", ".join(f'{sql.format(c="r." + name)} AS "{name}"' for name, _, sql in cols)
        con.execute(
            f'CREATE TEMP TABLE "{table}" AS SELECT {select} FROM latest '
            f"WHERE db = '{db}' AND tbl = '{table}' AND r IS NOT NULL"
        )
    con.execute("DROP TABLE latest")


def json_value(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        raise TypeError("unexpected boolean")
    if isinstance(v, (int, Decimal)):
        return str(v)  # a Decimal keeps its scale: 30.00
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if hasattr(v, "isoformat"):
        return json.dumps(v.isoformat().replace("T", " "))
    raise TypeError(f"unexpected value {v!r}")


def id_part(v):
    if v is None:
        return "\\N"
    s = v.isoformat() if hasattr(v, "isoformat") else str(v)
    return s.replace("\\", "\\\\").replace("|", "\\|")


def views(con):
    """Every view's documents as `(view, id, json text of the document)`."""
    docs = []
    for name, sql in QUERIES.items():
        cur = con.execute(sql)
        names = [d[0] for d in cur.description]
        nkeys = sum(1 for n in names if n.startswith("k_"))
        fields = names[nkeys:]
        for row in cur.fetchall():
            doc_id = "|".join(id_part(v) for v in row[:nkeys])
            doc = ",".join(
                f"{json.dumps(f)}:{json_value(v)}" for f, v in zip(fields, row[nkeys:])
            )
            docs.append((name, doc_id, "{" + doc + "}"))
    docs.sort()
    return docs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", help="Debezium JSON-lines file (schemaless)")
    ap.add_argument("--views", default="dataflows", help="schema.sql and the view files")
    ap.add_argument("--out", required=True, help="the documents, as JSON lines")
    ap.add_argument("--stats", help="also write the phase timings here (JSON)")
    ap.add_argument("--threads", type=int, help="DuckDB threads (default: DuckDB's)")
    args = ap.parse_args()

    check_views(args.views)
    t0 = time.perf_counter()
    con = duckdb.connect()
    if args.threads:
        con.execute(f"SET threads = {args.threads}")
    con.execute("SET preserve_insertion_order = false")
    con.execute("CREATE MACRO ci(x) AS rtrim(lower(strip_accents(x)), ' ')")
    load(con, args.input)
    t1 = time.perf_counter()
    upsert(con)
    t2 = time.perf_counter()
    docs = views(con)
    t3 = time.perf_counter()
    with open(args.out, "w") as f:
        for view, doc_id, doc in docs:
            f.write(f'{{"view":{json.dumps(view)},"id":{json.dumps(doc_id)},"doc":{doc}}}\n')
    t4 = time.perf_counter()
    rows = {
        t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for _, t in TABLES
    }
    stats = {
        "duckdb": duckdb.__version__,
        "threads": int(con.execute("SELECT current_setting('threads')").fetchone()[0]),
        "load_s": round(t1 - t0, 3),
        "upsert_s": round(t2 - t1, 3),
        "views_s": round(t3 - t2, 3),
        "write_s": round(t4 - t3, 3),
        "documents": len(docs),
        "live_rows": rows,
    }
    line = json.dumps(stats)
    print(line, file=sys.stderr)
    if args.stats:
        with open(args.stats, "w") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
