"""Opening a warehouse that commands read after `openmrr run` built it (explain, report)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import duckdb

from openmrr.errors import ConfigError


def open_built(warehouse: Path, tables: Iterable[tuple[str, str]]) -> duckdb.DuckDBPyConnection:
    """A connection to `warehouse`, or a ConfigError saying to run `openmrr run` first when the file or any
    of `tables` (schema, name) is missing: a warehouse never built, or whose first build failed."""
    if not warehouse.exists():
        raise ConfigError(f"{warehouse}: warehouse not found (run `openmrr run` first)")
    # same configuration as the pipeline's connections: dbt-duckdb may hold the file in this process
    con = duckdb.connect(str(warehouse))
    present = set(con.execute("select table_schema, table_name from information_schema.tables").fetchall())
    missing = [f"{schema}.{table}" for schema, table in tables if (schema, table) not in present]
    if missing:
        con.close()
        raise ConfigError(f"{warehouse}: no analytics tables yet ({', '.join(missing)} missing): run"
                          f" `openmrr run --data DIR --warehouse {warehouse}` first")
    return con
