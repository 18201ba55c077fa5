"""Send a destination's datasets for the warehouse's latest run and record what happened.

The CLI (`openmrr destinations send`) and the Dagster destination assets both come through here, so
they find the same run, skip or overwrite the same things and write the same log rows.

A run is the latest refresh of the warehouse: its id is the moment validation stored the import
report (`source.import_reports.checked_at`, rewritten by every refresh), its date the UTC day of it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from openmrr.destinations import log
from openmrr.destinations.base import Delivery, DeliveryContext
from openmrr.destinations.config import Destination, dataset_table
from openmrr.destinations.log import Run
from openmrr.errors import ConfigError, DeliveryFailed, OpenMRRError

LOCK_WAIT_SECONDS = 300.0  # another process (dbt, another delivery) may hold the warehouse for a while


def open_warehouse(warehouse: Path, wait: float = LOCK_WAIT_SECONDS) -> duckdb.DuckDBPyConnection:
    """A read-write connection; waits while another process holds the file (DuckDB allows one writer)."""
    if not warehouse.exists():
        raise ConfigError(f"{warehouse}: warehouse not found (run `openmrr run` first)")
    deadline = time.monotonic() + wait
    while True:
        try:
            return duckdb.connect(str(warehouse))
        except duckdb.IOException as error:
            if "lock" not in str(error).lower() or time.monotonic() > deadline:
                raise ConfigError(f"{warehouse}: cannot open the warehouse ({error})") from error
            time.sleep(1.0)


def latest_run(con: duckdb.DuckDBPyConnection, warehouse: Path | str) -> Run:
    """The run the datasets come from; ConfigError when the warehouse was never refreshed."""
    try:
        (checked_at,) = con.execute("select max(checked_at) from source.import_reports").fetchone()
    except duckdb.CatalogException:
        checked_at = None
    if checked_at is None:
        raise ConfigError(f"{warehouse}: no refresh found in this warehouse (run `openmrr run` first)")
    return Run(run_id=checked_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), run_date=checked_at.date())


def _check_datasets(con: duckdb.DuckDBPyConnection, warehouse: Path | str, datasets: Sequence[str]) -> None:
    tables = {f"{schema}.{name}" for schema, name in con.execute(
        "select table_schema, table_name from information_schema.tables").fetchall()}
    missing = [d for d in datasets if dataset_table(d) not in tables]
    if missing:
        raise ConfigError(f"{warehouse}: {', '.join(dataset_table(d) for d in missing)} not found"
                          " (run `openmrr run` to build every dataset)")


def selected_datasets(destination: Destination, only: Sequence[str] | None) -> tuple[str, ...]:
    """The destination's datasets, or the requested subset of them (`send --dataset X`)."""
    if not only:
        return destination.datasets
    unknown = [d for d in only if d not in destination.datasets]
    if unknown:
        raise ConfigError(f"{destination.where}: does not send {', '.join(unknown)}"
                          f" (its datasets: {', '.join(destination.datasets)})")
    return tuple(only)


def send(destination: Destination, warehouse: Path, environ: Mapping[str, str] | None = None,
         datasets: Sequence[str] | None = None, force: bool = False) -> tuple[Run, list[Delivery]]:
    """Deliver the latest run; log every dataset's outcome; DeliveryFailed when any failed."""
    variables = destination.environ(environ)
    chosen = selected_datasets(destination, datasets)
    con = open_warehouse(warehouse)
    try:
        run = latest_run(con, warehouse)
        _check_datasets(con, warehouse, chosen)
        context = DeliveryContext(destination=destination.name, run_id=run.run_id, run_date=run.run_date,
                                  datasets=chosen, connection=con, environ=variables, force=force)
        started = datetime.now(UTC)
        try:
            deliveries = destination.implementation.deliver(destination.settings, context)
        except Exception as error:  # the destination's failure, recorded before it surfaces
            deliveries = [Delivery(destination.name, dataset, run.run_id, "failed", 0, 0, None, started,
                                   datetime.now(UTC), error=_describe(error)) for dataset in chosen]
        log.record(con, destination.type, run, deliveries)
    finally:
        con.close()
    failed = [d for d in deliveries if d.status == "failed"]
    if failed:
        raise DeliveryFailed(f"{destination.where}: " + "; ".join(f"{d.dataset}: {d.error}" for d in failed))
    return run, deliveries


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    return first if isinstance(error, OpenMRRError) else f"{type(error).__name__}: {first}"


def check_connection(destination: Destination, environ: Mapping[str, str] | None = None) -> str:
    """Reach the destination without delivering anything (`openmrr destinations test`)."""
    variables = destination.environ(environ)
    check: Any = getattr(destination.implementation, "check", None)
    if check is None:
        return f"settings valid; type '{destination.type}' has no connection test"
    try:
        return check(destination.settings, variables)
    except OpenMRRError:
        raise
    except Exception as error:
        raise DeliveryFailed(f"{destination.where}: connection test failed: {_describe(error)}") from error
