"""Build the dbt models in BigQuery (`compute`), or copy finished datasets there (`load`).

`copy_sources` writes every table a dbt build reads (schemas `raw` and `quarantine`, and
`source.import_reports`) to Parquet and loads each with a BigQuery load job, replacing the table;
`build` then runs `dbt build --target bigquery`. `load_datasets` copies marts of schema `analytics`
the same way, for users who compute in DuckDB and only query in BigQuery. Each schema is a BigQuery
dataset of the same name. The connection comes from `BigQueryTarget` (the profile's OPENMRR_BIGQUERY_*
variables), never a file.

Types are the ones a compute-mode build gives: DuckDB's TIMESTAMP (UTC, no zone) is a DATETIME
(`bigquery__to_utc_timestamp`); a decimal with at most 9 decimals is NUMERIC, one with more (FX rate
parts, 12) BIGNUMERIC; HUGEINT (DuckDB's type for sums of integers) is INT64. DuckDB widens every
sum to 38 digits, but NUMERIC's 29 integer digits hold any amount of money, and a value that does
not fit fails the load job rather than changing.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from openmrr.errors import ConfigError, WarehouseError
from openmrr.transform import NodeEvent
from openmrr.warehouses.tables import (
    DATASET_SCHEMA,
    Warehouse,
    build_in_server,
    dataset_tables,
    duckdb_columns,
    open_duckdb,
    source_tables,
)

CONNECTION_FIELDS = ("method", "keyfile", "token", "project", "location", "api_endpoint")
METHODS = ("oauth", "oauth-secrets", "service-account")
_SCOPES = ("https://www.googleapis.com/auth/bigquery", "https://www.googleapis.com/auth/cloud-platform")
_PLAIN_TYPES: dict[str, str] = {
    "VARCHAR": "STRING",
    "BIGINT": "INT64",
    "INTEGER": "INT64",
    "SMALLINT": "INT64",
    "TINYINT": "INT64",
    "BOOLEAN": "BOOL",
    "DATE": "DATE",
    "TIMESTAMP": "DATETIME",
    "DOUBLE": "FLOAT64",
    "HUGEINT": "INT64",
}
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")
_NUMERIC_SCALE = 9


def _bigquery() -> Any:
    """The google-cloud-bigquery module; a clear error where the `warehouses` extra is not installed."""
    try:
        from google.cloud import bigquery
    except ImportError as error:
        raise ConfigError("bigquery: google-cloud-bigquery is not installed (pip install 'openmrr[warehouses]')") \
            from error
    return bigquery


@dataclass(frozen=True)
class BigQueryTarget:
    """A BigQuery project: the values the profile's `bigquery` output reads from OPENMRR_BIGQUERY_*.

    `api_endpoint` replaces Google's endpoint (an emulator on 127.0.0.1); the timeouts bound every
    job and the client's retries, which otherwise go on for minutes when the endpoint does not answer."""

    project: str
    location: str = "US"
    method: str = "oauth"
    token: str = field(default="", repr=False)
    keyfile: str = ""
    api_endpoint: str = ""
    job_timeout_seconds: int = 3600
    retry_deadline_seconds: int = 600

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"OPENMRR_BIGQUERY_METHOD '{self.method}' is not one of: {', '.join(METHODS)}")
        if self.method == "oauth-secrets" and not self.token:
            raise ConfigError("OPENMRR_BIGQUERY_TOKEN is required for OPENMRR_BIGQUERY_METHOD=oauth-secrets")
        if self.method == "service-account" and not self.keyfile:
            raise ConfigError("OPENMRR_BIGQUERY_KEYFILE is required for OPENMRR_BIGQUERY_METHOD=service-account")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ,
                         variables: Mapping[str, str | None] | None = None) -> BigQueryTarget:
        """The target the OPENMRR_BIGQUERY_* variables name; `variables` maps a field (method, keyfile,
        token, project, location, api_endpoint) to another variable's name (destinations.yml's `*_env`).
        Without a method, a token means oauth-secrets, a keyfile service-account, neither
        application-default credentials (oauth)."""
        names = {name: (variables or {}).get(name) or f"OPENMRR_BIGQUERY_{name.upper()}" for name in CONNECTION_FIELDS}
        values = {name: environ.get(variable, "") for name, variable in names.items()}
        project, token, keyfile = values["project"], values["token"], values["keyfile"]
        if not project:
            raise ConfigError(f"{names['project']} is not set: name the Google Cloud project to build in")
        implied = "oauth-secrets" if token else "service-account" if keyfile else "oauth"
        try:
            job_timeout = int(environ.get("OPENMRR_BIGQUERY_JOB_TIMEOUT_SECONDS", cls.job_timeout_seconds))
            retry_deadline = int(environ.get("OPENMRR_BIGQUERY_RETRY_DEADLINE_SECONDS", cls.retry_deadline_seconds))
        except ValueError as error:
            raise ConfigError(f"OPENMRR_BIGQUERY_*_SECONDS must be whole seconds ({error})") from error
        return cls(
            project=project,
            location=values["location"] or cls.location,
            method=values["method"] or implied,
            token=token,
            keyfile=keyfile,
            api_endpoint=values["api_endpoint"],
            job_timeout_seconds=job_timeout,
            retry_deadline_seconds=retry_deadline,
        )

    def environment(self) -> dict[str, str]:
        """Variables for the dbt invocation (the profile's `bigquery` output reads exactly these)."""
        return {
            "OPENMRR_BIGQUERY_PROJECT": self.project,
            "OPENMRR_BIGQUERY_LOCATION": self.location,
            "OPENMRR_BIGQUERY_METHOD": self.method,
            "OPENMRR_BIGQUERY_TOKEN": self.token,
            "OPENMRR_BIGQUERY_KEYFILE": self.keyfile,
            "OPENMRR_BIGQUERY_API_ENDPOINT": self.api_endpoint,
            "OPENMRR_BIGQUERY_JOB_TIMEOUT_SECONDS": str(self.job_timeout_seconds),
            "OPENMRR_BIGQUERY_RETRY_DEADLINE_SECONDS": str(self.retry_deadline_seconds),
        }

    def _credentials(self) -> Any:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError
        from google.oauth2 import credentials, service_account

        try:
            if self.method == "oauth-secrets":
                return credentials.Credentials(self.token)
            if self.method == "service-account":
                return service_account.Credentials.from_service_account_file(self.keyfile, scopes=_SCOPES)
            return google.auth.default(scopes=_SCOPES)[0]
        except (DefaultCredentialsError, OSError, ValueError) as error:
            raise ConfigError(f"bigquery: no usable credentials for method {self.method} ({error})") from error

    def client(self) -> Any:
        """A google-cloud-bigquery client for this project, location and endpoint."""
        from google.api_core.client_options import ClientOptions

        options = ClientOptions(api_endpoint=self.api_endpoint) if self.api_endpoint else None
        return _bigquery().Client(project=self.project, location=self.location, credentials=self._credentials(),
                                  client_options=options)

    def retry(self) -> Any:
        """The client's default retry, bounded by `retry_deadline_seconds`."""
        return _bigquery().DEFAULT_RETRY.with_deadline(self.retry_deadline_seconds)

    def wait_until_ready(self, timeout: float = 30.0) -> None:
        """Return once the endpoint answers a dataset listing; a ConfigError naming it after `timeout`."""
        from google.api_core.exceptions import GoogleAPIError
        from requests.exceptions import RequestException

        client, deadline = self.client(), time.monotonic() + timeout
        try:
            while True:
                try:
                    list(client.list_datasets(max_results=1, retry=None, timeout=5))
                    return
                except (GoogleAPIError, RequestException) as error:
                    if time.monotonic() >= deadline:
                        endpoint = self.api_endpoint or "BigQuery"
                        raise ConfigError(f"bigquery {endpoint} (project {self.project}) does not answer: {error}") \
                            from error
                    time.sleep(0.5)
        finally:
            client.close()


