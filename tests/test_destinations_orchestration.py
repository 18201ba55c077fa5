"""Destinations in Dagster and on the command line: an asset per destination downstream of its datasets,
a schedule per `schedule`, delivery records as metadata; deleting a destination stops its deliveries
and leaves what it delivered alone (spec/destinations.md)."""

from __future__ import annotations

import uuid
from pathlib import Path

import duckdb
import pytest
import yaml
from dagster import AssetKey
from typer.testing import CliRunner

from openmrr import cli
from openmrr.cli import app
from openmrr.destinations import log
from openmrr.destinations.config import load_destinations
from orchestration.definitions import build_definitions
from orchestration.resources import DestinationsResource, OpenMRRWarehouse

pytestmark = pytest.mark.slow


def _email_entry(server, name: str = "finance", schedule: str | None = "30 7 * * 1-5") -> dict:
    return {"name": name, "type": "email", "datasets": ["customers", "mrr_activities"], "schedule": schedule,
            "settings": {"host": "127.0.0.1", "port": server.port, "username_env": "RELAY_USER",
                         "password_env": "RELAY_PASSWORD", "ca_file": str(server.ca_file),
                         "sender": "openmrr@acme.example", "to": ["cfo@acme.example"]}}


def _write(path: Path, *entries: dict) -> Path:
    path.write_text(yaml.safe_dump({"destinations": list(entries)}))
    return path


def _log_rows(warehouse: Path) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(f"select destination, dataset, status, rows, bytes, checksum from {log.TABLE}"
                           " order by destination, dataset").fetchall()
    finally:
        con.close()


def test_each_destination_is_an_asset_after_its_datasets_with_its_own_schedule_and_delivery_metadata(
        smtp_server, warehouse, tmp_path, monkeypatch):
    monkeypatch.setenv("RELAY_USER", smtp_server.user)
    monkeypatch.setenv("RELAY_PASSWORD", smtp_server.password)
    path = _write(tmp_path / "destinations.yml", _email_entry(smtp_server),
                  _email_entry(smtp_server, name="board", schedule=None))
    defs = build_definitions(load_destinations(path, check_env=False))

    graph = defs.resolve_asset_graph()
    finance = graph.get(AssetKey(["destinations", "finance"]))
    assert finance.group_name == "destinations"
    assert set(finance.parent_keys) == {AssetKey(["analytics", "customers"]), AssetKey(["analytics", "mrr_activities"])}
    schedules = {s.name: s for s in defs.schedules}
    assert schedules["deliver_finance_schedule"].cron_schedule == "30 7 * * 1-5"
    assert schedules["deliver_finance_schedule"].execution_timezone == "UTC"
    assert "deliver_board_schedule" not in schedules
    refresh_keys = defs.resolve_job_def("refresh").asset_layer.executable_asset_keys
    assert AssetKey(["analytics", "customers"]) in refresh_keys
    assert not any(key.path[0] == "destinations" for key in refresh_keys)

    result = defs.resolve_job_def("deliver_finance").execute_in_process(resources={
        "openmrr": OpenMRRWarehouse(data_dir=str(tmp_path), warehouse=str(warehouse)),
        "destinations": DestinationsResource(file=str(path)),
    })
    assert result.success
    assert len(smtp_server.messages) == 1
    (event,) = result.get_asset_materialization_events()
    assert event.asset_key == AssetKey(["destinations", "finance"])
    metadata = {key: value.value for key, value in event.materialization.metadata.items()}
    logged = _log_rows(warehouse)
    assert [row[:3] for row in logged] == [("finance", "customers", "delivered"),
                                           ("finance", "mrr_activities", "delivered")]
    assert metadata["status"] == "delivered"
    assert metadata["rows"] == sum(row[3] for row in logged) and metadata["bytes"] == sum(row[4] for row in logged)
    assert metadata["checksum/customers"] == logged[0][5]
    assert "| customers | delivered |" in metadata["deliveries"]


def test_deleting_a_destination_stops_its_deliveries_and_keeps_what_it_delivered(
        moto_s3, warehouse, tmp_path, monkeypatch):
    import boto3

    for name, value in moto_s3.env.items():
        monkeypatch.setenv(name, value)
    bucket = f"openmrr-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=moto_s3.endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=bucket)
    lake = {"name": "lake", "type": "s3", "datasets": ["customers"], "schedule": "0 7 * * *",
            "settings": {"bucket": bucket, "endpoint_url": moto_s3.endpoint, "region": "us-east-1",
                         "access_key_id_env": "TEST_S3_KEY", "secret_access_key_env": "TEST_S3_SECRET"}}
    archive = {**lake, "name": "archive", "schedule": None, "settings": {**lake["settings"], "prefix": "archive"}}
    path = _write(tmp_path / "destinations.yml", lake, archive)
    monkeypatch.setattr(cli.out, "width", 240)  # whole keys on one line
    runner = CliRunner()
    sent = runner.invoke(app, ["destinations", "send", "lake", "--file", str(path), "--warehouse", str(warehouse)])
    assert sent.exit_code == 0, sent.output
    assert "delivered" in sent.output and f"s3://{bucket}/openmrr/customers/run_date=" in sent.output
    delivered = {item["Key"]: item["ETag"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    loaded_before = build_definitions(load_destinations(path, check_env=False))

    _write(path, archive)  # the user deletes `lake`
    again = runner.invoke(app, ["destinations", "send", "lake", "--file", str(path), "--warehouse", str(warehouse)])
    assert again.exit_code == 2 and "no destination named 'lake' (declared: archive)" in again.output
    after = build_definitions(load_destinations(path, check_env=False))
    assert AssetKey(["destinations", "lake"]) not in after.resolve_asset_graph().get_all_asset_keys()
    assert [s.name for s in after.schedules] == ["daily_refresh"]
    # a code location loaded before the deletion re-reads the file when its job runs: nothing is sent
    stale = loaded_before.resolve_job_def("deliver_lake").execute_in_process(raise_on_error=False, resources={
        "openmrr": OpenMRRWarehouse(data_dir=str(tmp_path), warehouse=str(warehouse)),
        "destinations": DestinationsResource(file=str(path)),
    })
    assert not stale.success

    assert {item["Key"]: item["ETag"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]} == delivered
    assert [row[:3] for row in _log_rows(warehouse)] == [("lake", "customers", "delivered")]
    shown = runner.invoke(app, ["destinations", "log", "--warehouse", str(warehouse)])
    assert shown.exit_code == 0 and "lake" in shown.output and "customers" in shown.output
