#!/usr/bin/env python3
"""Compares cdcflow's final documents with the DuckDB baseline's, exactly.

    compare.py CHANGES.jsonl DOCS.jsonl [--max-diffs N]

CHANGES is `cdcflow replay --out` (the change log: `{"view","id","op","time","doc"}` lines),
folded in file order into the final document of each (view, id): an upsert sets it, a delete
removes it. DOCS is scripts/peers/duckdb_outbound.py's `{"view","id","doc"}` lines.

Both sides are read the same way: numbers as exact decimals that keep their written scale (so
`30.00` and `30.0` differ, and `30.00` never equals `30.000000001`), strings, dates as their text
and nulls as they are. A document matches when its id, its field names and every value (type,
and for numbers value and scale) are equal. Exit 0 on a match, 1 with the first differences on
stderr otherwise. Oddities of the change log that do not change the final state (a delete of an
absent document, an upsert repeating the current document) are counted and printed.
"""

import argparse
import json
import sys
from decimal import Decimal


def number(text):
    d = Decimal(text)
    return ("num", d, d.as_tuple().exponent)


def norm(v):
    if isinstance(v, tuple):
        return v
    if isinstance(v, dict):
        return ("obj", tuple(sorted((k, norm(x)) for k, x in v.items())))
    if isinstance(v, list):
        return ("arr", tuple(norm(x) for x in v))
    if v is None:
        return ("null",)
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, str):
        return ("str", v)
    raise TypeError(repr(v))


def loads(line):
    return json.loads(line, parse_float=number, parse_int=number)


def show(v):
    """A document as JSON text, numbers as they were written."""
    if isinstance(v, tuple) and v and v[0] == "num":
        return str(v[1])
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {show(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(show(x) for x in v) + "]"
    return json.dumps(v, ensure_ascii=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("changes")
    ap.add_argument("docs")
    ap.add_argument("--max-diffs", type=int, default=10)
    args = ap.parse_args()

    engine = {}
    stray_deletes = repeated_upserts = changes = 0
    with open(args.changes) as f:
        for line in f:
            c = loads(line)
            changes += 1
            key = (c["view"], c["id"])
            if c["op"] == "upsert":
                if key in engine and norm(engine[key]) == norm(c["doc"]):
                    repeated_upserts += 1
                engine[key] = c["doc"]
            elif c["op"] == "delete":
                if engine.pop(key, None) is None:
                    stray_deletes += 1
            else:
                sys.exit(f"compare.py: unknown op in {args.changes}: {line.strip()}")

    peer = {}
    with open(args.docs) as f:
        for line in f:
            d = loads(line)
            key = (d["view"], d["id"])
            if key in peer:
                sys.exit(f"compare.py: {args.docs} has document {key} twice")
            peer[key] = d["doc"]

    diffs = []
    for key in sorted(set(engine) | set(peer)):
        a, b = engine.get(key), peer.get(key)
        if a is None:
            diffs.append(f"  {key[0]} {key[1]!r}: only DuckDB has it: {show(b)}")
        elif b is None:
            diffs.append(f"  {key[0]} {key[1]!r}: only cdcflow has it: {show(a)}")
        elif norm(a) != norm(b):
            diffs.append(
                f"  {key[0]} {key[1]!r}:\n    cdcflow {show(a)}\n    duckdb  {show(b)}"
            )

    views = sorted({v for v, _ in engine} | {v for v, _ in peer})
    per_view = ", ".join(
        f"{v} {sum(1 for k in engine if k[0] == v)}/{sum(1 for k in peer if k[0] == v)}"
        for v in views
    )
    print(
        f"documents (cdcflow/duckdb): {per_view}; {changes} changes in the change log",
        file=sys.stderr,
    )
    if stray_deletes or repeated_upserts:
        print(
            f"change log oddities: {stray_deletes} deletes of absent documents, "
            f"{repeated_upserts} upserts repeating the current document",
            file=sys.stderr,
        )
    if diffs:
        print(f"MISMATCH: {len(diffs)} documents differ; the first {min(len(diffs), args.max_diffs)}:",
              file=sys.stderr)
        for d in diffs[: args.max_diffs]:
            print(d, file=sys.stderr)
        sys.exit(1)
    print(f"documents match exactly ({len(engine)})", file=sys.stderr)


if __name__ == "__main__":
    main()
