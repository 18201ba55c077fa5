"""Jobs: `refresh` ingests, validates and rebuilds every dataset."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

refresh_job = define_asset_job(
    "refresh", selection=AssetSelection.all(), description="Ingest, validate and rebuild every dataset.",
)
