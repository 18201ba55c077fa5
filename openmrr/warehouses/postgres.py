"""Build the dbt models on PostgreSQL from a DuckDB warehouse that ingestion and validation filled.

Two modes (destinations.yml): `compute` — `copy_sources` streams every table a dbt build reads
(all of schemas `raw` and `quarantine`, and `source.import_reports`) into PostgreSQL with
`COPY ... FROM STDIN`, replacing the tables there in one transaction, and `build` runs
`dbt build --target postgres` with the account settings; `load` — `load_datasets` copies finished
datasets (schema `analytics`) the same way, for teams who only want the tables.
The connection comes from `PostgresTarget` (the profile's OPENMRR_PG_* variables), never a file.

Text ordering (listagg, tie-breaks) must match DuckDB's byte order: use a database with the C
collation (`initdb --locale=C`, or `create database ... lc_collate 'C' template template0`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import psycopg2
from psycopg2 import sql

from openmrr.errors import ConfigError
from openmrr.transform import NodeEvent
from openmrr.warehouses.tables import (
    DATASET_SCHEMA,
    Warehouse,
    build_in_server,
    dataset_tables,
    environment_values,
    open_duckdb,
    server_columns,
    source_tables,
)

# DuckDB column type -> PostgreSQL column type (the raw layer only holds the first four; DECIMAL(p,s)
# keeps its precision and scale, see server_type).
POSTGRES_TYPES: dict[str, str] = {
    "VARCHAR": "text",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "TIMESTAMP": "timestamp",
    "SMALLINT": "smallint",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "DOUBLE": "double precision",
    "HUGEINT": "numeric(38, 0)",
}
_TEXT_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@dataclass(frozen=True)
class PostgresTarget:
    """A PostgreSQL database: the values the profile's `postgres` output reads from OPENMRR_PG_*."""

    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: str = field(default="", repr=False)
    database: str = "openmrr"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ,
                         variables: Mapping[str, str | None] | None = None) -> PostgresTarget:
        """The target the OPENMRR_PG_* variables name (profile defaults for the missing ones);
        `variables` maps a field (host, port, user, password, database) to another variable's name."""
        values = environment_values(environ, {field: f"OPENMRR_PG_{field.upper()}" for field in
                                              ("host", "port", "user", "password", "database")}, variables)
        try:
            port = int(values["port"] or cls.port)
        except ValueError:
            raise ConfigError(f"postgres port '{values['port']}' is not a number") from None
        return cls(host=values["host"] or cls.host, port=port, user=values["user"] or cls.user,
                   password=values["password"] or "", database=values["database"] or cls.database)

    def environment(self) -> dict[str, str]:
        """Variables for the dbt invocation: the connection, and sessions in UTC (libpq's PGTZ)."""
        return {
            "OPENMRR_PG_HOST": self.host,
            "OPENMRR_PG_PORT": str(self.port),
            "OPENMRR_PG_USER": self.user,
            "OPENMRR_PG_PASSWORD": self.password,
            "OPENMRR_PG_DATABASE": self.database,
            "PGTZ": "UTC",
        }

    def connect(self) -> Any:
        """A psycopg2 connection whose session time zone is UTC."""
        try:
            return psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                                    dbname=self.database, options="-c TimeZone=UTC")
        except psycopg2.OperationalError as error:
            raise ConfigError(f"postgres {self.host}:{self.port}/{self.database}: cannot connect ({error})") from error


class _ChunkReader:
    """A file-like object over an iterator of byte chunks, for `cursor.copy_expert` to read."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = b""
        self._offset = 0  # bytes of _buffer already read: each byte is copied once, not once per read

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) - self._offset < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer, self._offset = self._buffer[self._offset:] + chunk, 0
        end = len(self._buffer) if size < 0 else self._offset + size
        data, self._offset = self._buffer[self._offset:end], min(end, len(self._buffer))
        return data


def _text_value(value: object) -> str:
    """One value in COPY's text format: \\N for null, backslash escapes for the rest."""
    if value is None:
        return "\\N"
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return str(value).translate(_TEXT_ESCAPES)


def _copy_chunks(cursor: duckdb.DuckDBPyConnection, chunk_rows: int) -> Iterator[bytes]:
    """The rows of an executed DuckDB query as COPY text, `chunk_rows` rows per chunk."""
    while rows := cursor.fetchmany(chunk_rows):
        yield "".join("\t".join(map(_text_value, row)) + "\n" for row in rows).encode()


def postgres_columns(duck: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    """(name, PostgreSQL type) of a DuckDB table's columns, in order; unknown types are an error."""
    return server_columns(duck, schema, table, POSTGRES_TYPES, "PostgreSQL")


def copy_table(duck: duckdb.DuckDBPyConnection, pg_cursor: Any, schema: str, table: str,
               chunk_rows: int = 50_000) -> int:
    """Replace `schema.table` in PostgreSQL with the DuckDB table's rows; the number of rows copied."""
    columns = postgres_columns(duck, schema, table)
    name = sql.Identifier(schema, table)
    pg_cursor.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
    pg_cursor.execute(sql.SQL("drop table if exists {}").format(name))
    pg_cursor.execute(sql.SQL("create table {} ({})").format(name, sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL(kind)) for column, kind in columns
    )))
    source = duck.execute(f'select * from "{schema}"."{table}"')
    copy = sql.SQL("copy {} from stdin with (format text)").format(name)
    pg_cursor.copy_expert(copy.as_string(pg_cursor), _ChunkReader(_copy_chunks(source, chunk_rows)), size=1 << 16)
    return int(pg_cursor.rowcount)


def _copy_tables(warehouse: Warehouse, target: PostgresTarget, tables: Callable[[duckdb.DuckDBPyConnection], list],
                 chunk_rows: int) -> dict[str, int]:
    """Copy the (schema, table)s that `tables` picks from the DuckDB file into `target`, in one transaction."""
    with open_duckdb(warehouse) as duck:
        chosen = tables(duck)
        pg = target.connect()
        try:
            with pg, pg.cursor() as cursor:
                return {f"{schema}.{table}": copy_table(duck, cursor, schema, table, chunk_rows)
                        for schema, table in chosen}
        finally:
            pg.close()


def copy_sources(warehouse: Warehouse, target: PostgresTarget, chunk_rows: int = 50_000) -> dict[str, int]:
    """Compute mode: copy every table a dbt build reads from the DuckDB file into `target`, in one
    transaction. Returns the rows copied per `schema.table`."""
    return _copy_tables(warehouse, target, source_tables, chunk_rows)


def load_datasets(warehouse: Warehouse, target: PostgresTarget, datasets: Sequence[str] | None = None,
                  chunk_rows: int = 50_000) -> dict[str, int]:
    """Load mode: replace `analytics.<dataset>` in `target` with the DuckDB warehouse's finished table,
    for every dataset (all of schema `analytics` when None), in one transaction so readers never see a
    half-loaded set. Returns the rows loaded per dataset name."""
    copied = _copy_tables(warehouse, target, lambda duck: [(DATASET_SCHEMA, name)
                                                           for name in dataset_tables(duck, datasets)], chunk_rows)
    return {name.split(".", 1)[1]: rows for name, rows in copied.items()}


def build(target: PostgresTarget, dbt_vars: dict[str, Any], work_dir: Path, exclude: Sequence[str] = (),
          on_node: Callable[[NodeEvent], None] | None = None) -> Any:
    """`dbt build --target postgres` with the settings' vars (minus the `exclude` selectors);
    dbt's logs and target files go to `work_dir`."""
    return build_in_server("postgres", target.environment(), dbt_vars, work_dir, exclude, on_node)