def check(target: BigQueryTarget) -> str:
    """Reach the project without changing anything (`openmrr destinations test`)."""
    target.wait_until_ready(timeout=30)
    return f"bigquery: connected (project {target.project}, {target.api_endpoint or 'Google'})"


def bigquery_type(duckdb_type: str) -> str:
    """The BigQuery column type for a DuckDB column type; unknown types are a ConfigError."""
    if duckdb_type in _PLAIN_TYPES:
        return _PLAIN_TYPES[duckdb_type]
    if match := _DECIMAL.fullmatch(duckdb_type):
        return "NUMERIC" if int(match[2]) <= _NUMERIC_SCALE else "BIGNUMERIC"
    raise ConfigError(f"no BigQuery type for DuckDB type {duckdb_type}")


def _load_table(duck: duckdb.DuckDBPyConnection, client: Any, target: BigQueryTarget, schema: str, table: str,
                scratch: Path) -> int:
    """Replace `schema.table` in BigQuery with the DuckDB table's rows (one Parquet load job)."""
    bigquery = _bigquery()
    columns = duckdb_columns(duck, schema, table)
    try:
        fields = [bigquery.SchemaField(name, bigquery_type(kind)) for name, kind in columns]
    except ConfigError as error:
        raise ConfigError(f"{schema}.{table}: {error}") from error
    # HUGEINT has no Parquet type; a count beyond BIGINT fails here, in DuckDB, with the column's name.
    select = ", ".join(f'cast("{name}" as bigint) as "{name}"' if kind == "HUGEINT" else f'"{name}"'
                       for name, kind in columns)
    parquet = scratch / f"{schema}.{table}.parquet"
    duck.execute(f"copy (select {select} from \"{schema}\".\"{table}\") to '{parquet}' (format parquet)")
    config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET, schema=fields,
                                    write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE)
    with parquet.open("rb") as data:
        job = client.load_table_from_file(data, f"{target.project}.{schema}.{table}", job_config=config,
                                          timeout=target.job_timeout_seconds)
    job.result(timeout=target.job_timeout_seconds, retry=target.retry())
    return int(job.output_rows or 0)


