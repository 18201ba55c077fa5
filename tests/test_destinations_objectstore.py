"""Object storage destinations against real local servers: moto (S3), gcp-storage-emulator (GCS),
Azurite (Azure Blob). spec/destinations.md: one file per dataset under prefix/dataset/run_date=…/,
then manifest.json last, so a reader never sees half a delivery."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import yaml

from openmrr.destinations import log, objectstore
from openmrr.destinations.config import load_destinations
from openmrr.destinations.service import send
from openmrr.errors import DeliveryFailed
from tests.destination_fixtures import Server, set_run

pytestmark = pytest.mark.slow
DATASETS = ["customers", "mrr_activities"]


def _entry(kind: str, server: Server, bucket: str, **extra) -> dict:
    if kind == "s3":
        settings = {"bucket": bucket, "endpoint_url": server.endpoint, "region": "us-east-1",
                    "access_key_id_env": "TEST_S3_KEY", "secret_access_key_env": "TEST_S3_SECRET"}
    elif kind == "gcs":
        settings = {"bucket": bucket, "endpoint_url": server.endpoint, "project": "test"}
    else:
        settings = {"container": bucket, "connection_string_env": "TEST_AZURE_CONNECTION"}
    return {"name": "lake", "type": kind, "datasets": DATASETS, "settings": {"prefix": "exports/openmrr",
                                                                              **settings, **extra}}


def _create_bucket(kind: str, server: Server, bucket: str) -> None:
    """Through each store's own client, as an operator would."""
    if kind == "s3":
        import boto3

        boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_bucket(Bucket=bucket)
    elif kind == "gcs":
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        storage.Client(project="test", credentials=AnonymousCredentials(),
                       client_options={"api_endpoint": server.endpoint}).create_bucket(bucket)
    else:
        from azure.storage.blob import BlobServiceClient

        BlobServiceClient.from_connection_string(server.env["TEST_AZURE_CONNECTION"]).create_container(bucket)


@pytest.fixture(params=["s3", "gcs", "azure_blob"])
def store(request, tmp_path: Path) -> tuple[str, Server, Path]:
    """(type, server, destinations.yml) with a fresh bucket on that type's server."""
    kind = request.param
    server = request.getfixturevalue({"s3": "moto_s3", "gcs": "gcs_emulator", "azure_blob": "azurite"}[kind])
    bucket = f"openmrr-{uuid.uuid4().hex[:12]}"
    _create_bucket(kind, server, bucket)
    path = tmp_path / "destinations.yml"
    path.write_text(yaml.safe_dump({"destinations": [_entry(kind, server, bucket)]}))
    return kind, server, path


def _bucket(path: Path, server: Server) -> objectstore.Bucket:
    destination = load_destinations(path, server.env).get("lake")
    return destination.implementation.open_bucket(destination.settings, server.env)


def _manifest(bucket: objectstore.Bucket) -> dict:
    data = bucket.get_bytes("exports/openmrr/manifest.json")
    assert data is not None, "no manifest"
    return json.loads(data)


def _sorted_rows(warehouse: Path, table: str) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(f"select * from {table} order by all").fetchall()
    finally:
        con.close()


