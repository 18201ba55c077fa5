"""Amazon Redshift: build the dbt models there (compute mode) or copy the finished datasets (load mode).

Same shape as `postgres.py`. The connection comes from `RedshiftTarget` (the profile's
OPENMRR_REDSHIFT_* variables), through AWS's own driver, redshift_connector (what dbt-redshift uses).

Bulk path. Redshift loads fast only with `COPY ... FROM 's3://...'`; that needs a bucket and an IAM
role the cluster may assume, so it is opt-in (`S3Staging`): each table is written by DuckDB as a
gzip CSV, uploaded with boto3 and copied in. Without staging (small data, or no bucket) tables go in
with batched multi-row `insert ... values` statements, which need nothing but the connection.

Text columns are `varchar(65535)`: Redshift's `text` is varchar(256) and would cut long values.
DIST and SORT keys are off unless `TableLayout` names them (Redshift picks AUTO).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

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

REDSHIFT_TYPES: dict[str, str] = {
    "VARCHAR": "varchar(65535)",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "SMALLINT": "smallint",
    "TIMESTAMP": "timestamp",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "DOUBLE": "double precision",
    "HUGEINT": "decimal(38, 0)",
}
MAX_PARAMETERS = 30_000  # bind parameters per insert statement (the protocol allows 32767)
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


@dataclass(frozen=True)
class RedshiftTarget:
    """A Redshift database: the values the profile's `redshift` output reads from OPENMRR_REDSHIFT_*."""

    host: str = "127.0.0.1"
    port: int = 5439
    user: str = "openmrr"
    password: str = field(default="", repr=False)
    database: str = "openmrr"
    sslmode: str = "prefer"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ,
                         variables: Mapping[str, str | None] | None = None) -> RedshiftTarget:
        """The target the OPENMRR_REDSHIFT_* variables name (profile defaults for the missing ones);
        `variables` maps a field (host, port, user, password, database, sslmode) to another variable's name."""
        values = environment_values(environ, {field: f"OPENMRR_REDSHIFT_{field.upper()}" for field in
                                              ("host", "port", "user", "password", "database", "sslmode")}, variables)
        try:
            port = int(values["port"] or cls.port)
        except ValueError:
            raise ConfigError(f"redshift port '{values['port']}' is not a number") from None
        target = cls(host=values["host"] or cls.host, port=port, user=values["user"] or cls.user,
                     password=values["password"] or "", database=values["database"] or cls.database,
                     sslmode=values["sslmode"] or cls.sslmode)
        if target.sslmode not in SSL_MODES:
            raise ConfigError(f"redshift sslmode '{target.sslmode}' is not one of: {', '.join(SSL_MODES)}")
        return target

    def environment(self) -> dict[str, str]:
        """Variables for the dbt invocation (the profile's `redshift` output reads them)."""
        return {
            "OPENMRR_REDSHIFT_HOST": self.host,
            "OPENMRR_REDSHIFT_PORT": str(self.port),
            "OPENMRR_REDSHIFT_USER": self.user,
            "OPENMRR_REDSHIFT_PASSWORD": self.password,
            "OPENMRR_REDSHIFT_DATABASE": self.database,
            "OPENMRR_REDSHIFT_SSLMODE": self.sslmode,
        }

    def connect(self) -> Any:
        """A redshift_connector connection (TLS as dbt-redshift sets it up for the same sslmode)."""
        import redshift_connector

        ssl = {"ssl": False} if self.sslmode == "disable" else {
            "ssl": True, "sslmode": "verify-full" if self.sslmode == "verify-full" else "verify-ca"}
        try:
            return redshift_connector.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                                              database=self.database, **ssl)
        except (redshift_connector.InterfaceError, redshift_connector.OperationalError) as error:
            raise ConfigError(f"redshift {self.host}:{self.port}/{self.database}: cannot connect ({error})") from error


