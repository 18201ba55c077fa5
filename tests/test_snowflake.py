"""OpenMRR on Snowflake, against the fakesnow emulator: `compute` mode (sources loaded with PUT + COPY,
then `dbt build --target snowflake`) gives DuckDB's tables row for row; `load` mode copies the
finished datasets with the same row counts and checksums.

fakesnow 0.12.1 runs in server mode on 127.0.0.1 in its own virtualenv (tests/server_requirements/
fakesnow.txt), one server per module, started through tests/fakesnow_server.py, which fixes two
emulator bugs (float sums, null timestamps in results; see there). The real dbt-snowflake adapter and
connector talk to it over HTTP. dbt runs in a subprocess under a timeout, because a statement the
emulator cannot run may leave the session hanging. Each test uses its own database.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from openmrr.errors import ConfigError
from openmrr.paths import DEMO_DATA_DIR
from openmrr.warehouses.snowflake import (
    SnowflakeTarget,
    check,
    copy_sources,
    copy_table,
    load_datasets,
    snowflake_type,
)
from orchestration.refresh import refresh
from tests.helpers import PROJECT_ROOT, SCENARIOS_DIR, base_rows, write_folder
from tests.servers import ensure_venv, free_port, running
from tests.warehouse_compare import REQUIRED_TABLES, assert_same_table, canonical

DBT_TIMEOUT_SECONDS = 900
LAUNCHER = PROJECT_ROOT / "tests" / "fakesnow_server.py"


@pytest.fixture(scope="module")
def fakesnow(tmp_path_factory) -> Iterator[int]:
    """The port of a fresh fakesnow server (in-memory databases), stopped after the module."""
    python = ensure_venv("fakesnow") / "python"
    port = free_port()
    log = tmp_path_factory.mktemp("fakesnow") / "server.log"
    with running([str(python), str(LAUNCHER), "-s", "--host", "127.0.0.1", "-p", str(port)], port, log):
        yield port


def _target(port: int, database: str) -> SnowflakeTarget:
    return SnowflakeTarget(account="fakesnow", user="openmrr", password="emulator", database=database,
                           host="127.0.0.1", port=port, protocol="http")


def _fresh_database(port: int, name: str) -> SnowflakeTarget:
    """A target on a new database (fakesnow creates it; on Snowflake the user brings one)."""
    target = _target(port, name)
    connection = target.connect()
    try:
        connection.cursor().execute(f"create database if not exists {name}")
    finally:
        connection.close()
    return target


def _run_in_subprocess(function: str, target: SnowflakeTarget, work_dir: Path, **arguments: object) -> None:
    """openmrr.warehouses.snowflake.<function>(target, work_dir=..., **arguments) in a child process,
    killed after DBT_TIMEOUT_SECONDS."""
    script = (
        "import json, sys; from pathlib import Path; from openmrr.warehouses import snowflake as s\n"
        "a = json.loads(sys.argv[1]); t = s.SnowflakeTarget(**a.pop('target'))\n"
        f"s.{function}(t, work_dir=Path(a.pop('work_dir')), **a)\n"
    )
    payload = {"target": dataclasses.asdict(target), "work_dir": str(work_dir), **arguments}
    completed = subprocess.run([sys.executable, "-W", "ignore", "-c", script, json.dumps(payload)],
                               capture_output=True, text=True, timeout=DBT_TIMEOUT_SECONDS, cwd=PROJECT_ROOT)
    assert completed.returncode == 0, f"{function} failed:\n{completed.stdout[-4000:]}{completed.stderr[-4000:]}"


def _rows(cursor, table: str) -> tuple[list[str], list[tuple]]:
    """Column names (lower case) and canonical rows, sorted, of `schema.table`."""
    cursor.execute(f"select * from {table}")
    columns = [d[0].lower() for d in cursor.description]
    return columns, sorted(tuple(canonical(v, c) for v, c in zip(row, columns, strict=True))
                           for row in cursor.fetchall())


def _checksum(rows: list[tuple]) -> str:
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def _analytics_tables(warehouse: Path) -> list[str]:
    duck = duckdb.connect(str(warehouse))
    try:
        return [t for (t,) in duck.execute(
            "select table_name from information_schema.tables where table_schema = 'analytics' order by 1"
        ).fetchall()]
    finally:
        duck.close()


def _assert_same_tables(warehouse: Path, target: SnowflakeTarget, schema: str, tables: list[str]) -> None:
    duck = duckdb.connect(str(warehouse))
    connection = target.connect()
    try:
        cursor = connection.cursor()
        for table in tables:
            assert_same_table(f"{schema}.{table}", _rows(duck.cursor(), f"{schema}.{table}"),
                              _rows(cursor, f"{schema}.{table}"), "Snowflake")
    finally:
        duck.close()
        connection.close()


@pytest.fixture(scope="module")
def lifecycle_warehouse(tmp_path_factory) -> tuple[Path, dict]:
    """Scenario 02 run through ingestion, validation and the DuckDB build; and its dbt vars."""
    warehouse = tmp_path_factory.mktemp("lifecycle") / "warehouse.duckdb"
    run = refresh(SCENARIOS_DIR / "02-lifecycle" / "data", warehouse)
    return warehouse, run.settings.dbt_vars()


@pytest.mark.slow
def test_check_reaches_the_target_and_names_it(fakesnow):
    target = _fresh_database(fakesnow, "CHECKED")
    assert check(target) == f"Snowflake 10.0.0 at 127.0.0.1:{fakesnow}, database CHECKED"


@pytest.mark.slow
def test_compute_mode_builds_the_lifecycle_scenario_identically(fakesnow, lifecycle_warehouse, tmp_path):
    warehouse, dbt_vars = lifecycle_warehouse
    target = _fresh_database(fakesnow, "COMPUTE_LIFECYCLE")
    copied = copy_sources(warehouse, target)
    assert copied["raw.line_items"] > 0 and copied["source.import_reports"] > 0
    assert {"quarantine.line_items", "raw.import_batches"} <= set(copied)

    _run_in_subprocess("build", target, tmp_path, dbt_vars=dbt_vars)  # every model and data test
    # the statements the emulator ran are the Snowflake ones (our snowflake__ macros, transient tables)
    run_sql = {path.stem: path.read_text() for path in (tmp_path / "target" / "run" / "models").rglob("*.sql")}
    assert "regexp_substr(" in run_sql["stg_transactions"]  # snowflake__to_utc_timestamp
    assert "object_agg(" in run_sql["customers"]  # snowflake__json_object_agg
    assert "mod(" in run_sql["int_line_item_mrr"] and "div(" not in run_sql["int_line_item_mrr"]  # round_cents_div
    assert "create or replace transient table" in run_sql["customers"]

    marts = _analytics_tables(warehouse)
    assert set(REQUIRED_TABLES) <= set(marts)
    _assert_same_tables(warehouse, target, "analytics", marts)

    # the dbt catalog (docs) reads the warehouse's information schema: every model with its columns
    _run_in_subprocess("generate_docs", target, tmp_path, dbt_vars=dbt_vars)
    catalog = json.loads((tmp_path / "target" / "catalog.json").read_text())
    models = {key.split(".")[-1]: node for key, node in catalog["nodes"].items() if key.startswith("model.")}
    assert set(marts) <= set(models)
    duck = duckdb.connect(str(warehouse))
    try:
        for mart in marts:
            columns = [c for (c,) in duck.execute(
                "select column_name from information_schema.columns where table_schema = 'analytics'"
                " and table_name = ? order by ordinal_position", [mart]).fetchall()]
            assert [c.lower() for c in models[mart]["columns"]] == columns, mart
    finally:
        duck.close()


@pytest.mark.slow
def test_compute_mode_builds_the_demo_data_identically(fakesnow, tmp_path):
    """Three billing systems, three currencies, merges, tags and custom attributes."""
    warehouse = tmp_path / "warehouse.duckdb"
    run = refresh(DEMO_DATA_DIR, warehouse)
    target = _fresh_database(fakesnow, "COMPUTE_DEMO")
    copy_sources(warehouse, target)
    _run_in_subprocess("build", target, tmp_path / "dbt", dbt_vars=run.settings.dbt_vars())
    _assert_same_tables(warehouse, target, "analytics", _analytics_tables(warehouse))


@pytest.mark.slow
def test_load_mode_copies_every_dataset_with_matching_counts_and_checksums(fakesnow, lifecycle_warehouse):
    warehouse, _ = lifecycle_warehouse
    target = _fresh_database(fakesnow, "LOAD_LIFECYCLE")
    datasets = _analytics_tables(warehouse)
    loaded = load_datasets(warehouse, target)  # every dataset

    duck = duckdb.connect(str(warehouse))
    connection = target.connect()
    try:
        cursor = connection.cursor()
        assert set(loaded) == set(datasets)
        for dataset in datasets:
            duck_columns, duck_rows = _rows(duck.cursor(), f"analytics.{dataset}")
            snow_columns, snow_rows = _rows(cursor, f"analytics.{dataset}")
            assert loaded[dataset] == len(duck_rows) == len(snow_rows), dataset
            assert snow_columns == duck_columns, dataset
            assert _checksum(snow_rows) == _checksum(duck_rows), dataset
            assert dataset not in REQUIRED_TABLES or duck_rows, f"{dataset} is empty"
        # money keeps its exact decimal type (NUMBER(p, s) as in DuckDB), never a float
        decimals = duck.execute(
            "select upper(table_name), upper(column_name), numeric_precision, numeric_scale"
            " from information_schema.columns where table_schema = 'analytics' and data_type like 'DECIMAL%'"
        ).fetchall()
        cursor.execute("select table_name, column_name, numeric_precision, numeric_scale, data_type"
                       " from information_schema.columns where table_schema = 'ANALYTICS'")
        snow_types = {(table, column): (precision, scale, kind) for table, column, precision, scale, kind in cursor}
        assert ("MRR_ACTIVITIES", "MRR") in {(table, column) for table, column, _, _ in decimals}
        for table, column, precision, scale in decimals:
            assert snow_types[table, column] == (precision, scale, "NUMBER"), f"{table}.{column}"
    finally:
        duck.close()
        connection.close()

    # loading again (from a delivery's open DuckDB connection) replaces the tables rather than appending
    duck = duckdb.connect(str(warehouse))
    try:
        assert load_datasets(duck, target, ["customers"]) == {"customers": loaded["customers"]}
    finally:
        duck.close()
    connection = target.connect()
    try:
        assert connection.cursor().execute("select count(*) from analytics.customers").fetchall() == [
            (loaded["customers"],)]
    finally:
        connection.close()


def test_load_mode_rejects_an_unknown_dataset_before_connecting(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    duck = duckdb.connect(str(warehouse))
    duck.execute("create schema analytics")
    duck.execute("create table analytics.customers (customer_id varchar)")
    duck.close()
    nowhere = SnowflakeTarget(account="unused", user="unused", host="127.0.0.1", port=free_port(), protocol="http")
    with pytest.raises(ConfigError, match=r"dataset\(s\) no_such_dataset not in .* \(it holds: customers\)"):
        load_datasets(warehouse, nowhere, ["no_such_dataset"])


@pytest.mark.slow
def test_copy_keeps_every_value_exactly(fakesnow, tmp_path):
    """Nulls vs empty text, tabs, newlines, quotes, backslashes, non-ASCII, microseconds, HUGEINT
    and decimals survive Parquet, PUT and COPY; an empty table stays an empty table. (HUGEINT values
    stay within 64 bits: fakesnow stores NUMBER(38, 0) as a DuckDB BIGINT, Snowflake holds 38 digits.)"""
    warehouse = tmp_path / "tricky.duckdb"
    texts = [None, "", "a\tb", "line\nbreak\r\n", "back\\slash \\N", "naïve ✓", "'quoted' \"double\"", "a,b"]
    duck = duckdb.connect(str(warehouse))
    duck.execute("create schema raw")
    duck.execute("create table raw.tricky (n bigint, value varchar, loaded timestamp, amount decimal(18, 2),"
                 " big hugeint, day date, flag boolean)")
    duck.executemany("insert into raw.tricky values (?, ?, ?, ?, ?, ?, ?)", [
        [n, text, None if n == 0 else f"2024-02-29 23:59:59.{n:06d}", None if n == 0 else f"-{n}.05",
         None if n == 0 else 2 ** 62 + n, None if n == 0 else f"2024-01-{n:02d}", None if n == 0 else n % 2 == 0]
        for n, text in enumerate(texts)
    ])
    duck.execute("create table raw.empty (n bigint, value varchar)")
    duck.close()

    target = _fresh_database(fakesnow, "TRICKY")
    assert copy_sources(warehouse, target) == {"raw.empty": 0, "raw.tricky": len(texts)}
    _assert_same_tables(warehouse, target, "raw", ["empty", "tricky"])


@pytest.mark.slow
def test_a_large_table_travels_as_several_files(fakesnow, tmp_path):
    """Snowflake loads the files of one COPY in parallel: DuckDB splits a table by `file_bytes`."""
    duck = duckdb.connect(str(tmp_path / "large.duckdb"))
    duck.execute("create schema analytics")
    duck.execute("create table analytics.large as select range as n, 'customer ' || range as name,"
                 " cast(range / 100 as decimal(18, 2)) as amount from range(300000)")
    connection = _fresh_database(fakesnow, "LARGE").connect()
    try:
        cursor = connection.cursor()
        assert copy_table(duck, cursor, "analytics", "large", tmp_path, file_bytes=1_000_000) == 300_000
        assert len(list((tmp_path / "analytics.large").glob("*.parquet"))) > 1
        cursor.execute("select count(*), count(distinct n), sum(amount), max(name) from analytics.large")
        assert cursor.fetchall() == [(300_000, 300_000, Decimal("449998500.00"), "customer 99999")]
    finally:
        connection.close()
        duck.close()


@pytest.mark.slow
def test_timestamps_in_every_accepted_form_read_as_on_duckdb(fakesnow, tmp_path):
    """inputs.md `ts`: a date alone is midnight UTC, an offset converts to UTC, no offset means UTC —
    whatever the Snowflake session's time zone."""
    forms = ["2023-01-01", "2023-01-01T10:00", "2023-01-01 10:00:05", "2023-01-01T10:00:05.123456Z",
             "2023-01-01T10:00:05+05:30", "2023-01-01T10:00:05-05", "2023-01-02T01:00+0530", " 2023-01-03 "]
    rows = base_rows()
    rows["app/transactions"] = [
        {"invoice_external_id": "i1", "external_id": f"t{n}", "type": "payment", "result": "successful",
         "date": form, "amount": "100"} for n, form in enumerate(forms)
    ]
    data = write_folder(tmp_path / "data", rows)
    warehouse = tmp_path / "warehouse.duckdb"
    run = refresh(data, warehouse)
    duck = duckdb.connect(str(warehouse))
    try:
        dates = dict(duck.execute("select external_id, date from source.transactions").fetchall())
    finally:
        duck.close()
    assert len(dates) == len(forms)  # none quarantined
    assert str(dates["t4"]) == "2023-01-01 04:30:05" and str(dates["t6"]) == "2023-01-01 19:30:00"
    target = _fresh_database(fakesnow, "TIMESTAMPS")
    copy_sources(warehouse, target)
    _run_in_subprocess("build", target, tmp_path / "dbt", dbt_vars=run.settings.dbt_vars(),
                       extra=["--select", "stg_transactions"])
    _assert_same_tables(warehouse, target, "source", ["transactions"])  # stg_transactions