def test_each_dataset_lands_as_parquet_under_its_run_date_with_the_manifest_naming_rows_and_sha256(store, warehouse):
    _, server, path = store
    run, deliveries = send(load_destinations(path, server.env).get("lake"), warehouse, server.env)
    bucket = _bucket(path, server)
    manifest = _manifest(bucket)
    assert [f["dataset"] for f in manifest["files"]] == DATASETS
    for entry in manifest["files"]:
        dataset = entry["dataset"]
        data = bucket.get_bytes(entry["key"])
        assert entry["key"] == (f"exports/openmrr/{dataset}/run_date={run.run_date:%Y-%m-%d}/"
                                f"{dataset}-{entry['sha256'][:16]}.parquet")
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
        table = pq.read_table(io.BytesIO(data))
        expected = _sorted_rows(warehouse, f"analytics.{dataset}")
        assert entry["rows"] == table.num_rows == len(expected) > 0
        assert [tuple(row.values()) for row in table.to_pylist()] == expected
        assert entry["run_id"] == run.run_id
    assert sorted(bucket.list_keys("exports/")) == sorted([f["key"] for f in manifest["files"]]
                                                          + ["exports/openmrr/manifest.json"])
    con = duckdb.connect(str(warehouse), read_only=True)
    logged = con.execute(f"select dataset, status, rows, bytes, checksum, run_id, location from {log.TABLE}"
                         " order by dataset").fetchall()
    con.close()
    assert logged == [(f["dataset"], "delivered", f["rows"], f["bytes"], f["sha256"], run.run_id,
                       bucket.url(f["key"])) for f in manifest["files"]]
    assert [d.status for d in deliveries] == ["delivered", "delivered"]


def test_re_sending_the_same_run_writes_the_same_keys_and_nothing_else(store, warehouse):
    _, server, path = store
    destination = load_destinations(path, server.env).get("lake")
    send(destination, warehouse, server.env)
    bucket = _bucket(path, server)
    first_keys, first_files = sorted(bucket.list_keys("exports/")), _manifest(bucket)["files"]
    send(destination, warehouse, server.env)
    assert sorted(bucket.list_keys("exports/")) == first_keys
    assert _manifest(bucket)["files"] == first_files


def test_csv_format_writes_a_header_and_every_row_and_source_tables_go_under_source(moto_s3, warehouse, tmp_path):
    bucket_name = f"openmrr-{uuid.uuid4().hex[:12]}"
    _create_bucket("s3", moto_s3, bucket_name)
    path = tmp_path / "destinations.yml"
    entry = _entry("s3", moto_s3, bucket_name, format="csv") | {"datasets": ["customers", "source.invoices"]}
    path.write_text(yaml.safe_dump({"destinations": [entry]}))
    run, _ = send(load_destinations(path, moto_s3.env).get("lake"), warehouse, moto_s3.env)
    bucket = _bucket(path, moto_s3)
    customers, invoices = _manifest(bucket)["files"]
    assert customers["key"].endswith(".csv") and customers["format"] == "csv"
    assert invoices["key"].startswith(f"exports/openmrr/source/invoices/run_date={run.run_date:%Y-%m-%d}/invoices-")
    for entry, table in ((customers, "analytics.customers"), (invoices, "source.invoices")):
        rows = list(csv.reader(io.StringIO(bucket.get_bytes(entry["key"]).decode())))
        schema, name = table.split(".")
        con = duckdb.connect(str(warehouse), read_only=True)
        columns = [c for (c,) in con.execute("select column_name from information_schema.columns where"
                                             " table_schema = ? and table_name = ? order by ordinal_position",
                                             [schema, name]).fetchall()]
        con.close()
        assert rows[0] == columns
        assert len(rows) - 1 == entry["rows"] == len(_sorted_rows(warehouse, table)) > 0


def test_a_missing_bucket_is_a_failed_delivery_in_the_log_and_no_manifest(moto_s3, warehouse, tmp_path):
    path = tmp_path / "destinations.yml"
    path.write_text(yaml.safe_dump({"destinations": [_entry("s3", moto_s3, "openmrr-never-created")]}))
    with pytest.raises(DeliveryFailed, match="NoSuchBucket"):
        send(load_destinations(path, moto_s3.env).get("lake"), warehouse, moto_s3.env)
    con = duckdb.connect(str(warehouse), read_only=True)
    statuses = con.execute(f"select dataset, status from {log.TABLE} order by dataset").fetchall()
    con.close()
    assert statuses == [("customers", "failed"), ("mrr_activities", "failed")]