@dataclass(frozen=True)
class TableLayout:
    """Optional Redshift physical layout of loaded tables: DISTSTYLE/DISTKEY and a compound SORTKEY
    (applied to every table that has the named columns). Off by default: Redshift's AUTO chooses."""

    diststyle: str | None = None  # auto, even, all, key
    distkey: str | None = None
    sortkey: tuple[str, ...] = ()

    def clause(self, columns: Sequence[str]) -> str:
        parts = []
        if self.diststyle:
            parts.append(f"diststyle {self.diststyle}")
        if self.distkey and self.distkey in columns:
            parts.append(f"distkey({quote(self.distkey)})")
        sort = [column for column in self.sortkey if column in columns]
        if sort:
            parts.append(f"compound sortkey({', '.join(map(quote, sort))})")
        return (" " + " ".join(parts)) if parts else ""


@dataclass(frozen=True)
class S3Staging:
    """Where tables are staged for `COPY ... FROM 's3://...'`: a bucket (and key prefix) the caller's AWS
    credentials may write, and an IAM role ARN the cluster may assume to read it."""

    bucket: str
    iam_role: str
    prefix: str = "openmrr-staging"
    region: str | None = None

    def key(self, schema: str, table: str) -> str:
        return f"{self.prefix.strip('/')}/{schema}.{table}.csv.gz"

    def copy_statement(self, schema: str, table: str, columns: Sequence[str]) -> str:
        """The COPY that reads the staged file: CSV with a header line, \\N for null, gzip."""
        region = f" region '{self.region}'" if self.region else ""
        return (f"copy {quote(schema)}.{quote(table)} ({', '.join(map(quote, columns))})"
                f" from 's3://{self.bucket}/{self.key(schema, table)}' iam_role '{self.iam_role}'"
                f" format as csv ignoreheader 1 null as '\\\\N' gzip timeformat 'auto'{region}")


def quote(identifier: str) -> str:
    """A double-quoted SQL identifier."""
    return '"' + identifier.replace('"', '""') + '"'


def _rows(cursor: duckdb.DuckDBPyConnection, batch_rows: int) -> Iterator[list[tuple]]:
    while rows := cursor.fetchmany(batch_rows):
        yield rows