def _load_tables(warehouse: Warehouse, target: BigQueryTarget, tables: Callable[[duckdb.DuckDBPyConnection],
                 Iterable[tuple[str, str]]]) -> dict[str, int]:
    """Load every (schema, table) that `tables` picks from the DuckDB file; rows per `schema.table`."""
    from google.api_core.exceptions import GoogleAPIError

    with open_duckdb(warehouse) as duck:
        chosen = list(tables(duck))
        client = target.client()
        try:
            return _load_chosen(duck, client, target, chosen)
        except GoogleAPIError as error:
            raise WarehouseError(f"bigquery project {target.project}: {error}") from error
        finally:
            client.close()


def _load_chosen(duck: duckdb.DuckDBPyConnection, client: Any, target: BigQueryTarget,
                 chosen: list[tuple[str, str]]) -> dict[str, int]:
    """Create the datasets, then load each table; rows per `schema.table`."""
    bigquery = _bigquery()
    for schema in dict.fromkeys(schema for schema, _ in chosen):
        dataset = bigquery.Dataset(f"{target.project}.{schema}")
        dataset.location = target.location
        client.create_dataset(dataset, exists_ok=True, retry=target.retry(), timeout=60)
    with tempfile.TemporaryDirectory(prefix="openmrr-bigquery-") as scratch:
        return {f"{schema}.{table}": _load_table(duck, client, target, schema, table, Path(scratch))
                for schema, table in chosen}


def copy_sources(warehouse: Warehouse, target: BigQueryTarget) -> dict[str, int]:
    """Load every table a dbt build reads from the DuckDB file into `target` (compute mode).

    Returns the rows loaded per `schema.table`. Each table is replaced by one load job, so a reader
    sees the old table or the new one, never a part."""
    return _load_tables(warehouse, target, source_tables)


def load_datasets(warehouse: Warehouse, target: BigQueryTarget,
                  datasets: Sequence[str] | None = None) -> dict[str, int]:
    """Copy finished datasets (every table of schema `analytics` when `datasets` is None) from the DuckDB
    warehouse into BigQuery dataset `analytics` (load mode). Returns the rows loaded per dataset name;
    an unknown dataset is a ConfigError."""

    loaded = _load_tables(warehouse, target, lambda duck: [(DATASET_SCHEMA, name)
                                                           for name in dataset_tables(duck, datasets)])
    return {name.removeprefix(f"{DATASET_SCHEMA}."): rows for name, rows in loaded.items()}


def build(target: BigQueryTarget, dbt_vars: dict[str, Any], work_dir: Path, exclude: Sequence[str] = (),
          on_node: Callable[[NodeEvent], None] | None = None) -> Any:
    """`dbt build --target bigquery` with the settings' vars (minus the `exclude` selectors);
    dbt's logs and target files go to `work_dir`."""
    return build_in_server("bigquery", target.environment(), dbt_vars, work_dir, exclude, on_node)
