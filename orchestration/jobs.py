"""Jobs: `refresh` ingests, validates and rebuilds every dataset (deliveries have their own jobs)."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

refresh_job = define_asset_job(
    "refresh", selection=AssetSelection.all() - AssetSelection.groups("destinations"),
    description="Ingest, validate and rebuild every dataset.",
)
