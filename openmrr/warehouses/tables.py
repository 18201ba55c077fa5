"""The DuckDB side of every server warehouse: which tables to copy and their column types there.

Compute mode copies what a dbt build reads (schemas `raw` and `quarantine`, `source.import_reports`);
load mode copies finished datasets (schema `analytics`). Each warehouse maps DuckDB column types to
its own with a dict; DECIMAL(p,s) keeps its precision and scale everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from openmrr.errors import ConfigError
from openmrr.transform import NodeEvent, run_dbt

DATASET_SCHEMA = "analytics"
SOURCE_SCHEMAS = ("raw", "quarantine")
EXTRA_SOURCE_TABLES = (("source", "import_reports"),)
Warehouse = Path | duckdb.DuckDBPyConnection  # a DuckDB file, or a connection to it already open


@contextmanager
def open_duckdb(warehouse: Warehouse) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB cursor on `warehouse`: a file path (opened and closed here) or the caller's open
    connection (a delivery's, left open)."""
    if isinstance(warehouse, duckdb.DuckDBPyConnection):
        cursor = warehouse.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
        return
    duck = duckdb.connect(str(warehouse))  # not read-only: dbt-duckdb may still hold the file in this process
    try:
        yield duck
    finally:
        duck.close()


def build_in_server(target: str, environment: Mapping[str, str], dbt_vars: dict[str, Any], work_dir: Path,
                    exclude: Sequence[str] = (), on_node: Callable[[NodeEvent], None] | None = None,
                    extra: Sequence[str] = ()) -> Any:
    """`dbt build --target <target>` in a server warehouse with the settings' vars (minus the `exclude`
    selectors, plus `extra` dbt arguments); dbt's logs and target files go to `work_dir`. Always in
    full (`--full-refresh`): the copied sources carry no record of an earlier build there."""
    work_dir.mkdir(parents=True, exist_ok=True)
    arguments = ["--full-refresh", "--target-path", str(work_dir / "target"),
                 *(["--exclude", *exclude] if exclude else []), *extra]
    return run_dbt("build", work_dir / target, dbt_vars, arguments, on_node=on_node, target=target,
                   environment=environment)


def environment_values(environ: Mapping[str, str], defaults: Mapping[str, str],
                       variables: Mapping[str, str | None] | None) -> dict[str, str | None]:
    """Connection values by field: from the variable `variables[field]` names (destinations.yml's
    `*_env` settings) or else the profile's variable in `defaults[field]`; None where it is unset."""
    names = {field: (variables or {}).get(field) or default for field, default in defaults.items()}
    return {field: environ.get(name) for field, name in names.items()}


def source_tables(duck: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(schema, table) of every table a dbt build reads, in a stable order."""
    rows = duck.execute(
        "select table_schema, table_name from information_schema.tables"
        " where table_type = 'BASE TABLE' and table_catalog = current_database()"
        f" and table_schema in ({', '.join('?' for _ in SOURCE_SCHEMAS)}) order by 1, 2",
        list(SOURCE_SCHEMAS),
    ).fetchall()
    present = set(duck.execute(
        "select table_schema, table_name from information_schema.tables where table_catalog = current_database()"
    ).fetchall())
    return [*rows, *(table for table in EXTRA_SOURCE_TABLES if table in present)]


def dataset_tables(duck: duckdb.DuckDBPyConnection, datasets: Sequence[str] | None) -> list[str]:
    """The `analytics` tables to load: `datasets` (each must exist), or every one when None."""
    present = [name for (name,) in duck.execute(
        "select table_name from information_schema.tables where table_catalog = current_database()"
        " and table_schema = ? and table_type = 'BASE TABLE' order by 1", [DATASET_SCHEMA],
    ).fetchall()]
    if datasets is None:
        return present
    missing = [name for name in datasets if name not in present]
    if missing:
        raise ConfigError(f"dataset(s) {', '.join(missing)} not in the warehouse's {DATASET_SCHEMA} schema"
                          f" (it holds: {', '.join(present) or 'nothing; run openmrr run first'})")
    return list(dict.fromkeys(datasets))


def server_type(duckdb_type: str, types: Mapping[str, str]) -> str | None:
    """The server type for a DuckDB column type: `types[duckdb_type]`, DECIMAL(p,s) as decimal(p,s)."""
    if decimal := re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", duckdb_type):
        return f"decimal({decimal[1]}, {decimal[2]})"
    return types.get(duckdb_type)


def duckdb_columns(duck: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    """(name, DuckDB type) of a table's columns, in order."""
    return duck.execute(
        "select column_name, data_type from information_schema.columns"
        " where table_catalog = current_database() and table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()


def server_columns(duck: duckdb.DuckDBPyConnection, schema: str, table: str, types: Mapping[str, str],
                   warehouse_name: str) -> list[tuple[str, str]]:
    """(name, server type) of a DuckDB table's columns, in order; unknown types are an error."""
    columns = [(name, kind, server_type(kind, types)) for name, kind in duckdb_columns(duck, schema, table)]
    unknown = [f"{name} {kind}" for name, kind, mapped in columns if mapped is None]
    if unknown:
        raise ConfigError(f"{schema}.{table}: no {warehouse_name} type for column(s) {', '.join(unknown)}")
    return [(name, str(mapped)) for name, _, mapped in columns]