# --- no server needed ---------------------------------------------------------------------------


def test_target_reads_the_profile_variables():
    environ = {"OPENMRR_SNOWFLAKE_ACCOUNT": "xy12345.eu-central-1", "OPENMRR_SNOWFLAKE_USER": "loader",
               "OPENMRR_SNOWFLAKE_PASSWORD": "secret", "OPENMRR_SNOWFLAKE_DATABASE": "ANALYTICS_DB"}
    target = SnowflakeTarget.from_environment(environ)
    assert (target.account, target.user, target.database, target.role) == (
        "xy12345.eu-central-1", "loader", "ANALYTICS_DB", "PUBLIC")
    assert (target.host, target.port, target.protocol) == ("", 443, "https")  # the account's own endpoint
    assert "secret" not in repr(target)
    assert SnowflakeTarget.from_environment(target.environment()) == target


def test_target_reads_other_variable_names_when_destinations_yml_names_them():
    environ = {"ACME_SF_ACCOUNT": "acme", "ACME_SF_USER": "bot", "OPENMRR_SNOWFLAKE_USER": "ignored",
               "ACME_SF_PORT": "8080"}
    target = SnowflakeTarget.from_environment(
        environ, {"account": "ACME_SF_ACCOUNT", "user": "ACME_SF_USER", "port": "ACME_SF_PORT", "role": None})
    assert (target.account, target.user, target.port, target.role) == ("acme", "bot", 8080, "PUBLIC")
    with pytest.raises(ConfigError, match="set ACME_SF_ACCOUNT"):
        SnowflakeTarget.from_environment({}, {"account": "ACME_SF_ACCOUNT"})


