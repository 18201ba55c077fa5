"""Redshift through its real client stack (dbt-redshift, redshift_connector) against a stand-in.

The stand-in is a throw-away PostgreSQL 15 cluster reached through `tests/redshift_proxy.py`, which
only fixes the startup handshake, plus the Redshift system objects dbt-redshift introspects and
`datediff`/`dateadd` with a quoted datepart. What it proves: the loader (batched inserts through
redshift_connector), the dbt-redshift materialisations and our redshift__ macros produce DuckDB's
marts row for row. What it cannot: `listagg ... within group` (PostgreSQL has no such aggregate, and
cannot define one whose measure varies per row), so `customers` is only compiled for Redshift
(`dbt compile --no-introspect`, here and in tests/test_adapters_compile.py); DIST/SORT keys,
late-binding views and COPY from S3 are not exercised (layout and the COPY statement are checked
as text).
"""

from __future__ import annotations

import datetime
import gzip
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg2
import pytest

from openmrr.errors import ConfigError
from openmrr.paths import DEMO_DATA_DIR
from openmrr.transform import run_dbt
from openmrr.warehouses.redshift import (
    RedshiftTarget,
    S3Staging,
    TableLayout,
    build,
    copy_sources,
    export_csv,
    load_datasets,
)
from orchestration.refresh import refresh
from tests.helpers import SCENARIOS_DIR
from tests.redshift_proxy import REDSHIFT_STUBS_SQL, redshift_proxy, rewrite_server_message, rewrite_startup_packet
from tests.servers import free_port, postgres_server
from tests.warehouse_compare import (
    assert_docs_catalog_lists_the_marts,
    assert_loaded_datasets_match,
    assert_same_marts,
)

# Models the stand-in cannot build: they use Redshift's listagg (see the module docstring).
STAND_IN_CANNOT_BUILD = ("customers",)


@pytest.fixture(scope="module")
def stand_in() -> Iterator[tuple[RedshiftTarget, int]]:
    """(the Redshift target behind the proxy, the PostgreSQL port itself)."""
    with postgres_server() as port:
        admin = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="openmrr")
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(REDSHIFT_STUBS_SQL)
        admin.close()
        with redshift_proxy(port) as proxy_port:
            yield RedshiftTarget(port=proxy_port, user="postgres", sslmode="disable"), port


@pytest.fixture()
def redshift(stand_in) -> RedshiftTarget:
    return stand_in[0]


def _build_both(data_dir: Path, workdir: Path, target: RedshiftTarget) -> tuple[Path, dict]:
    """Run the pipeline on DuckDB, load its sources into the stand-in and build there; (warehouse, vars)."""
    warehouse = workdir / "warehouse.duckdb"
    run = refresh(data_dir, warehouse)
    copied = copy_sources(warehouse, target, batch_rows=50)
    assert copied["raw.line_items"] > 0 and "source.import_reports" in copied
    build(target, run.settings.dbt_vars(), workdir / "redshift", exclude=STAND_IN_CANNOT_BUILD)
    # the SQL that ran is Redshift's (redshift__ macros), not the postgres__ fallback
    line_item_sql = next((workdir / "redshift" / "target").rglob("compiled/**/int_line_item_mrr.sql")).read_text()
    assert "datediff('second'" in line_item_sql and "mod((abs(" in line_item_sql and "div(" not in line_item_sql
    return warehouse, run.settings.dbt_vars()


@pytest.mark.slow
def test_lifecycle_scenario_builds_identically_on_the_redshift_stand_in(redshift, tmp_path):
    warehouse, dbt_vars = _build_both(SCENARIOS_DIR / "02-lifecycle" / "data", tmp_path, redshift)
    compared = assert_same_marts(warehouse, redshift.connect, skip=STAND_IN_CANNOT_BUILD, label="Redshift")
    assert "mrr_activities" in compared and "metrics_monthly" in compared
    assert_docs_catalog_lists_the_marts("redshift", redshift.environment(), dbt_vars, tmp_path, compared)


