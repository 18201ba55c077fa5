"""Object storage destinations (`s3`, `gcs`, `azure_blob`): one file per dataset, then a manifest.

Layout under the destination's prefix:

    <prefix>/<dataset>/run_date=YYYY-MM-DD/<dataset>-<sha256[:16]>.parquet   (or .csv)
    <prefix>/manifest.json     the published state: per dataset its key, rows, bytes, sha256, run

Data files are written first, the manifest last, in one PUT (atomic in all three stores). A data
file's key ends in its content hash, so a new delivery never overwrites a file the current manifest
names: a delivery that dies half-way leaves the previous manifest pointing at complete files, and
re-sending the same run (same rows, sorted, same bytes) writes the same keys again. After the manifest,
files in the delivered date folders that it no longer names are deleted (leftovers of superseded or
interrupted deliveries), so a glob over a date folder sees one file per dataset.

The official clients do the transfers (boto3, google-cloud-storage, azure-storage-blob); DuckDB only
writes the local files.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, field_validator

from openmrr.destinations.base import Delivery, DeliveryContext
from openmrr.destinations.config import dataset_table
from openmrr.spreadsheet import spreadsheet_safe_sql

MANIFEST = "manifest.json"
CONTENT_TYPES = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv", "json": "application/json"}
PROBE = ".openmrr-connection-test"


class ObjectStoreSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prefix: str = "openmrr"
    format: Literal["parquet", "csv"] = "parquet"

    @field_validator("prefix")
    @classmethod
    def _no_edge_slashes(cls, value: str) -> str:
        return value.strip("/")


class S3Settings(ObjectStoreSettings):
    bucket: str
    region: str | None = None
    endpoint_url: str | None = None  # an S3-compatible service; default AWS
    access_key_id_env: str | None = None  # both unset: boto3's default credential chain
    secret_access_key_env: str | None = None
    session_token_env: str | None = None


class GCSSettings(ObjectStoreSettings):
    bucket: str
    project: str | None = None
    endpoint_url: str | None = None  # an emulator or private endpoint; without credentials: anonymous
    credentials_env: str | None = None  # names a variable holding a service-account key file's path


class AzureBlobSettings(ObjectStoreSettings):
    container: str
    connection_string_env: str


class Bucket(Protocol):
    """The few operations a delivery needs, over one bucket or container."""

    def url(self, key: str) -> str: ...
    def put_file(self, key: str, path: Path, content_type: str) -> None: ...
    def put_bytes(self, key: str, data: bytes, content_type: str) -> None: ...
    def get_bytes(self, key: str) -> bytes | None: ...
    def list_keys(self, prefix: str) -> list[str]: ...
    def delete(self, keys: list[str]) -> None: ...


class S3Bucket:
    def __init__(self, settings: S3Settings, environ: Mapping[str, str]) -> None:
        import boto3

        def secret(name: str | None) -> str | None:
            return environ[name] if name else None

        self.name = settings.bucket
        self.client = boto3.client(
            "s3", endpoint_url=settings.endpoint_url, region_name=settings.region,
            aws_access_key_id=secret(settings.access_key_id_env),
            aws_secret_access_key=secret(settings.secret_access_key_env),
            aws_session_token=secret(settings.session_token_env),
        )

    def url(self, key: str) -> str:
        return f"s3://{self.name}/{key}"

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        self.client.upload_file(str(path), self.name, key, ExtraArgs={"ContentType": content_type})

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=data, ContentType=content_type)

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def list_keys(self, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start:start + 1000]]
            self.client.delete_objects(Bucket=self.name, Delete={"Objects": batch, "Quiet": True})


class GCSBucket:
    def __init__(self, settings: GCSSettings, environ: Mapping[str, str]) -> None:
        from google.cloud import storage

        options = {"api_endpoint": settings.endpoint_url} if settings.endpoint_url else None
        if settings.credentials_env:
            client = storage.Client.from_service_account_json(environ[settings.credentials_env],
                                                              project=settings.project, client_options=options)
        elif settings.endpoint_url:
            from google.auth.credentials import AnonymousCredentials

            client = storage.Client(project=settings.project or "openmrr", credentials=AnonymousCredentials(),
                                    client_options=options)
        else:
            client = storage.Client(project=settings.project)
        self.client, self.name = client, settings.bucket
        self.bucket = client.bucket(settings.bucket)

    def url(self, key: str) -> str:
        return f"gs://{self.name}/{key}"

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        self.bucket.blob(key).upload_from_filename(str(path), content_type=content_type)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self.bucket.blob(key).upload_from_string(data, content_type=content_type)

    def get_bytes(self, key: str) -> bytes | None:
        from google.api_core.exceptions import NotFound

        try:
            return self.bucket.blob(key).download_as_bytes()
        except NotFound:
            return None

    def list_keys(self, prefix: str) -> list[str]:
        return [blob.name for blob in self.client.list_blobs(self.name, prefix=prefix)]

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            self.bucket.blob(key).delete()


class AzureContainer:
    def __init__(self, settings: AzureBlobSettings, environ: Mapping[str, str]) -> None:
        from azure.storage.blob import BlobServiceClient

        service = BlobServiceClient.from_connection_string(environ[settings.connection_string_env])
        self.name = settings.container
        self.container = service.get_container_client(settings.container)
        self.account = service.account_name

    def url(self, key: str) -> str:
        return f"azure://{self.account}/{self.name}/{key}"

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        from azure.storage.blob import ContentSettings

        with path.open("rb") as data:
            self.container.upload_blob(key, data, overwrite=True,
                                       content_settings=ContentSettings(content_type=content_type))

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        from azure.storage.blob import ContentSettings

        self.container.upload_blob(key, data, overwrite=True,
                                   content_settings=ContentSettings(content_type=content_type))

    def get_bytes(self, key: str) -> bytes | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.container.download_blob(key).readall()
        except ResourceNotFoundError:
            return None

    def list_keys(self, prefix: str) -> list[str]:
        return list(self.container.list_blob_names(name_starts_with=prefix))

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            self.container.delete_blob(key)


def _join(*parts: str) -> str:
    return "/".join(part for part in parts if part)


def dataset_folder(prefix: str, dataset: str, run_date: Any) -> str:
    """`<prefix>/<dataset>/run_date=YYYY-MM-DD/` (a `source.x` dataset goes under source/x/)."""
    return _join(prefix, dataset.replace(".", "/"), f"run_date={run_date:%Y-%m-%d}") + "/"


def _quoted_identifier(name: str) -> str:
    """A double-quoted DuckDB identifier (a column name read from the warehouse's catalog)."""
    return '"' + name.replace('"', '""') + '"'


def csv_columns(context: DeliveryContext, table: str) -> str:
    """The select list for a CSV file: text (VARCHAR) columns formula-safe, every other column as it is,
    so numbers such as -5.00 stay numbers; Parquet keeps the values exactly."""
    described = context.connection.execute(f"describe select * from {table}").fetchall()
    return ", ".join(f"{spreadsheet_safe_sql(_quoted_identifier(name))} as {_quoted_identifier(name)}"
                     if column_type == "VARCHAR" else _quoted_identifier(name) for name, column_type, *_ in described)


def export(context: DeliveryContext, dataset: str, path: Path, file_format: str) -> int:
    """Write the dataset, rows sorted so the same run gives the same bytes; return the row count.
    A CSV file's text cells are neutralised against spreadsheet formulas (`csv_columns`)."""
    table = dataset_table(dataset)
    columns = "*" if file_format == "parquet" else csv_columns(context, table)
    options = "format parquet" if file_format == "parquet" else "format csv, header true"
    target = str(path).replace("'", "''")
    (rows,) = context.connection.execute(
        f"copy (select {columns} from {table} order by all) to '{target}' ({options})").fetchone()
    return int(rows)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(bucket: Bucket, prefix: str) -> dict[str, Any] | None:
    data = bucket.get_bytes(_join(prefix, MANIFEST))
    return json.loads(data) if data is not None else None


class ObjectStoreType:
    """One object-storage destination type: the shared delivery over its client's Bucket."""

    DATASETS: tuple[str, ...] = ()  # any dataset

    def __init__(self, settings: type[ObjectStoreSettings], open_bucket: Callable[[Any, Mapping[str, str]], Bucket]):
        self.Settings = settings
        self.open_bucket = open_bucket

    def deliver(self, settings: Any, context: DeliveryContext) -> list[Delivery]:
        bucket = self.open_bucket(settings, context.environ)
        previous = read_manifest(bucket, settings.prefix) or {}
        files = {entry["dataset"]: entry for entry in previous.get("files", [])}
        extension = settings.format
        started: dict[str, datetime] = {}
        with tempfile.TemporaryDirectory(prefix="openmrr-delivery-") as scratch:
            for dataset in context.datasets:
                started[dataset] = datetime.now(UTC)
                path = Path(scratch) / f"{dataset}.{extension}"
                rows = export(context, dataset, path, settings.format)
                checksum = sha256_of(path)
                leaf = dataset.rsplit(".", 1)[-1]
                key = dataset_folder(settings.prefix, dataset, context.run_date) + f"{leaf}-{checksum[:16]}.{extension}"
                bucket.put_file(key, path, CONTENT_TYPES[extension])
                files[dataset] = {"dataset": dataset, "key": key, "format": settings.format, "rows": rows,
                                  "bytes": path.stat().st_size, "sha256": checksum, "run_id": context.run_id,
                                  "run_date": f"{context.run_date:%Y-%m-%d}"}
        manifest = {"destination": context.destination, "updated_at": datetime.now(UTC).isoformat(),
                    "files": [files[name] for name in sorted(files)]}
        bucket.put_bytes(_join(settings.prefix, MANIFEST), json.dumps(manifest, indent=2).encode(),
                         CONTENT_TYPES["json"])
        finished = datetime.now(UTC)
        self._remove_unlisted(bucket, settings.prefix, context, {entry["key"] for entry in files.values()})
        return [Delivery(context.destination, dataset, context.run_id, "delivered", files[dataset]["rows"],
                         files[dataset]["bytes"], files[dataset]["sha256"], started[dataset], finished,
                         location=bucket.url(files[dataset]["key"])) for dataset in context.datasets]

    @staticmethod
    def _remove_unlisted(bucket: Bucket, prefix: str, context: DeliveryContext, listed: Iterable[str]) -> None:
        keep = set(listed)
        for dataset in context.datasets:
            stale = [key for key in bucket.list_keys(dataset_folder(prefix, dataset, context.run_date))
                     if key not in keep]
            if stale:
                bucket.delete(stale)

    def check(self, settings: Any, environ: Mapping[str, str]) -> str:
        """Write, read back and delete a small probe object under the prefix."""
        bucket = self.open_bucket(settings, environ)
        key = _join(settings.prefix, PROBE)
        payload = f"openmrr connection test {datetime.now(UTC).isoformat()}".encode()
        bucket.put_bytes(key, payload, "text/plain")
        if bucket.get_bytes(key) != payload:
            raise RuntimeError(f"{bucket.url(key)} did not read back what was written")
        bucket.delete([key])
        return f"wrote, read back and deleted {bucket.url(key)}"


s3 = ObjectStoreType(S3Settings, S3Bucket)
gcs = ObjectStoreType(GCSSettings, GCSBucket)
azure_blob = ObjectStoreType(AzureBlobSettings, AzureContainer)
