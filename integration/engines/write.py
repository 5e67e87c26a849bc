"""The other direction: an external engine writes tables into Floe's catalog
(appends, row-level deletes and updates, schema changes) and dumps its own
view of them in the canonical form, for integration/engines_test.go to
compare with what Floe's reader (mkstates dump) returns.

  python write.py --engine spark|pyiceberg --catalog JSON --namespace NS --out DIR

(read.py --write-namespace runs the same in its engine session.)

writes DIR/manifest.json ({"tables": [{"table", "state", "notes"}]}) and
DIR/<table>.jsonl.
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canon  # noqa: E402

UTC = dt.timezone.utc
BASE = dt.datetime(2026, 3, 1, tzinfo=UTC)


def spark_rows(lo: int, hi: int, extra: bool = False, renamed: bool = False, dropped: bool = False) -> str:
    vals = []
    for i in range(lo, hi):
        ts = (BASE + dt.timedelta(hours=i, microseconds=i)).strftime("%Y-%m-%d %H:%M:%S.%f")
        name = "NULL" if i % 6 == 0 else f"'n{i}'"
        cols = [str(i), name, f"TIMESTAMP '{ts}'", f"TIMESTAMP_NTZ '{ts}'",
                "NULL" if i % 7 == 0 else f"CAST({i * 3}.{i % 100:02d} AS DECIMAL(12,2))",
                "NULL" if i % 4 == 0 else f"array('a{i}', NULL)"]
        if not dropped:
            cols.append("NULL" if i % 3 == 0 else f"map('k', 'v{i}')")
        cols.append("NULL" if i % 5 == 0 else f"named_struct('a', {i}, 'b', 'b{i}')")
        if extra:
            cols.append(f"{i}.5D")
        vals.append("(" + ", ".join(cols) + ")")
    return ", ".join(vals)


def write_spark(spark, ns: str) -> list[dict]:
    sql = spark.sql
    sql(f"CREATE NAMESPACE IF NOT EXISTS floe.{ns}")
    tables = []
    for mode in ("merge-on-read",):
        t = f"{ns}.spark_{mode.replace('-', '_')}"
        sql(f"""CREATE TABLE floe.{t} (id BIGINT NOT NULL, name STRING, ts TIMESTAMP, ts_ntz TIMESTAMP_NTZ,
                amount DECIMAL(12,2), tags ARRAY<STRING>, attrs MAP<STRING,STRING>, st STRUCT<a: INT, b: STRING>)
                USING iceberg PARTITIONED BY (days(ts), bucket(2, id))
                TBLPROPERTIES ('format-version'='2', 'write.delete.mode'='{mode}',
                               'write.update.mode'='{mode}', 'write.merge.mode'='{mode}')""")
        sql(f"INSERT INTO floe.{t} VALUES {spark_rows(0, 20)}")
        sql(f"INSERT INTO floe.{t} VALUES {spark_rows(20, 40)}")
        sql(f"DELETE FROM floe.{t} WHERE id % 5 = 0")
        sql(f"UPDATE floe.{t} SET name = concat(coalesce(name, ''), '-upd'), amount = amount * 2 WHERE id < 8")
        sql(f"ALTER TABLE floe.{t} ADD COLUMN extra DOUBLE")
        sql(f"INSERT INTO floe.{t} VALUES {spark_rows(40, 50, extra=True)}")
        sql(f"ALTER TABLE floe.{t} RENAME COLUMN name TO title")
        sql(f"ALTER TABLE floe.{t} DROP COLUMN attrs")
        sql(f"INSERT INTO floe.{t} VALUES {spark_rows(50, 60, extra=True, dropped=True)}")
        sql(f"""MERGE INTO floe.{t} d USING (SELECT id, 'merged' AS title FROM floe.{t} WHERE id IN (41, 51)
                UNION ALL SELECT 999 AS id, 'inserted' AS title) s ON d.id = s.id
                WHEN MATCHED THEN UPDATE SET d.title = s.title
                WHEN NOT MATCHED THEN INSERT (id, title) VALUES (s.id, s.title)""")
        files = sql(f"SELECT content, count(*) AS n FROM floe.{t}.files GROUP BY content ORDER BY content").collect()
        kinds = ", ".join(f"{r['n']} {['data', 'position delete', 'equality delete'][r['content']]} files" for r in files)
        tables.append({"table": t, "state": f"spark_{mode.replace('-', '_')}",
                       "notes": f"Spark {mode}: 2 inserts, DELETE, UPDATE, ADD COLUMN, RENAME COLUMN, DROP COLUMN, MERGE INTO; {kinds}"})
    return tables


def dump_spark(spark, pycat, t: str, out: str) -> None:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from read import spark_columns
    schema = pycat.load_table(t).schema()
    rows = [r.asDict(recursive=False) for r in spark.sql(f"SELECT {spark_columns(schema)} FROM floe.{t}").collect()]
    canon.write_rows(os.path.join(out, t + ".jsonl"), [canon.canon_row(r, schema) for r in rows])


def write_pyiceberg(pycat, ns: str) -> list[dict]:
    import pyarrow as pa
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import BucketTransform, DayTransform
    from pyiceberg.types import (DecimalType, DoubleType, ListType, LongType, MapType, NestedField,
                                 StringType, StructType, IntegerType, TimestampType, TimestamptzType, UUIDType)
    import uuid

    pycat.create_namespace_if_not_exists(ns)
    t = f"{ns}.pyiceberg_rows"
    schema = Schema(
        NestedField(1, "id", LongType(), required=True),
        NestedField(2, "name", StringType()),
        NestedField(3, "ts", TimestamptzType()),
        NestedField(4, "ts_ntz", TimestampType()),
        NestedField(5, "amount", DecimalType(12, 2)),
        NestedField(6, "tags", ListType(7, StringType(), element_required=False)),
        NestedField(8, "attrs", MapType(9, StringType(), 10, StringType(), value_required=False)),
        NestedField(11, "st", StructType(NestedField(12, "a", IntegerType()), NestedField(13, "b", StringType()))),
        NestedField(14, "u", UUIDType()),
    )
    spec = PartitionSpec(PartitionField(3, 1000, DayTransform(), "ts_day"), PartitionField(1, 1001, BucketTransform(4), "id_bucket"))
    tbl = pycat.create_table(t, schema, partition_spec=spec, properties={"format-version": "2"})

    def rows(lo, hi, extra=False, renamed=False, dropped=False):
        out = []
        for i in range(lo, hi):
            ts = BASE + dt.timedelta(hours=i, microseconds=i)
            r = {"id": i, ("title" if renamed else "name"): None if i % 6 == 0 else f"n{i}", "ts": ts,
                 "ts_ntz": ts.replace(tzinfo=None),
                 "amount": None if i % 7 == 0 else decimal.Decimal(f"{i * 3}.{i % 100:02d}"),
                 "st": None if i % 5 == 0 else {"a": i, "b": f"b{i}"},
                 "u": None if i % 8 == 0 else uuid.uuid5(uuid.NAMESPACE_OID, str(i)).bytes}
            if not dropped:
                r["tags"] = None if i % 4 == 0 else [f"a{i}", None]
            r["attrs"] = None if i % 3 == 0 else [("k", f"v{i}")]
            if extra:
                r["extra"] = i + 0.5
            out.append(r)
        return out

    def append(rs):
        cur = pycat.load_table(t)
        cur.append(pa.Table.from_pylist(rs, schema=cur.schema().as_arrow()))

    append(rows(0, 20))
    append(rows(20, 40))
    pycat.load_table(t).delete(delete_filter="id < 5")
    with pycat.load_table(t).update_schema() as u:
        u.add_column("extra", DoubleType())
    append(rows(40, 50, extra=True))
    with pycat.load_table(t).update_schema() as u:
        u.rename_column("name", "title")
    with pycat.load_table(t).update_schema() as u:
        u.delete_column("tags")
    append(rows(50, 60, extra=True, renamed=True, dropped=True))
    pycat.load_table(t).delete(delete_filter="id >= 55 and id < 58")
    return [{"table": t, "state": "pyiceberg_rows",
             "notes": "PyIceberg: 2 appends, delete, add column, rename, drop column, append, delete"}]


def run(engine: str, cat: dict, ns: str, out: str, spark=None, pycat=None) -> list[dict]:
    """Write the engine's tables into namespace ns and dump its own view of
    them into out; returns the manifest entries."""
    os.makedirs(out, exist_ok=True)
    t0 = time.time()
    pycat = pycat or canon.pyiceberg_catalog(cat)
    if engine == "spark":
        own = spark is None
        if own:
            spark = canon.spark_session(cat, os.environ["FLOE_ENGINES_SPARK_JARS"])
        tables = write_spark(spark, ns)
        for e in tables:
            dump_spark(spark, pycat, e["table"], out)
        if own:
            spark.stop()
    else:
        tables = write_pyiceberg(pycat, ns)
        for e in tables:
            tbl = pycat.load_table(e["table"])
            rows = tbl.scan().to_arrow().to_pylist()
            canon.write_rows(os.path.join(out, e["table"] + ".jsonl"), [canon.canon_row(r, tbl.schema()) for r in rows])
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"tables": tables}, f, indent=2)
    for e in tables:
        print(f"write.py: {engine}: {e['table']}: {e['notes']}", file=sys.stderr)
    print(f"write.py: {engine}: {len(tables)} tables in {time.time() - t0:.1f}s", file=sys.stderr)
    return tables


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", required=True, choices=["pyiceberg", "spark"])
    ap.add_argument("--catalog", required=True)
    ap.add_argument("--namespace", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    run(a.engine, json.loads(a.catalog), a.namespace, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