def test_target_without_account_or_user_is_a_clear_error():
    with pytest.raises(ConfigError, match="OPENMRR_SNOWFLAKE_ACCOUNT and OPENMRR_SNOWFLAKE_USER"):
        SnowflakeTarget.from_environment({})
    with pytest.raises(ConfigError, match="OPENMRR_SNOWFLAKE_PORT must be a port number"):
        SnowflakeTarget.from_environment({"OPENMRR_SNOWFLAKE_ACCOUNT": "a", "OPENMRR_SNOWFLAKE_USER": "u",
                                          "OPENMRR_SNOWFLAKE_PORT": "http"})


def test_an_unreachable_endpoint_is_a_clear_error():
    nowhere = SnowflakeTarget(account="acme", user="u", database="SALES", host="127.0.0.1", port=free_port(),
                              protocol="http", login_timeout_seconds=2)
    with pytest.raises(ConfigError, match=rf"snowflake 127\.0\.0\.1:{nowhere.port}/SALES: cannot connect"):
        nowhere.connect()


def test_duckdb_types_map_to_exact_snowflake_types():
    assert snowflake_type("DECIMAL(18,2)") == "number(18, 2)"
    assert snowflake_type("DECIMAL(38, 12)") == "number(38, 12)"
    assert snowflake_type("HUGEINT") == "number(38, 0)"
    assert snowflake_type("TIMESTAMP") == "timestamp_ntz"
    assert snowflake_type("TIMESTAMP WITH TIME ZONE") is None
