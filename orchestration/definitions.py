"""The one Definitions of the OpenMRR code location."""

from __future__ import annotations

from dagster import Definitions

from openmrr.destinations.config import DestinationsFile
from openmrr.pipeline import Progress
from orchestration.assets.dbt import openmrr_dbt_models
from orchestration.assets.destinations import destination_definitions, destinations_from_environment
from orchestration.assets.ingest import ingest_and_validate
from orchestration.assets.reference import reference_files
from orchestration.jobs import refresh_job
from orchestration.resources import default_destinations_resource, default_warehouse_resource
from orchestration.schedules import daily_refresh
from orchestration.sensors import data_folder_sensor


def build_definitions(destinations: DestinationsFile | None) -> Definitions:
    """The code location, with one asset, job and (optional) schedule per declared destination."""
    destination_assets, destination_jobs, destination_schedules = destination_definitions(destinations)
    return Definitions(
        assets=[*reference_files, ingest_and_validate, openmrr_dbt_models, *destination_assets],
        jobs=[refresh_job, *destination_jobs],
        schedules=[daily_refresh, *destination_schedules],
        sensors=[data_folder_sensor],
        resources={
            "openmrr": default_warehouse_resource(),
            "destinations": default_destinations_resource(),
            # front ends (the CLI's progress bars) replace these no-op callbacks
            "progress": Progress(),
        },
    )


defs = build_definitions(destinations_from_environment())
