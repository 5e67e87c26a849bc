"""Run one DuckDB query (read from a file) and write its rows, one per line,
as their values joined by "|" (None as null), for a Go test to compare.

  python duckdb_query.py QUERY.sql OUT.txt
"""

from __future__ import annotations

import sys

import duckdb


def main() -> None:
    query = open(sys.argv[1], encoding="utf-8").read()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rows = con.execute(query).fetchall()
    with open(sys.argv[2], "w", encoding="utf-8") as out:
        for row in rows:
            out.write("|".join("null" if v is None else str(v) for v in row) + "\n")


if __name__ == "__main__":
    main()
