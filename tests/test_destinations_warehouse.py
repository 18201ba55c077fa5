"""Warehouse destinations from destinations.yml: the embedded DuckDB copy (load mode into a file) and
PostgreSQL in both modes through `openmrr destinations send`, equal to the embedded warehouse.

The per-warehouse copy and build paths have their own tests (test_postgres, test_redshift,
test_snowflake, test_bigquery); these prove the destination wiring: settings, variables, modes,
the delivery log.
"""

from __future__ import annotations

import duckdb
import pytest
import yaml
from typer.testing import CliRunner

from openmrr.cli import app
from openmrr.destinations.config import ANALYTICS_DATASETS, load_destinations
from openmrr.destinations.service import send
from openmrr.errors import DeliveryFailed
from openmrr.warehouses.checksum import table_checksum
from openmrr.warehouses.postgres import PostgresTarget
from tests.servers import postgres_server
from tests.warehouse_compare import assert_loaded_datasets_match, assert_same_marts


def _destinations(tmp_path, *entries):
    path = tmp_path / "destinations.yml"
    path.write_text(yaml.safe_dump({"destinations": list(entries)}))
    return path


def _log(warehouse, destination):
    with duckdb.connect(str(warehouse)) as con:
        return con.execute("select dataset, status, rows, checksum, location from delivery.deliveries"
                           " where destination = ? order by dataset", [destination]).fetchall()


def _checksum(path, dataset):
    with duckdb.connect(str(path)) as con:
        columns = [d[0] for d in con.execute(f"select * from analytics.{dataset} limit 0").description]
        return table_checksum(con.cursor(), f"analytics.{dataset}", columns)


def test_duckdb_load_mode_copies_each_dataset_into_another_file_and_logs_its_checksum(warehouse, tmp_path):
    copy = tmp_path / "copy" / "datasets.duckdb"
    path = _destinations(tmp_path, {"name": "copy", "type": "duckdb", "datasets": ["customers", "mrr_activities"],
                                    "settings": {"mode": "load", "path": str(copy)}})
    send(load_destinations(path, {}).get("copy"), warehouse, {})
    log = _log(warehouse, "copy")
    assert [row[:2] for row in log] == [("customers", "delivered"), ("mrr_activities", "delivered")]
    for dataset, _status, rows, sha256, location in log:
        copied = _checksum(copy, dataset)
        assert (copied.rows, copied.digest) == (rows, sha256) == _as_pair(_checksum(warehouse, dataset))
        assert location.endswith(f"analytics.{dataset}")
        assert rows > 0


def _as_pair(checksum):
    return checksum.rows, checksum.digest


def test_duckdb_destination_cannot_load_into_the_embedded_warehouse_itself(warehouse, tmp_path):
    path = _destinations(tmp_path, {"name": "self", "type": "duckdb", "settings": {"mode": "load",
                                                                                   "path": str(warehouse)}})
    with pytest.raises(DeliveryFailed, match="is the embedded warehouse itself"):
        send(load_destinations(path, {}).get("self"), warehouse, {})


def test_warehouse_destinations_send_the_marts_by_default(tmp_path):
    path = _destinations(tmp_path, {"name": "pg", "type": "postgres", "settings": {"mode": "load"}})
    assert load_destinations(path, {}).get("pg").datasets == ANALYTICS_DATASETS


def test_compute_mode_needs_the_settings_the_embedded_build_recorded(warehouse, tmp_path):
    with duckdb.connect(str(warehouse)) as con:
        con.execute("drop table analytics_internal.int_build_settings")
    path = _destinations(tmp_path, {"name": "pg", "type": "postgres", "settings": {"mode": "compute"}})
    environ = {"OPENMRR_PG_PORT": "1"}
    with pytest.raises(DeliveryFailed, match="int_build_settings not found"):
        send(load_destinations(path, environ).get("pg"), warehouse, environ)


@pytest.mark.slow
def test_postgres_compute_and_load_modes_from_destinations_yml_equal_the_embedded_warehouse(warehouse, tmp_path):
    with postgres_server(("computed", "loaded")) as port:
        environ = {"ACME_PG_HOST": "127.0.0.1", "ACME_PG_PORT": str(port), "ACME_PG_USER": "postgres",
                   "ACME_PG_PASSWORD": "unused-with-trust-auth", "COMPUTED_DB": "computed", "LOADED_DB": "loaded"}
        connection = {"host_env": "ACME_PG_HOST", "port_env": "ACME_PG_PORT", "user_env": "ACME_PG_USER",
                      "password_env": "ACME_PG_PASSWORD"}
        path = _destinations(
            tmp_path,
            {"name": "pg_compute", "type": "postgres", "settings": {"mode": "compute", **connection,
                                                                     "database_env": "COMPUTED_DB"}},
            {"name": "pg_load", "type": "postgres", "settings": {"mode": "load", **connection,
                                                                  "database_env": "LOADED_DB"}},
        )
        runner = CliRunner(env=environ)
        for name in ("pg_compute", "pg_load"):
            result = runner.invoke(app, ["destinations", "send", name, "--file", str(path),
                                         "--warehouse", str(warehouse)])
            assert result.exit_code == 0, result.output

        assert_same_marts(warehouse, PostgresTarget(port=port, database="computed").connect)
        loaded = {dataset: rows for dataset, _status, rows, _sha, _where in _log(warehouse, "pg_load")}
        assert_loaded_datasets_match(warehouse, PostgresTarget(port=port, database="loaded").connect, loaded)
        assert {status for _d, status, *_ in _log(warehouse, "pg_compute")} == {"delivered"}