def _insert_batches(duck: duckdb.DuckDBPyConnection, cursor: Any, schema: str, table: str,
                    columns: Sequence[str], batch_rows: int) -> int:
    """Insert the DuckDB table's rows with multi-row `insert ... values` statements; the rows inserted."""
    rows_per_statement = max(1, min(batch_rows, MAX_PARAMETERS // max(1, len(columns))))
    row_placeholder = "(" + ", ".join("%s" for _ in columns) + ")"
    prefix = f"insert into {quote(schema)}.{quote(table)} ({', '.join(map(quote, columns))}) values "
    source = duck.execute(f"select {', '.join(map(quote, columns))} from {quote(schema)}.{quote(table)}")
    inserted = 0
    for rows in _rows(source, rows_per_statement):
        cursor.execute(prefix + ", ".join(row_placeholder for _ in rows), [value for row in rows for value in row])
        inserted += len(rows)
    return inserted


def export_csv(duck: duckdb.DuckDBPyConnection, schema: str, table: str, path: Path) -> None:
    """Write the DuckDB table as the gzip CSV `S3Staging.copy_statement` reads (header, \\N for null)."""
    duck.execute(f"copy (select * from {quote(schema)}.{quote(table)}) to '{path}'"
                 " (format csv, header true, nullstr '\\N', compression gzip, timestampformat '%Y-%m-%d %H:%M:%S.%f')")


def _copy_from_s3(duck: duckdb.DuckDBPyConnection, cursor: Any, schema: str, table: str, columns: Sequence[str],
                  staging: S3Staging, s3_client: Any) -> int:
    """Stage the table in S3, COPY it in, delete the staged file; the rows loaded."""
    with tempfile.TemporaryDirectory(prefix="openmrr-redshift-") as folder:
        path = Path(folder) / "table.csv.gz"
        export_csv(duck, schema, table, path)
        s3_client.upload_file(str(path), staging.bucket, staging.key(schema, table))
    try:
        cursor.execute(staging.copy_statement(schema, table, columns))
    finally:
        s3_client.delete_object(Bucket=staging.bucket, Key=staging.key(schema, table))
    return int(duck.execute(f"select count(*) from {quote(schema)}.{quote(table)}").fetchone()[0])


def copy_table(duck: duckdb.DuckDBPyConnection, cursor: Any, schema: str, table: str, batch_rows: int = 5_000,
               staging: S3Staging | None = None, s3_client: Any = None, layout: TableLayout = TableLayout()) -> int:
    """Replace `schema.table` in Redshift with the DuckDB table's rows; the number of rows loaded."""
    typed = server_columns(duck, schema, table, REDSHIFT_TYPES, "Redshift")
    columns = [name for name, _ in typed]
    cursor.execute(f"create schema if not exists {quote(schema)}")
    cursor.execute(f"drop table if exists {quote(schema)}.{quote(table)}")
    cursor.execute(f"create table {quote(schema)}.{quote(table)}"
                   f" ({', '.join(f'{quote(name)} {kind}' for name, kind in typed)}){layout.clause(columns)}")
    if staging is not None:
        return _copy_from_s3(duck, cursor, schema, table, columns, staging, s3_client)
    return _insert_batches(duck, cursor, schema, table, columns, batch_rows)


def _copy_tables(warehouse: Warehouse, target: RedshiftTarget, tables: Callable[[duckdb.DuckDBPyConnection], list],
                 batch_rows: int, staging: S3Staging | None, layout: TableLayout) -> dict[str, int]:
    """Copy the (schema, table)s that `tables` picks into `target`, committed together at the end."""
    s3_client = None
    if staging is not None:
        import boto3

        s3_client = boto3.client("s3", region_name=staging.region)
    with open_duckdb(warehouse) as duck:
        chosen = tables(duck)
        connection = target.connect()
        try:
            cursor = connection.cursor()
            copied = {f"{schema}.{table}": copy_table(duck, cursor, schema, table, batch_rows, staging, s3_client,
                                                      layout) for schema, table in chosen}
            connection.commit()
            return copied
        except BaseException:
            connection.rollback()
            raise
        finally:
            connection.close()


def copy_sources(warehouse: Warehouse, target: RedshiftTarget, batch_rows: int = 5_000,
                 staging: S3Staging | None = None, layout: TableLayout = TableLayout()) -> dict[str, int]:
    """Compute mode: load every table a dbt build reads (raw, quarantine, import reports) into `target`
    in one transaction. Returns the rows loaded per `schema.table`."""
    return _copy_tables(warehouse, target, source_tables, batch_rows, staging, layout)


def load_datasets(warehouse: Warehouse, target: RedshiftTarget, datasets: Sequence[str] | None = None,
                  batch_rows: int = 5_000, staging: S3Staging | None = None,
                  layout: TableLayout = TableLayout()) -> dict[str, int]:
    """Load mode: replace `analytics.<dataset>` in `target` with the DuckDB warehouse's finished tables
    (every dataset when None), in one transaction. Returns the rows loaded per dataset name."""
    copied = _copy_tables(warehouse, target, lambda duck: [(DATASET_SCHEMA, name)
                                                           for name in dataset_tables(duck, datasets)],
                          batch_rows, staging, layout)
    return {name.split(".", 1)[1]: rows for name, rows in copied.items()}


def build(target: RedshiftTarget, dbt_vars: dict[str, Any], work_dir: Path, exclude: Sequence[str] = (),
          on_node: Callable[[NodeEvent], None] | None = None) -> Any:
    """`dbt build --target redshift` with the settings' vars (minus the `exclude` selectors);
    dbt's logs and target files go to `work_dir`."""
    return build_in_server("redshift", target.environment(), dbt_vars, work_dir, exclude, on_node)