@pytest.mark.slow
def test_demo_data_builds_identically_on_the_redshift_stand_in(redshift, tmp_path):
    """Three currencies, merges, tags and every line-item kind, through Redshift's SQL."""
    warehouse, _ = _build_both(DEMO_DATA_DIR, tmp_path, redshift)
    assert_same_marts(warehouse, redshift.connect, skip=STAND_IN_CANNOT_BUILD, label="Redshift")


@pytest.mark.slow
def test_customers_compiles_for_redshift_with_listagg(tmp_path):
    """What the stand-in cannot run is compiled offline (no connection) and checked as Redshift SQL."""
    run_dbt("compile", tmp_path / "compile.duckdb", {}, ["--target-path", str(tmp_path / "target"), "--select",
                                                         "customers", "--no-introspect", "--no-populate-cache"],
            target="redshift", environment=RedshiftTarget(port=free_port()).environment())
    sql = next((tmp_path / "target").rglob("compiled/**/customers.sql")).read_text()
    assert sql.count("listagg(") >= 6 and "within group (order by" in sql
    assert "string_agg(" not in sql and "json_object_agg(" not in sql


@pytest.mark.slow
def test_load_mode_copies_every_dataset_with_the_same_rows_and_checksum(redshift, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    refresh(SCENARIOS_DIR / "02-lifecycle" / "data", warehouse)
    loaded = load_datasets(warehouse, redshift, batch_rows=7)
    assert loaded["customers"] > 0 and loaded["mrr_activities"] > 0
    assert_loaded_datasets_match(warehouse, redshift.connect, loaded)


@pytest.mark.slow
def test_batched_inserts_keep_every_value_exactly(redshift, tmp_path):
    """Nulls, empty strings, control characters, backslashes, unicode, microseconds and exact decimals
    survive multi-row inserts through redshift_connector, across batch boundaries."""
    warehouse = tmp_path / "tricky.duckdb"
    values = [None, "", "a\tb", "line\nbreak\r\n", "back\\slash \\N", "naïve ✓", "'quoted' \"double\"", "%s %(x)s"]
    rows = [(n, v, datetime.datetime(2024, 2, 29, 23, 59, 59, n), Decimal(n) / 100 - Decimal("1234567890.12"),
             n % 2 == 0, datetime.date(2024, 1, n + 1)) for n, v in enumerate(values)]
    duck = duckdb.connect(str(warehouse))
    duck.execute("create schema raw")
    duck.execute("create table raw.tricky (n bigint, value varchar, loaded timestamp, amount decimal(18, 2),"
                 " flag boolean, day date)")
    duck.executemany("insert into raw.tricky values (?, ?, ?, ?, ?, ?)", [list(row) for row in rows])
    duck.close()
    assert copy_sources(warehouse, redshift, batch_rows=3) == {"raw.tricky": len(values)}
    connection = redshift.connect()
    try:
        cursor = connection.cursor()
        cursor.execute("select n, value, loaded, amount, flag, day from raw.tricky order by n")
        assert [tuple(row) for row in cursor.fetchall()] == rows
    finally:
        connection.close()


@pytest.mark.slow
def test_s3_staging_file_is_the_csv_the_copy_statement_describes(stand_in, tmp_path):
    """The gzip CSV written for COPY FROM S3 (header, \\N for null) loads back exactly with the same
    CSV options into the stand-in's PostgreSQL (the S3 upload and Redshift's COPY itself are not emulated)."""
    warehouse = tmp_path / "csv.duckdb"
    duck = duckdb.connect(str(warehouse))
    duck.execute("create schema raw; create table raw.t (n bigint, value varchar, seen_at timestamp)")
    duck.executemany("insert into raw.t values (?, ?, ?)", [
        [1, None, datetime.datetime(2024, 1, 1, 0, 0, 0, 5)], [2, "", None], [3, 'a,"b"\nc \\N', None]])
    export_csv(duck, "raw", "t", tmp_path / "t.csv.gz")
    duck.close()
    connection = psycopg2.connect(host="127.0.0.1", port=stand_in[1], user="postgres", dbname="openmrr")
    try:
        with connection, connection.cursor() as cursor, gzip.open(tmp_path / "t.csv.gz", "rb") as staged:
            cursor.execute("create temp table t (n bigint, value text, seen_at timestamp)")
            cursor.copy_expert("copy t from stdin with (format csv, header true, null '\\N')", staged)
            cursor.execute("select n, value, seen_at from t order by n")
            assert cursor.fetchall() == [(1, None, datetime.datetime(2024, 1, 1, 0, 0, 0, 5)), (2, "", None),
                                         (3, 'a,"b"\nc \\N', None)]
    finally:
        connection.close()


def test_copy_statement_reads_the_staged_file_with_the_role():
    staging = S3Staging(bucket="bucket", iam_role="arn:aws:iam::123456789012:role/load", prefix="stage/",
                        region="eu-west-1")
    assert staging.copy_statement("raw", "line_items", ["a", 'b"c']) == (
        'copy "raw"."line_items" ("a", "b""c") from \'s3://bucket/stage/raw.line_items.csv.gz\''
        " iam_role 'arn:aws:iam::123456789012:role/load' format as csv ignoreheader 1 null as '\\\\N' gzip"
        " timeformat 'auto' region 'eu-west-1'"
    )


def test_table_layout_is_off_unless_configured():
    assert TableLayout().clause(["customer_id"]) == ""
    layout = TableLayout(diststyle="key", distkey="customer_id", sortkey=("effective_at", "missing"))
    assert layout.clause(["customer_id", "effective_at"]) == (
        ' diststyle key distkey("customer_id") compound sortkey("effective_at")')
    assert TableLayout(distkey="customer_id").clause(["other"]) == ""


def test_proxy_keeps_only_startup_parameters_postgresql_knows():
    fields = [b"user", b"alice", b"database", b"db", b"client_protocol_version", b"2", b"driver_version", b"2.1"]
    body = (196608).to_bytes(4, "big") + b"".join(f + b"\x00" for f in fields) + b"\x00"
    packet = rewrite_startup_packet(body)
    assert int.from_bytes(packet[:4], "big") == len(packet)
    assert packet[4:] == (196608).to_bytes(4, "big") + b"user\x00alice\x00database\x00db\x00\x00"


def test_proxy_reports_a_redshift_server_version():
    rewritten = rewrite_server_message(b"S", b"server_version\x0015.18 (Debian)\x00")
    assert rewritten == b"S" + (len(b"server_version\x008.0.2\x00") + 4).to_bytes(4, "big") + \
        b"server_version\x008.0.2\x00"
    other = rewrite_server_message(b"S", b"TimeZone\x00UTC\x00")
    assert other == b"S" + (17).to_bytes(4, "big") + b"TimeZone\x00UTC\x00"


def test_target_reads_the_profile_variables():
    target = RedshiftTarget.from_environment({"OPENMRR_REDSHIFT_HOST": "example.redshift.amazonaws.com",
                                              "OPENMRR_REDSHIFT_PORT": "5440", "OPENMRR_REDSHIFT_PASSWORD": "s3cret"})
    assert (target.host, target.port, target.user, target.sslmode) == (
        "example.redshift.amazonaws.com", 5440, "openmrr", "prefer")
    assert "s3cret" not in repr(target)
    assert target.environment()["OPENMRR_REDSHIFT_PASSWORD"] == "s3cret"


def test_destination_settings_can_name_other_variables():
    environ = {"TEAM_RS_HOST": "team.example.com", "OPENMRR_REDSHIFT_HOST": "default.example.com",
               "OPENMRR_REDSHIFT_USER": "loader"}
    target = RedshiftTarget.from_environment(environ, {"host": "TEAM_RS_HOST", "port": None})
    assert (target.host, target.user, target.port) == ("team.example.com", "loader", 5439)
    with pytest.raises(ConfigError, match="redshift sslmode 'sometimes' is not one of"):
        RedshiftTarget.from_environment({"OPENMRR_REDSHIFT_SSLMODE": "sometimes"})
    with pytest.raises(ConfigError, match="redshift port 'x' is not a number"):
        RedshiftTarget.from_environment({"P": "x"}, {"port": "P"})


def test_an_unreachable_cluster_is_a_clear_error():
    port = free_port()
    with pytest.raises(ConfigError, match=f"redshift 127.0.0.1:{port}/openmrr: cannot connect"):
        RedshiftTarget(port=port, sslmode="disable").connect()
