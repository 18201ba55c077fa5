"""Warehouse destinations (spec/destinations.md): the same datasets inside a user's warehouse.

`mode: compute` copies the tables a dbt build reads (raw, quarantine, import report) into the
warehouse and runs `dbt build --target <type>` there with the settings the embedded build recorded in
`int_build_settings`, so the warehouse computes exactly the embedded warehouse's datasets on its own
engine. `mode: load` copies the finished datasets. `duckdb` is the embedded warehouse itself; with a
`path`, load mode copies the datasets into that DuckDB file.

Each delivery record gives the dataset's rows and the order-independent checksum of the DuckDB table
(`openmrr.warehouses.checksum`), so what a warehouse holds can be checked against the log.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from openmrr.destinations.base import Delivery, DeliveryContext
from openmrr.destinations.config import ANALYTICS_DATASETS
from openmrr.destinations.warehouse_settings import (
    BigQuerySettings,
    DuckDBSettings,
    PostgresSettings,
    RedshiftSettings,
    SnowflakeSettings,
    WarehouseSettings,
)
from openmrr.errors import ConfigError
from openmrr.warehouses.checksum import table_checksum
from openmrr.warehouses.tables import DATASET_SCHEMA

BUILD_SETTINGS = "analytics_internal.int_build_settings"


def connection_variables(settings: WarehouseSettings) -> dict[str, str | None]:
    """Target field -> the environment variable destinations.yml names for it (`host_env` -> host)."""
    return {key.removesuffix("_env"): value for key, value in settings.model_dump().items()
            if key.endswith("_env")}


def build_settings(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The dbt vars the embedded build ran with; ConfigError for a warehouse built before they were recorded."""
    try:
        (dbt_vars,) = con.execute(f"select dbt_vars from {BUILD_SETTINGS}").fetchone()
    except (duckdb.CatalogException, TypeError):
        raise ConfigError(f"{BUILD_SETTINGS} not found: run `openmrr run` to refresh the warehouse first") from None
    return json.loads(dbt_vars)


def warehouse_file(con: duckdb.DuckDBPyConnection) -> Path:
    """The DuckDB file behind a connection (dbt's work files for a destination go beside it)."""
    (path,) = con.execute("select path from duckdb_databases() where database_name = current_database()").fetchone()
    return Path(path)


def dataset_records(context: DeliveryContext, rows: dict[str, int], started_at: datetime,
                    location: str) -> list[Delivery]:
    """One `delivered` record per dataset: rows in the target, checksum of the DuckDB table."""
    records = []
    cursor = context.connection.cursor()
    try:
        for dataset in context.datasets:
            columns = [name for (name,) in cursor.execute(
                "select column_name from information_schema.columns where table_catalog = current_database()"
                " and table_schema = ? and table_name = ? order by ordinal_position",
                [DATASET_SCHEMA, dataset]).fetchall()]
            checksum = table_checksum(cursor, f'"{DATASET_SCHEMA}"."{dataset}"', columns)
            records.append(Delivery(context.destination, dataset, context.run_id, "delivered",
                                    rows.get(dataset, checksum.rows), 0, checksum.digest, started_at,
                                    datetime.now(UTC), location=f"{location}/{DATASET_SCHEMA}.{dataset}"))
    finally:
        cursor.close()
    return records