# The child process delivers with a fault planted in the S3 client wrapper: it kills itself (SIGKILL,
# no clean-up) at the chosen moment, as a crash or an OOM kill would.
KILLED_DELIVERY = """
import os, signal, sys
from pathlib import Path
from openmrr.destinations import objectstore
from openmrr.destinations.config import load_destinations
from openmrr.destinations.service import send

moment = sys.argv[3]
put_file, put_bytes = objectstore.S3Bucket.put_file, objectstore.S3Bucket.put_bytes
uploads = []

def dying_put_file(self, key, path, content_type):
    if moment == "after_first_file" and uploads:
        os.kill(os.getpid(), signal.SIGKILL)
    put_file(self, key, path, content_type)
    uploads.append(key)

def dying_put_bytes(self, key, data, content_type):
    if moment == "before_manifest" and key.endswith("manifest.json"):
        os.kill(os.getpid(), signal.SIGKILL)
    put_bytes(self, key, data, content_type)

objectstore.S3Bucket.put_file, objectstore.S3Bucket.put_bytes = dying_put_file, dying_put_bytes
send(load_destinations(Path(sys.argv[1])).get("lake"), Path(sys.argv[2]))
"""


@pytest.mark.parametrize("moment", ["after_first_file", "before_manifest"])
def test_a_delivery_killed_half_way_leaves_the_previous_manifest_pointing_at_complete_files(
        moto_s3, warehouse, tmp_path, moment):
    bucket_name = f"openmrr-{uuid.uuid4().hex[:12]}"
    _create_bucket("s3", moto_s3, bucket_name)
    path = tmp_path / "destinations.yml"
    path.write_text(yaml.safe_dump({"destinations": [_entry("s3", moto_s3, bucket_name)]}))
    destination = load_destinations(path, moto_s3.env).get("lake")
    set_run(warehouse, "2026-03-01 06:00:00")
    send(destination, warehouse, moto_s3.env)
    bucket = _bucket(path, moto_s3)
    previous = bucket.get_bytes("exports/openmrr/manifest.json")

    # a later refresh the same day with different rows, whose delivery dies half-way
    set_run(warehouse, "2026-03-01 12:00:00")
    con = duckdb.connect(str(warehouse))
    con.execute("delete from analytics.customers where customer_id = (select min(customer_id)"
                " from analytics.customers)")
    con.execute("delete from analytics.mrr_activities where activity_id = (select min(activity_id)"
                " from analytics.mrr_activities)")
    con.close()
    child = subprocess.run([sys.executable, "-c", KILLED_DELIVERY, str(path), str(warehouse), moment],
                           env={**os.environ, **moto_s3.env}, capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert len(bucket.list_keys("exports/")) > 3, "the killed delivery uploaded nothing: the fault came too early"

    assert bucket.get_bytes("exports/openmrr/manifest.json") == previous
    for entry in json.loads(previous)["files"]:
        data = bucket.get_bytes(entry["key"])
        assert data is not None and hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert entry["run_id"] == "2026-03-01T06:00:00.000000Z"
        assert pq.read_table(io.BytesIO(data)).num_rows == entry["rows"]

    # the next delivery publishes the new run and clears what the dead one left behind
    send(destination, warehouse, moto_s3.env)
    manifest = _manifest(bucket)
    assert {f["run_id"] for f in manifest["files"]} == {"2026-03-01T12:00:00.000000Z"}
    assert sorted(bucket.list_keys("exports/")) == sorted([f["key"] for f in manifest["files"]]
                                                          + ["exports/openmrr/manifest.json"])
    for entry in manifest["files"]:
        assert entry["rows"] == len(_sorted_rows(warehouse, f"analytics.{entry['dataset']}"))


def test_connection_test_writes_reads_and_removes_a_probe(store):
    _, server, path = store
    from openmrr.destinations.service import check_connection

    message = check_connection(load_destinations(path, server.env).get("lake"), server.env)
    assert "wrote, read back and deleted" in message
    assert _bucket(path, server).list_keys("exports/") == []
