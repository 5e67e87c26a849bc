"""The canonical row form of Floe's engines matrix, and how each engine
attaches to Floe's catalog and storage.

The canonical form is the one integration/engines/mkstates writes for Floe's
own view (see its package comment): one JSON object per row keyed by column
name, values normalised by the column's Iceberg type, so that what PyIceberg,
DuckDB and Spark return can be compared with what iceberg-go returns.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import os
import time
import uuid

# Every engine here speaks UTC: Spark converts timestamps to Python in the
# process's local zone.
os.environ["TZ"] = "UTC"
time.tzset()

from pyiceberg import types as T  # noqa: E402

UTC = dt.timezone.utc


def _ts(v, tz: bool) -> str:
    if isinstance(v, str):
        v = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    if isinstance(v, (int,)):  # microseconds since the epoch
        v = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=v)
    if v.tzinfo is not None:
        v = v.astimezone(UTC).replace(tzinfo=None)
    s = f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"
    return s + "Z" if tz else s


def _bytes(v) -> bytes:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, str):
        return base64.b64decode(v)
    raise TypeError(f"not bytes: {type(v)}")


def canon(v, t: T.IcebergType):
    """Convert one value an engine returned, of Iceberg type t."""
    if v is None:
        return None
    if isinstance(t, T.BooleanType):
        return bool(v)
    if isinstance(t, (T.IntegerType, T.LongType)):
        return int(v)
    if isinstance(t, (T.FloatType, T.DoubleType)):
        return float(v)
    if isinstance(t, T.DecimalType):
        with decimal.localcontext() as ctx:
            ctx.prec = 80  # decimal(38, s) exceeds the default 28 digits
            d = v if isinstance(v, decimal.Decimal) else decimal.Decimal(str(v))
            return format(d.quantize(decimal.Decimal(1).scaleb(-t.scale)), "f")
    if isinstance(t, T.StringType):
        return str(v)
    if isinstance(t, T.UUIDType):
        if isinstance(v, uuid.UUID):
            return str(v)
        if isinstance(v, (bytes, bytearray)):
            return str(uuid.UUID(bytes=bytes(v)))
        return str(uuid.UUID(str(v)))
    if isinstance(t, (T.BinaryType, T.FixedType)):
        return _bytes(v).hex()
    if isinstance(t, T.DateType):
        if isinstance(v, dt.datetime):
            v = v.date()
        if isinstance(v, int):
            v = dt.date(1970, 1, 1) + dt.timedelta(days=v)
        return f"{v.year:04d}-{v.month:02d}-{v.day:02d}"
    if isinstance(t, T.TimeType):
        if isinstance(v, int):
            v = (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=v)).time()
        return f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"
    if isinstance(t, T.TimestamptzType):
        return _ts(v, True)
    if isinstance(t, T.TimestampType):
        return _ts(v, False)
    if isinstance(t, T.StructType):
        get = _getter(v)
        return {f.name: canon(get(f.name), f.field_type) for f in t.fields}
    if isinstance(t, T.ListType):
        return [canon(x, t.element_type) for x in v]
    if isinstance(t, T.MapType):
        items = _map_items(v)
        pairs = [[canon(k, t.key_type), canon(x, t.value_type)] for k, x in items]
        pairs.sort(key=lambda p: json.dumps(p[0], sort_keys=True, separators=(",", ":")))
        return pairs
    raise TypeError(f"unsupported Iceberg type {t}")


def _getter(v):
    if isinstance(v, dict):
        return v.get
    if hasattr(v, "asDict"):  # a Spark Row
        d = v.asDict(recursive=False)
        return d.get
    raise TypeError(f"not a struct: {type(v)}")


def _map_items(v):
    if isinstance(v, dict):
        # DuckDB's older MAP form: {"key": [...], "value": [...]}.
        if set(v.keys()) == {"key", "value"} and isinstance(v["key"], list) and isinstance(v["value"], list):
            return list(zip(v["key"], v["value"]))
        return list(v.items())
    # pyarrow's map: a list of (key, value) tuples.
    return [tuple(kv) if not isinstance(kv, dict) else (kv["key"], kv["value"]) for kv in v]


def canon_row(row: dict, schema) -> dict:
    return {f.name: canon(row.get(f.name), f.field_type) for f in schema.fields}


def write_rows(path: str, rows: list[dict]) -> None:
    lines = sorted(json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False) for r in rows)
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")


# ---- catalogs --------------------------------------------------------------
#
# A catalog is given as JSON: {"type": "sqlite"|"postgres"|"rest", "uri": ...,
# "warehouse": "file:///abs" | "s3://bucket/prefix", "name": "floe"}; S3
# settings come from FLOE_S3_ENDPOINT, FLOE_S3_ACCESS_KEY_ID and
# FLOE_S3_SECRET_ACCESS_KEY, as for Floe.


def s3_settings(cat: dict) -> dict | None:
    if not cat["warehouse"].startswith("s3://"):
        return None
    return {
        "endpoint": os.environ["FLOE_S3_ENDPOINT"],
        "key": os.environ["FLOE_S3_ACCESS_KEY_ID"],
        "secret": os.environ["FLOE_S3_SECRET_ACCESS_KEY"],
        "region": "us-east-1",
    }


def pyiceberg_catalog(cat: dict):
    """PyIceberg's catalog for Floe's: the same SQL tables or REST server."""
    props = {"warehouse": cat["warehouse"]}
    s3 = s3_settings(cat)
    if s3:
        props.update({
            "s3.endpoint": s3["endpoint"],
            "s3.access-key-id": s3["key"],
            "s3.secret-access-key": s3["secret"],
            "s3.region": s3["region"],
        })
    name = cat.get("name", "floe")
    if cat["type"] == "sqlite":
        from pyiceberg.catalog.sql import SqlCatalog
        return SqlCatalog(name, uri="sqlite:///" + cat["uri"], **props)
    if cat["type"] == "postgres":
        from pyiceberg.catalog.sql import SqlCatalog
        uri = cat["uri"].replace("postgres://", "postgresql+psycopg2://", 1)
        return SqlCatalog(name, uri=uri, **props)
    if cat["type"] == "rest":
        from pyiceberg.catalog.rest import RestCatalog
        return RestCatalog(name, uri=cat["uri"], **props)
    raise ValueError(f"catalog type {cat['type']}")


def jdbc_url(cat: dict) -> tuple[str, dict]:
    """The JDBC URL (and properties) of Floe's SQL catalog for Java engines."""
    if cat["type"] == "sqlite":
        return "jdbc:sqlite:" + cat["uri"], {}
    if cat["type"] == "postgres":
        from urllib.parse import urlparse
        u = urlparse(cat["uri"])
        return f"jdbc:postgresql://{u.hostname}:{u.port or 5432}{u.path}", {
            "jdbc.user": u.username or "", "jdbc.password": u.password or ""}
    raise ValueError(f"not a SQL catalog: {cat['type']}")