@dataclass(frozen=True)
class ServerWarehouse:
    """A warehouse reached over the network: its module in `openmrr.warehouses` and target class."""

    name: str
    Settings: type[WarehouseSettings]
    module: str
    target_class: str
    OPTIONAL_ENV: tuple[str, ...] = ()  # the profile's variables, read when destinations.yml names none
    DATASETS: tuple[str, ...] = field(default=ANALYTICS_DATASETS)

    def _module(self) -> Any:
        return importlib.import_module(self.module)

    def target(self, settings: WarehouseSettings, environ: dict[str, str]) -> Any:
        target_class = getattr(self._module(), self.target_class)
        return target_class.from_environment(environ, connection_variables(settings))

    def deliver(self, settings: WarehouseSettings, context: DeliveryContext) -> list[Delivery]:
        started_at = datetime.now(UTC)
        module, target = self._module(), self.target(settings, dict(context.environ))
        if settings.mode == "load":
            rows = module.load_datasets(context.connection, target, list(context.datasets))
        else:
            dbt_vars = build_settings(context.connection)
            module.copy_sources(context.connection, target)
            work_dir = warehouse_file(context.connection).parent / "destinations" / context.destination
            module.build(target, dbt_vars, work_dir)
            rows = {}
        return dataset_records(context, rows, started_at, f"{self.name}:{settings.mode}")

    def check(self, settings: WarehouseSettings, environ: dict[str, str]) -> str:
        """Reach the warehouse without changing anything (`openmrr destinations test`)."""
        module, target = self._module(), self.target(settings, environ)
        if hasattr(module, "check"):
            return module.check(target)
        connection = target.connect()
        try:
            cursor = connection.cursor()
            cursor.execute("select version()")
            (version,) = cursor.fetchone()
        finally:
            connection.close()
        return f"{self.name}: connected ({version})"


@dataclass(frozen=True)
class EmbeddedDuckDB:
    """The embedded warehouse: compute mode is the refresh itself; load mode copies into `path`."""

    Settings: type[WarehouseSettings] = DuckDBSettings
    DATASETS: tuple[str, ...] = ANALYTICS_DATASETS

    def deliver(self, settings: DuckDBSettings, context: DeliveryContext) -> list[Delivery]:
        started_at = datetime.now(UTC)
        if settings.mode == "compute" or settings.path is None:
            return dataset_records(context, {}, started_at, "duckdb:embedded")
        target = Path(settings.path).resolve()
        if target == warehouse_file(context.connection).resolve():
            raise ConfigError(f"destination '{context.destination}': path {target} is the embedded warehouse itself")
        target.parent.mkdir(parents=True, exist_ok=True)
        con = context.connection
        con.execute("attach ? as delivery_target", [str(target)])
        try:
            con.execute(f"create schema if not exists delivery_target.{DATASET_SCHEMA}")
            rows = {}
            for dataset in context.datasets:
                con.execute(f"create or replace table delivery_target.{DATASET_SCHEMA}.{dataset} as"
                            f" select * from {DATASET_SCHEMA}.{dataset}")
                (rows[dataset],) = con.execute(
                    f"select count(*) from delivery_target.{DATASET_SCHEMA}.{dataset}").fetchone()
        finally:
            con.execute("detach delivery_target")
        return dataset_records(context, rows, started_at, f"duckdb:{target}")


def _profile_env(prefix: str, fields: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"{prefix}{name.upper()}" for name in fields)


duckdb_type = EmbeddedDuckDB()
postgres = ServerWarehouse("postgres", PostgresSettings, "openmrr.warehouses.postgres", "PostgresTarget",
                           _profile_env("OPENMRR_PG_", ("host", "port", "user", "password", "database")))
redshift = ServerWarehouse("redshift", RedshiftSettings, "openmrr.warehouses.redshift", "RedshiftTarget",
                           _profile_env("OPENMRR_REDSHIFT_", ("host", "port", "user", "password", "database",
                                                              "sslmode")))
snowflake = ServerWarehouse("snowflake", SnowflakeSettings, "openmrr.warehouses.snowflake", "SnowflakeTarget",
                            _profile_env("OPENMRR_SNOWFLAKE_", ("account", "user", "password", "role", "database",
                                                                "warehouse", "host", "port", "protocol")))
bigquery = ServerWarehouse("bigquery", BigQuerySettings, "openmrr.warehouses.bigquery", "BigQueryTarget",
                           _profile_env("OPENMRR_BIGQUERY_", ("method", "keyfile", "token", "project", "location",
                                                              "api_endpoint")))
