"""The whole dbt build on a real PostgreSQL server gives the same tables as on DuckDB, row for row.

A throw-away cluster (127.0.0.1 only, trust auth, C collation) lives in a temp dir for the module;
`scripts/install-system-deps` installs the server (`make test` runs it first).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from openmrr import pipeline
from openmrr.paths import DEMO_DATA_DIR
from openmrr.warehouses.postgres import PostgresTarget, build, copy_sources
from tests.helpers import SCENARIOS_DIR

pytestmark = pytest.mark.slow

# Models that cannot build on PostgreSQL until a model change lands: mrr_intervals.sql selects
# `*, lag(quantity) ... as previous_quantity` from int_subscription_changes, which already has a
# `previous_quantity`, and PostgreSQL rejects the later reference as ambiguous (DuckDB takes the first).
# Renaming the new column (e.g. previous_state_quantity) fixes it; then empty this tuple.
PENDING_MODEL_FIXES: tuple[str, ...] = ()
REQUIRED_TABLES = ("mrr_activities", "customers", "fx_adjustments", "metrics_monthly")
JSON_COLUMNS = {"custom_attributes"}  # JSON text: DuckDB's key order is the aggregation's, not sorted


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        pytest.fail("PostgreSQL server binaries not found: run scripts/install-system-deps (make test does)")
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresTarget]:
    """A fresh PostgreSQL cluster with database `openmrr`, stopped and deleted afterwards."""
    bin_dir = _postgres_bin()
    as_server_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # initdb refuses root
    workdir = Path(tempfile.mkdtemp(prefix="openmrr-pg-"))
    if as_server_user:
        shutil.chown(workdir, "postgres")
    data, port = workdir / "data", _free_port()

    def server(*command: str) -> None:
        subprocess.run([*as_server_user, *command], cwd=workdir, check=True, capture_output=True, text=True)

    try:
        server(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--locale=C",
               "--encoding=UTF8", "--no-sync")
        server(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(workdir / "server.log"), "-w", "-o",
               f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={workdir} -c fsync=off",
               "start")
        try:
            admin = PostgresTarget(port=port, database="postgres").connect()
            admin.autocommit = True
            with admin.cursor() as cursor:
                cursor.execute("create database openmrr")
            admin.close()
            yield PostgresTarget(port=port, database="openmrr")
        finally:
            server(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
    except subprocess.CalledProcessError as error:
        pytest.fail(f"{' '.join(error.cmd)} failed:\n{error.stdout}{error.stderr}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _canonical(value: object, column: str) -> tuple[str, object]:
    """A value tagged with its kind; numbers compare by value (Decimal scale and int vs Decimal aside)."""
    if value is None:
        return ("null", "")
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | Decimal | float):
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        return ("number", format(number.normalize(), "f"))
    if isinstance(value, datetime.datetime):  # an aware value keeps its offset and so differs from a naive one
        return ("timestamp", value.isoformat())
    if isinstance(value, datetime.date):
        return ("date", value.isoformat())
    if column in JSON_COLUMNS:
        return ("json", json.dumps(json.loads(value), sort_keys=True))
    return (type(value).__name__, value)


def _table(cursor, name: str) -> tuple[list[str], list[tuple]]:
    cursor.execute(f"select * from {name}")
    columns = [d[0] for d in cursor.description]
    return columns, sorted(tuple(_canonical(v, c) for v, c in zip(row, columns, strict=True))
                           for row in cursor.fetchall())


def _assert_same_marts(warehouse: Path, target: PostgresTarget) -> None:
    duck = duckdb.connect(str(warehouse))
    pg = target.connect()
    try:
        marts = [t for (t,) in duck.execute(
            "select table_name from information_schema.tables where table_schema = 'analytics' order by 1"
        ).fetchall() if t not in PENDING_MODEL_FIXES]
        assert set(REQUIRED_TABLES) <= set(marts)
        with pg.cursor() as pg_cursor:
            for mart in marts:
                duck_columns, duck_rows = _table(duck.cursor(), f"analytics.{mart}")
                pg_columns, pg_rows = _table(pg_cursor, f"analytics.{mart}")
                assert pg_columns == duck_columns, mart
                only_duck = list((Counter(duck_rows) - Counter(pg_rows)).elements())[:5]
                only_pg = list((Counter(pg_rows) - Counter(duck_rows)).elements())[:5]
                assert pg_rows == duck_rows, (
                    f"analytics.{mart} differs ({len(duck_rows)} DuckDB rows, {len(pg_rows)} PostgreSQL rows)\n"
                    f"columns {duck_columns}\nonly in DuckDB {only_duck}\nonly in PostgreSQL {only_pg}"
                )
                if mart in REQUIRED_TABLES:
                    assert duck_rows, f"analytics.{mart} is empty: nothing was compared"
    finally:
        duck.close()
        pg.close()


def _build_both(data_dir: Path, workdir: Path, target: PostgresTarget) -> Path:
    warehouse = workdir / "warehouse.duckdb"
    run = pipeline.run(data_dir, warehouse)
    copied = copy_sources(warehouse, target, chunk_rows=500)
    assert copied["raw.line_items"] > 0 and "source.import_reports" in copied
    build(target, run.settings.dbt_vars(), workdir / "postgres", exclude=PENDING_MODEL_FIXES)
    return warehouse


def test_lifecycle_scenario_builds_identically_on_postgres(postgres, tmp_path):
    warehouse = _build_both(SCENARIOS_DIR / "02-lifecycle" / "data", tmp_path, postgres)
    _assert_same_marts(warehouse, postgres)


def test_demo_data_builds_identically_on_postgres(postgres, tmp_path):
    warehouse = _build_both(DEMO_DATA_DIR, tmp_path, postgres)
    _assert_same_marts(warehouse, postgres)


def test_copy_keeps_every_text_value_exactly(postgres, tmp_path):
    """Nulls, empty strings, tabs, newlines and backslashes survive COPY, across chunk boundaries."""
    warehouse = tmp_path / "tricky.duckdb"
    values = [None, "", "a\tb", "line\nbreak\r\n", "back\\slash \\N", "naïve ✓", "'quoted' \"double\""]
    duck = duckdb.connect(str(warehouse))
    duck.execute("create schema raw")
    duck.execute("create table raw.tricky (n bigint, value varchar, loaded timestamp)")
    duck.executemany("insert into raw.tricky values (?, ?, ?)",
                     [[n, v, datetime.datetime(2024, 2, 29, 23, 59, 59, n)] for n, v in enumerate(values)])
    duck.close()
    assert copy_sources(warehouse, postgres, chunk_rows=2) == {"raw.tricky": len(values)}
    pg = postgres.connect()
    try:
        with pg.cursor() as cursor:
            cursor.execute("select n, value, loaded from raw.tricky order by n")
            assert cursor.fetchall() == [
                (n, v, datetime.datetime(2024, 2, 29, 23, 59, 59, n)) for n, v in enumerate(values)
            ]
    finally:
        pg.close()
