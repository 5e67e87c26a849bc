"""Read Floe's tables with an external engine and dump them in the canonical
form (canon.py), one file per table, for integration/engines_test.go to
compare with Floe's own view.

  python read.py --engine pyiceberg|duckdb|duckdb-rest|spark --catalog JSON \
      --out DIR TABLE[:FILTER_JSON] ...

writes DIR/<table>.jsonl (every row), DIR/<table>.filter.jsonl (the rows the
filter selects, when one is given) and DIR/<table>.error instead when the
engine fails on the table. The catalog JSON is described in canon.py.
duckdb reads each table from the metadata file Floe's catalog points to;
duckdb-rest attaches the REST catalog with ATTACH ... (TYPE iceberg).
With --write-namespace NS --write-out DIR2 it then runs write.py's writes in
the same engine session (one Spark start-up instead of two).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canon  # noqa: E402


def sql_literal(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def sql_where(f: dict, engine: str) -> str:
    col = f["column"]
    if f["op"] == "eq":
        return f"{col} = {sql_literal(f['value'])}"
    if f["op"] == "range":
        def lit(s):
            s = s.replace("T", " ").rstrip("Z")
            return f"TIMESTAMPTZ '{s}+00'" if engine.startswith("duckdb") else f"TIMESTAMP '{s}'"
        return f"{col} >= {lit(f['lo'])} AND {col} < {lit(f['hi'])}"
    raise ValueError(f["op"])


def spark_columns(schema) -> str:
    """Spark's own values, but timestamps as microseconds: PySpark cannot
    turn timestamps near year 1 into Python datetimes."""
    from pyiceberg.types import TimestampType, TimestamptzType
    cols = []
    for f in schema.fields:
        if isinstance(f.field_type, (TimestampType, TimestamptzType)):
            cols.append(f"unix_micros(CAST(`{f.name}` AS TIMESTAMP)) AS `{f.name}`")
        else:
            cols.append(f"`{f.name}`")
    return ", ".join(cols)


def pyiceberg_filter(f: dict):
    from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual, LessThan
    if f["op"] == "eq":
        return EqualTo(f["column"], f["value"])
    iso = lambda s: s.rstrip("Z") + "+00:00"  # noqa: E731
    return And(GreaterThanOrEqual(f["column"], iso(f["lo"])), LessThan(f["column"], iso(f["hi"])))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", required=True, choices=["pyiceberg", "duckdb", "duckdb-rest", "spark"])
    ap.add_argument("--catalog", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--write-namespace", help="then write the engine's own tables there (write.py)")
    ap.add_argument("--write-out", help="where write.py's manifest and dumps go")
    ap.add_argument("tables", nargs="+")
    a = ap.parse_args()
    cat = json.loads(a.catalog)
    os.makedirs(a.out, exist_ok=True)

    t0 = time.time()
    pycat = canon.pyiceberg_catalog(cat)
    con = spark = None
    if a.engine.startswith("duckdb"):
        con = canon.duckdb_connect(cat)
        if a.engine == "duckdb-rest":
            con.execute(f"""ATTACH '' AS floe (TYPE iceberg, ENDPOINT '{cat['uri']}', AUTHORIZATION_TYPE 'none')""")
    elif a.engine == "spark":
        spark = canon.spark_session(cat, os.environ["FLOE_ENGINES_SPARK_JARS"])
    setup = time.time() - t0

    for spec in a.tables:
        name, _, fjson = spec.partition(":")
        flt = json.loads(fjson) if fjson else None
        for suffix in (".jsonl", ".filter.jsonl", ".error"):
            try:
                os.remove(os.path.join(a.out, name + suffix))
            except FileNotFoundError:
                pass
        try:
            tbl = pycat.load_table(name)
            schema = tbl.schema()  # the Iceberg types the values are normalised by
            queries = [(".jsonl", None)] + ([(".filter.jsonl", flt)] if flt else [])
            for suffix, f in queries:
                if a.engine == "pyiceberg":
                    scan = tbl.scan(row_filter=pyiceberg_filter(f)) if f else tbl.scan()
                    rows = scan.to_arrow().to_pylist()
                elif con is not None:
                    src = (f"iceberg_scan('{canon.local_path(tbl.metadata_location)}')"
                           if a.engine == "duckdb" else "floe." + name)
                    q = f"SELECT * FROM {src}" + (f" WHERE {sql_where(f, a.engine)}" if f else "")
                    cur = con.execute(q)
                    cols = [d[0] for d in cur.description]
                    rows = [dict(zip(cols, r)) for r in cur.fetchall()]
                else:
                    q = f"SELECT {spark_columns(schema)} FROM floe.{name}" + (f" WHERE {sql_where(f, 'spark')}" if f else "")
                    rows = [r.asDict(recursive=False) for r in spark.sql(q).collect()]
                out = [canon.canon_row(r, schema) for r in rows]
                extra = set(rows[0].keys()) - {fl.name for fl in schema.fields} if rows else set()
                if extra:
                    raise AssertionError(f"columns not in the table's schema: {sorted(extra)}")
                canon.write_rows(os.path.join(a.out, name + suffix), out)
        except Exception as e:  # one table's failure must not hide the others'
            msg = "".join(traceback.format_exception_only(type(e), e)).strip()
            with open(os.path.join(a.out, name + ".error"), "w") as fh:
                fh.write(msg[:4000] + "\n")
            print(f"read.py: {a.engine}: {name}: {msg[:300]}", file=sys.stderr)
    print(f"read.py: {a.engine}: {len(a.tables)} tables in {time.time() - t0:.1f}s (setup {setup:.1f}s)", file=sys.stderr)
    if a.write_namespace:
        import write
        write.run(a.engine, cat, a.write_namespace, a.write_out, spark=spark, pycat=pycat)
    if spark is not None:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
