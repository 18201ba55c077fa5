"""Jobs and automation."""

from __future__ import annotations

from dagster import AssetSelection, ScheduleDefinition, define_asset_job

refresh_job = define_asset_job(
    "refresh", selection=AssetSelection.all(), description="Ingest, validate and rebuild every dataset.",
)
daily_refresh = ScheduleDefinition(job=refresh_job, cron_schedule="0 6 * * *", execution_timezone="UTC")
