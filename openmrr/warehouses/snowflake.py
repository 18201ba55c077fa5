"""Run OpenMRR on Snowflake: load DuckDB tables with Snowflake's own bulk path, then build or just keep them.

Two modes (spec/destinations.md):
- `compute`: `copy_sources` loads every table a dbt build reads (schemas `raw` and `quarantine`, and
  `source.import_reports`), then `build` runs `dbt build --target snowflake` in the warehouse;
- `load`: `load_datasets` copies the finished datasets (schema `analytics`) that DuckDB built.

Each table travels as Parquet files that DuckDB writes, `PUT` to a temporary stage and `COPY INTO`
a table created with explicit Snowflake types — what the connector's `write_pandas` does, without a
pandas round trip that would turn decimals into floats. Tables are replaced one by one (Snowflake
DDL commits at once), and each load is checked against DuckDB's row count. Names are upper-case, so
the unquoted names dbt-snowflake writes resolve to them. The connection comes from `SnowflakeTarget`
(the profile's OPENMRR_SNOWFLAKE_* variables), never a file.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from openmrr.errors import ConfigError, OpenMRRError
from openmrr.transform import NodeEvent, run_dbt
from openmrr.warehouses.tables import (
    DATASET_SCHEMA,
    Warehouse,
    build_in_server,
    dataset_tables,
    open_duckdb,
    source_tables,
)

# DuckDB column type -> Snowflake column type; DECIMAL(p, s) maps to NUMBER(p, s) (see snowflake_type).
SNOWFLAKE_TYPES: dict[str, str] = {
    "VARCHAR": "varchar",
    "BOOLEAN": "boolean",
    "SMALLINT": "number(38, 0)",
    "INTEGER": "number(38, 0)",
    "BIGINT": "number(38, 0)",
    "HUGEINT": "number(38, 0)",
    "DATE": "date",
    "TIMESTAMP": "timestamp_ntz",
    "DOUBLE": "float",
}
DEFAULT_FILE_BYTES = 128 * 2**20
# Parquet has no 128-bit integer: DuckDB would write HUGEINT as a double, so it travels as a decimal.
PARQUET_CASTS: dict[str, str] = {"HUGEINT": "decimal(38, 0)"}
PROFILE_VARIABLES = {name: f"OPENMRR_SNOWFLAKE_{name.upper()}" for name in (
    "account", "user", "password", "role", "database", "warehouse", "host", "port", "protocol")}
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


class LoadIncomplete(OpenMRRError):
    """Snowflake loaded a different number of rows than the DuckDB table holds (exit 1)."""

    exit_code = 1


@dataclass(frozen=True)
class SnowflakeTarget:
    """A Snowflake database: the values the profile's `snowflake` output reads from OPENMRR_SNOWFLAKE_*.

    `host`, `port` and `protocol` are only for an endpoint other than the account's own (an emulator
    in the tests); empty, the connector derives the host from `account`."""

    account: str
    user: str
    password: str = field(default="", repr=False)
    role: str = "PUBLIC"
    database: str = "OPENMRR"
    warehouse: str = "OPENMRR"
    host: str = ""
    port: int = 443
    protocol: str = "https"
    login_timeout_seconds: int = 60

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ,
                         variables: Mapping[str, str | None] | None = None) -> SnowflakeTarget:
        """The target the OPENMRR_SNOWFLAKE_* variables name (account and user are required);
        `variables` maps a field (account, user, password, ..., host, port, protocol) to another
        variable's name (destinations.yml's `*_env` settings)."""
        names = {name: (variables or {}).get(name) or default for name, default in PROFILE_VARIABLES.items()}
        values = {name: environ.get(variable) or None for name, variable in names.items()}
        missing = [names[name] for name in ("account", "user") if not values[name]]
        if missing:
            raise ConfigError(f"snowflake: set {' and '.join(missing)} (credentials come only from the environment)")
        port = values["port"] or str(cls.port)
        if not port.isdigit():
            raise ConfigError(f"snowflake: {names['port']} must be a port number, not {port!r}")
        return cls(
            account=str(values["account"]),
            user=str(values["user"]),
            password=values["password"] or "",
            role=values["role"] or cls.role,
            database=values["database"] or cls.database,
            warehouse=values["warehouse"] or cls.warehouse,
            host=values["host"] or cls.host,
            port=int(port),
            protocol=values["protocol"] or cls.protocol,
        )

    def environment(self) -> dict[str, str]:
        """Variables for the dbt invocation (the profile's `snowflake` output reads them)."""
        return {variable: str(getattr(self, name)) for name, variable in PROFILE_VARIABLES.items()}

    def connect(self) -> Any:
        """A connection to the target's database whose session time zone is UTC."""
        import snowflake.connector  # the optional `warehouses` extra

        endpoint = {"host": self.host, "port": self.port, "protocol": self.protocol} if self.host else {}
        try:
            return snowflake.connector.connect(
                account=self.account, user=self.user, password=self.password, role=self.role,
                database=self.database, warehouse=self.warehouse, session_parameters={"TIMEZONE": "UTC"},
                login_timeout=self.login_timeout_seconds, **endpoint,
            )
        except snowflake.connector.errors.Error as error:
            where = f"{self.host}:{self.port}" if self.host else f"account {self.account}"
            raise ConfigError(f"snowflake {where}/{self.database}: cannot connect ({error})") from error


def check(target: SnowflakeTarget) -> str:
    """Reach the target without changing anything (`openmrr destinations test`): what answered."""
    connection = target.connect()
    try:
        version, database = connection.cursor().execute("select current_version(), current_database()").fetchone()
    finally:
        connection.close()
    if database is None:
        raise ConfigError(f"snowflake: database {target.database} does not exist or the role cannot use it")
    where = f"{target.host}:{target.port}" if target.host else f"account {target.account}"
    return f"Snowflake {version} at {where}, database {database}"


def quote(name: str) -> str:
    """A Snowflake identifier for `name` as dbt's unquoted names resolve it: upper-case, quoted."""
    return '"' + name.upper().replace('"', '""') + '"'


def snowflake_type(duckdb_type: str) -> str | None:
    """The Snowflake column type for a DuckDB one, None if there is none."""
    if decimal := _DECIMAL.fullmatch(duckdb_type):
        return f"number({decimal[1]}, {decimal[2]})"
    return SNOWFLAKE_TYPES.get(duckdb_type)


def duckdb_columns(duck: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    """(name, DuckDB type) of a table's columns, in order; an unknown type is an error."""
    columns = duck.execute(
        "select column_name, data_type from information_schema.columns"
        " where table_catalog = current_database() and table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()
    if not columns:
        raise ConfigError(f"{schema}.{table}: no such table in the DuckDB warehouse")
    unknown = [f"{name} {kind}" for name, kind in columns if snowflake_type(kind) is None]
    if unknown:
        raise ConfigError(f"{schema}.{table}: no Snowflake type for column(s) {', '.join(unknown)}")
    return columns


def export_parquet(duck: duckdb.DuckDBPyConnection, schema: str, table: str,
                   columns: Sequence[tuple[str, str]], folder: Path, file_bytes: int) -> int:
    """Write the DuckDB table to Parquet files of about `file_bytes` each in `folder` (Snowflake loads
    files in parallel, best at 100-250 MB); the number of rows written."""
    select = ", ".join(
        f'cast("{name}" as {PARQUET_CASTS[kind]}) as "{name}"' if kind in PARQUET_CASTS else f'"{name}"'
        for name, kind in columns
    )
    duck.execute(f"copy (select {select} from \"{schema}\".\"{table}\") to '{folder}'"
                 f" (format parquet, file_size_bytes {int(file_bytes)})")
    return int(duck.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0])


def copy_table(duck: duckdb.DuckDBPyConnection, cursor: Any, schema: str, table: str, folder: Path,
               file_bytes: int = DEFAULT_FILE_BYTES) -> int:
    """Replace `schema.table` in Snowflake with the DuckDB table's rows (Parquet, PUT, COPY INTO);
    the number of rows loaded, which must equal DuckDB's."""
    columns = duckdb_columns(duck, schema, table)
    files = folder / f"{schema}.{table}"
    expected = export_parquet(duck, schema, table, columns, files, file_bytes)
    name, stage = f"{quote(schema)}.{quote(table)}", f"{quote(schema)}.{quote('openmrr_load')}"
    cursor.execute(f"create schema if not exists {quote(schema)}")
    cursor.execute(f"create or replace table {name} ("
                   + ", ".join(f"{quote(column)} {snowflake_type(kind)}" for column, kind in columns) + ")")
    cursor.execute(f"create temporary stage if not exists {stage}")
    cursor.execute(f"put '{files.as_uri()}/*.parquet' @{stage}/{table} overwrite = true auto_compress = false")
    # use_logical_type: read Parquet's TIMESTAMP and DECIMAL annotations (as write_pandas does)
    results = cursor.execute(
        f"copy into {name} from @{stage}/{table} file_format = (type = parquet use_logical_type = true)"
        " match_by_column_name = case_insensitive purge = true"
    ).fetchall()
    # one row per file: file, status, rows parsed, rows loaded, ...; a bare message when none had rows
    loaded = sum(int(row[3]) for row in results if len(row) > 3)
    if loaded != expected:
        raise LoadIncomplete(f"snowflake {schema}.{table}: {loaded} of DuckDB's {expected} rows loaded ({results})")
    return loaded


def _copy_tables(warehouse: Warehouse, target: SnowflakeTarget,
                 tables: Callable[[duckdb.DuckDBPyConnection], Iterable[tuple[str, str]]],
                 file_bytes: int) -> dict[str, int]:
    with open_duckdb(warehouse) as duck:
        chosen = list(tables(duck))  # unknown datasets fail before anything is sent
        connection = target.connect()
        try:
            with tempfile.TemporaryDirectory(prefix="openmrr-snowflake-") as folder, connection.cursor() as cursor:
                return {f"{schema}.{table}": copy_table(duck, cursor, schema, table, Path(folder), file_bytes)
                        for schema, table in chosen}
        finally:
            connection.close()


def copy_sources(warehouse: Warehouse, target: SnowflakeTarget, file_bytes: int = DEFAULT_FILE_BYTES) -> dict[str, int]:
    """`compute` mode, step 1: load every table a dbt build reads from the DuckDB warehouse into `target`.

    Returns the rows loaded per `schema.table`."""
    return _copy_tables(warehouse, target, source_tables, file_bytes)


def load_datasets(warehouse: Warehouse, target: SnowflakeTarget, datasets: Sequence[str] | None = None,
                  file_bytes: int = DEFAULT_FILE_BYTES) -> dict[str, int]:
    """`load` mode: copy the finished datasets (`analytics.<dataset>`, built by DuckDB; every one when
    None) into the target's schema ANALYTICS. Returns the rows loaded per dataset."""
    copied = _copy_tables(warehouse, target,
                          lambda duck: [(DATASET_SCHEMA, name) for name in dataset_tables(duck, datasets)],
                          file_bytes)
    return {key.removeprefix(f"{DATASET_SCHEMA}."): rows for key, rows in copied.items()}


def build(target: SnowflakeTarget, dbt_vars: dict[str, Any], work_dir: Path, exclude: Sequence[str] = (),
          on_node: Callable[[NodeEvent], None] | None = None, extra: Sequence[str] = ()) -> Any:
    """`compute` mode, step 2: `dbt build --target snowflake` with the settings' vars (minus the
    `exclude` selectors, plus `extra` dbt arguments); dbt's logs and target files go to `work_dir`."""
    return build_in_server("snowflake", target.environment(), dbt_vars, work_dir, exclude, on_node, extra)


def generate_docs(target: SnowflakeTarget, dbt_vars: dict[str, Any], work_dir: Path) -> Path:
    """`dbt docs generate --target snowflake` after a build: the catalog (every table and column as the
    warehouse describes it) and the static site go to `work_dir / "target"`; returns the catalog."""
    work_dir.mkdir(parents=True, exist_ok=True)
    run_dbt("docs generate", work_dir / "snowflake", dbt_vars, ["--target-path", str(work_dir / "target")],
            target="snowflake", environment=target.environment())
    return work_dir / "target" / "catalog.json"