def spark_session(cat: dict, jars: str):
    """A local Spark session with Floe's catalog attached as `floe`."""
    from pyspark.sql import SparkSession
    c = "spark.sql.catalog." + cat.get("name", "floe")
    b = (SparkSession.builder.master("local[1]").appName("floe-engines")
         .config("spark.jars", jars)
         .config("spark.driver.memory", "1g")
         # Small tables: a short-lived JVM, no whole-stage codegen, no AQE.
         .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
         .config("spark.sql.codegen.wholeStage", "false")
         .config("spark.sql.adaptive.enabled", "false")
         .config("spark.driver.host", "127.0.0.1")
         .config("spark.driver.bindAddress", "127.0.0.1")
         .config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false")
         .config("spark.sql.shuffle.partitions", "1")
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.sql.extensions", "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions")
         .config(c, "org.apache.iceberg.spark.SparkCatalog")
         .config(c + ".warehouse", cat["warehouse"]))
    if cat["type"] in ("sqlite", "postgres"):
        url, extra = jdbc_url(cat)
        b = b.config(c + ".type", "jdbc").config(c + ".uri", url).config(c + ".jdbc.schema-version", "V1")
        for k, v in extra.items():
            b = b.config(c + "." + k, v)
    elif cat["type"] == "rest":
        b = b.config(c + ".type", "rest").config(c + ".uri", cat["uri"])
    s3 = s3_settings(cat)
    if s3:
        b = (b.config(c + ".io-impl", "org.apache.iceberg.aws.s3.S3FileIO")
             .config(c + ".s3.endpoint", s3["endpoint"])
             .config(c + ".s3.path-style-access", "true")
             .config(c + ".s3.access-key-id", s3["key"])
             .config(c + ".s3.secret-access-key", s3["secret"])
             .config(c + ".client.region", s3["region"]))
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def duckdb_connect(cat: dict):
    """A DuckDB connection with the iceberg, avro and httpfs extensions loaded
    from their PyPI packages (no download at run time), and an S3 secret for
    MinIO when the warehouse is on S3."""
    import importlib
    import duckdb
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    for ext in ("avro", "httpfs", "iceberg"):
        mod = importlib.import_module("duckdb_extension_" + ext)
        base = os.path.join(os.path.dirname(mod.__file__), "extensions", "v" + duckdb.__version__)
        con.execute(f"LOAD '{os.path.join(base, ext + '.duckdb_extension')}'")
    con.execute("SET TimeZone = 'UTC'")
    s3 = s3_settings(cat)
    if s3:
        host = s3["endpoint"].split("://", 1)[1]
        con.execute(f"""CREATE SECRET floe_s3 (TYPE s3, KEY_ID '{s3['key']}', SECRET '{s3['secret']}',
                        REGION '{s3['region']}', ENDPOINT '{host}', URL_STYLE 'path',
                        USE_SSL {'true' if s3['endpoint'].startswith('https') else 'false'})""")
    return con


def local_path(location: str) -> str:
    """DuckDB wants plain paths for local files."""
    if location.startswith("file://"):
        return location[len("file://"):]
    if location.startswith("file:/"):
        return location[len("file:"):]
    return location
