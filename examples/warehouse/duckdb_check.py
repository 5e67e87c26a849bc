"""DuckDB over the warehouse example's tables: the batch cross-check.

  python examples/warehouse/duckdb_check.py --catalog LAKE/catalog.db --warehouse LAKE/warehouse \
      SPEC.sql[=FLOE_TABLE] SPEC.yaml[=FLOE_TABLE] ...

Loads every table of the catalog's namespaces ods, dwd, dws and ads with
PyIceberg (position deletes applied) into DuckDB under the same names, with
the session time zone UTC, runs each SQL file's text unchanged, and prints
its row count and first rows. With =FLOE_TABLE it compares the rows with
the table Floe wrote (the SQL's columns, values normalised: numbers as
decimals, times in UTC) and exits 1 on a difference; FLOE_TABLE may end
in a WHERE clause. Needs pyiceberg and duckdb (integration/engines/setup.sh
installs both into its venv).

A YAML spec is a floe transform spec (dwd/order_detail.yaml): DuckDB runs
its `sql:` text unchanged, but as floe transform defines the join, so
that the rows can be equal: the rows each snapshot of the FROM table added
(in commit order), with each JOINed table as of that snapshot's commit
time (its newest snapshot committed at or before it, read by time travel),
and the spec's `dedup:` applied (the first row per key within the window).
"""

from __future__ import annotations

import argparse
import datetime
import decimal
import re
import sys

import pyarrow as pa
import pyarrow.parquet as pq

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


def yaml_spec(path):
    """The sql: block and dedup: of a transform spec (the subset of YAML
    the example's specs use: a literal block and a flow mapping)."""
    lines = open(path).read().splitlines()
    sql, dedup = None, None
    for i, line in enumerate(lines):
        if re.match(r"sql:\s*\|", line):
            block = []
            for nxt in lines[i + 1 :]:
                if nxt.strip() and not nxt.startswith((" ", "\t")):
                    break
                block.append(nxt)
            sql = "\n".join(block)
        m = re.match(r"dedup:\s*\{key:\s*\[([^\]]*)\],\s*time:\s*(\w+),\s*window:\s*(\d+)([smhd])\}", line)
        if m:
            unit = {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(4)]
            dedup = ([k.strip() for k in m.group(1).split(",")], m.group(2), datetime.timedelta(seconds=int(m.group(3)) * unit))
        elif line.startswith("dedup:"):
            raise SystemExit(f"{path}: dedup: not in the form {{key: [...], time: col, window: 1h}}")
    if sql is None:
        raise SystemExit(f"{path}: no sql: | block")
    return sql, dedup


def newest_at(tbl, ts_ms):
    """The snapshot of tbl current at ts_ms: the newest committed at or
    before it (None before the first)."""
    best = None
    for s in tbl.metadata.snapshots:
        if s.timestamp_ms <= ts_ms and (best is None or (s.timestamp_ms, s.sequence_number) > (best.timestamp_ms, best.sequence_number)):
            best = s
    return best


def run_as_of(cat, con, text, dedup):
    """Runs text as floe transform does: per source snapshot, with the
    dimensions as of its commit time; returns the columns and rows."""
    fact = re.search(r"\bFROM\s+([A-Za-z_]\w*\.[A-Za-z_]\w*)", text, re.I).group(1)
    dims = sorted(set(re.findall(r"\bJOIN\s+([A-Za-z_]\w*\.[A-Za-z_]\w*)", text, re.I)))
    ft = cat.load_table(fact)
    dts = {d: cat.load_table(d) for d in dims}
    schema = ft.schema().as_arrow()
    cache, cols, out = {}, None, []
    snaps = sorted(ft.metadata.snapshots, key=lambda s: s.sequence_number)
    for snap in snaps:
        paths = []
        for mf in snap.manifests(ft.io):
            if mf.added_snapshot_id != snap.snapshot_id:
                continue
            for e in mf.fetch_manifest_entry(ft.io):
                if e.status.name == "ADDED" and e.data_file.content.name == "DATA":
                    paths.append(e.data_file.file_path)
        if not paths:
            continue
        rows = pa.concat_tables([pq.read_table(p.removeprefix("file://")) for p in paths]).select(schema.names).cast(schema)
        for d, dt in dts.items():
            v = newest_at(dt, snap.timestamp_ms)
            key = (d, v.snapshot_id if v else None)
            if key not in cache:
                cache[key] = dt.scan(snapshot_id=v.snapshot_id).to_arrow() if v else dt.schema().as_arrow().empty_table()
            con.register("_t", cache[key])
            con.execute(f"CREATE OR REPLACE TABLE {d} AS SELECT * FROM _t")
            con.unregister("_t")
        con.register("_t", rows)
        con.execute(f"CREATE OR REPLACE TABLE {fact} AS SELECT * FROM _t")
        con.unregister("_t")
        rel = con.sql(text)
        cols = rel.columns
        out.extend(rel.fetchall())
    if dedup:
        keys, tcol, window = dedup
        ki, ti = [cols.index(k) for k in keys], cols.index(tcol)
        kept, deduped = {}, []
        for r in out:
            k = tuple(r[i] for i in ki)
            if k in kept and abs(r[ti] - kept[k]) < window:
                continue
            kept[k] = r[ti]
            deduped.append(r)
        print(f"  dedup dropped {len(out) - len(deduped)} of {len(out)} rows")
        out = deduped
    versions = ", ".join(f"{d} {len([k for k in cache if k[0] == d])}" for d in dims)
    print(f"  snapshots of {fact}: {len(snaps)}; versions joined: {versions}")
    return cols, out


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
    loaded = {}
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
            loaded[name] = arrow
            print(f"loaded {name}: {arrow.num_rows} rows")
    failed = False
    for spec in a.specs:
        path, _, floe_table = spec.partition("=")
        if path.endswith((".yaml", ".yml")):
            text, dedup = yaml_spec(path)
            print(f"\n{path}: the sql: text per source snapshot, its joins as of the snapshot's commit")
            cols, rows = run_as_of(cat, con, text, dedup)
            # Back to the tables as they are now.
            for name, arrow in loaded.items():
                con.register("_t", arrow)
                con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _t")
                con.unregister("_t")
        else:
            rel = con.sql(open(path).read())
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
