"""The delivery log: table `delivery.deliveries` in the warehouse, one row per dataset per attempt.

It lives in the `delivery` schema, which dbt never builds, so rebuilding the marts keeps it; nothing
deletes from it (a destination removed from destinations.yml keeps its history).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import duckdb

from openmrr.destinations.base import STATE_SCHEMA, Delivery

TABLE = f"{STATE_SCHEMA}.deliveries"
COLUMNS = ("destination", "destination_type", "dataset", "run_id", "run_date", "status", "rows", "bytes",
           "checksum", "location", "error", "started_at", "finished_at")


@dataclass(frozen=True)
class Run:
    """The refresh whose datasets are delivered: its id and the day its partition is named after."""

    run_id: str
    run_date: date


def ensure_log(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {STATE_SCHEMA}")
    con.execute(
        f"create table if not exists {TABLE} (destination varchar not null, destination_type varchar,"
        " dataset varchar not null, run_id varchar not null, run_date date, status varchar not null,"
        " rows bigint, bytes bigint, checksum varchar, location varchar, error varchar,"
        " started_at timestamp, finished_at timestamp)"
    )


def record(con: duckdb.DuckDBPyConnection, destination_type: str, run: Run, deliveries: Iterable[Delivery]) -> None:
    """Append the deliveries of one attempt (times stored as UTC without a zone)."""
    ensure_log(con)
    rows = [
        (d.destination, destination_type, d.dataset, d.run_id, run.run_date, d.status, d.rows, d.bytes, d.checksum,
         d.location, d.error, d.started_at.replace(tzinfo=None), d.finished_at.replace(tzinfo=None))
        for d in deliveries
    ]
    if rows:
        con.executemany(f"insert into {TABLE} ({', '.join(COLUMNS)}) values ({', '.join('?' * len(COLUMNS))})",
                        rows)


def delivered_datasets(con: duckdb.DuckDBPyConnection, destination: str, run_id: str) -> set[str]:
    """Datasets this destination already delivered for this run."""
    ensure_log(con)
    return {dataset for (dataset,) in con.execute(
        f"select distinct dataset from {TABLE} where destination = ? and run_id = ? and status = 'delivered'",
        [destination, run_id]).fetchall()}


def history(con: duckdb.DuckDBPyConnection, destination: str | None = None, limit: int = 50) -> list[dict]:
    """The latest log rows, newest first, as dicts of COLUMNS."""
    ensure_log(con)
    where = "where destination = ?" if destination else ""
    cursor = con.execute(f"select {', '.join(COLUMNS)} from {TABLE} {where} order by finished_at desc,"
                         f" dataset limit {int(limit)}", [destination] if destination else [])
    return [dict(zip(COLUMNS, row, strict=True)) for row in cursor.fetchall()]
