"""Settings of the warehouse destination types (spec/destinations.md): what destinations.yml accepts.

`mode: compute` runs the dbt project in the warehouse (sources loaded there, models built there);
`mode: load` copies the finished datasets. Fields ending in `_env` name environment variables that
hold the connection values; left out, the dbt profile's own `OPENMRR_<WAREHOUSE>_*` variable applies.
Delivery lives in `openmrr.destinations.warehouse`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class WarehouseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["compute", "load"] = "compute"


class DuckDBSettings(WarehouseSettings):
    """The embedded warehouse itself; `path` (a DuckDB file) only for load mode into another file."""

    path: str | None = None


class PostgresSettings(WarehouseSettings):
    host_env: str | None = None
    port_env: str | None = None
    user_env: str | None = None
    password_env: str | None = None
    database_env: str | None = None


class RedshiftSettings(PostgresSettings):
    sslmode_env: str | None = None


class SnowflakeSettings(WarehouseSettings):
    account_env: str | None = None
    user_env: str | None = None
    password_env: str | None = None
    role_env: str | None = None
    database_env: str | None = None
    warehouse_env: str | None = None
    host_env: str | None = None  # the three only for an endpoint other than the account's own
    port_env: str | None = None
    protocol_env: str | None = None


class BigQuerySettings(WarehouseSettings):
    method_env: str | None = None
    keyfile_env: str | None = None
    token_env: str | None = None
    project_env: str | None = None
    location_env: str | None = None
    api_endpoint_env: str | None = None  # only for an endpoint other than Google's
