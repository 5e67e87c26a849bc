"""DuckDB over the warehouse example's tables: the batch cross-check.

  python examples/warehouse/duckdb_check.py --catalog LAKE/catalog.db --warehouse LAKE/warehouse \
      SPEC.sql[=FLOE_TABLE] ...

Loads every table of the catalog's namespaces ods and dwd with PyIceberg
(position deletes applied) into DuckDB under the same names, with the
session time zone UTC, runs each SQL file's text unchanged, and prints its
row count and first rows. With =FLOE_TABLE it compares the rows with the
table Floe wrote (the SQL's columns, values normalised: numbers as
decimals, times in UTC) and exits 1 on a difference. Needs pyiceberg and
duckdb (integration/engines/setup.sh installs both into its venv).
"""

from __future__ import annotations

import argparse
import datetime
import decimal
import sys

import duckdb
from pyiceberg.catalog.sql import SqlCatalog


def norm(v):
    if isinstance(v, (int, float, decimal.Decimal)) and not isinstance(v, bool):
        d = decimal.Decimal(str(v)).normalize()
        return format(d, "f")
    if isinstance(v, datetime.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return v.isoformat()
    if isinstance(v, datetime.date):
        return v.isoformat()
    return v


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--catalog", required=True, help="the SQLite catalog file")
    ap.add_argument("--warehouse", required=True)
    ap.add_argument("--rows", type=int, default=5, help="rows to print per query")
    ap.add_argument("specs", nargs="+")
    a = ap.parse_args()
    cat = SqlCatalog("floe", uri=f"sqlite:///{a.catalog}", warehouse=a.warehouse)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for ns in ("ods", "dwd", "dws", "ads"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {ns}")
        try:
            tables = cat.list_tables(ns)
        except Exception:  # noqa: BLE001 - a namespace not created yet
            continue
        for ident in tables:
            name = ".".join(ident)
            arrow = cat.load_table(name).scan().to_arrow()
            con.register("_t", arrow)
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _t")
            con.unregister("_t")
            print(f"loaded {name}: {arrow.num_rows} rows")
    failed = False
    for spec in a.specs:
        path, _, floe_table = spec.partition("=")
        text = open(path).read()
        rel = con.sql(text)
        cols = rel.columns
        rows = rel.fetchall()
        print(f"\n{path}: {len(rows)} rows; first {min(a.rows, len(rows))}:")
        print("  " + " | ".join(cols))
        for r in rows[: a.rows]:
            print("  " + " | ".join(str(norm(v)) for v in r))
        if floe_table:
            got = con.sql(f"SELECT {', '.join(cols)} FROM {floe_table}").fetchall()
            want = sorted(tuple(norm(v) for v in r) for r in rows)
            got = sorted(tuple(norm(v) for v in r) for r in got)
            if want == got:
                print(f"  = {floe_table}: the same {len(got)} rows")
            else:
                failed = True
                ws, gs = set(want), set(got)
                print(f"  ≠ {floe_table}: DuckDB {len(want)} rows, Floe {len(got)}")
                for r in sorted(ws - gs)[:5]:
                    print(f"    only DuckDB: {r}")
                for r in sorted(gs - ws)[:5]:
                    print(f"    only Floe:   {r}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
