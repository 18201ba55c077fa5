"""One asset per destination of destinations.yml (group `destinations`), downstream of the datasets it
sends; one job per destination, and a schedule for each that declares `schedule`.

The assets are built when the code location loads, from the file OPENMRR_DESTINATIONS names; a run
re-reads the file, so a destination deleted since then stops delivering at once. Each materialisation
carries the delivery records (rows, bytes, checksum, status) as metadata.
"""

import os
from collections.abc import Sequence
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    DefaultScheduleStatus,
    MaterializeResult,
    MetadataValue,
    ScheduleDefinition,
    asset,
    define_asset_job,
)

from openmrr.destinations.base import Delivery
from openmrr.destinations.config import Destination, DestinationsFile, load_destinations
from openmrr.destinations.log import Run
from orchestration.resources import DestinationsResource, OpenMRRWarehouse

GROUP = "destinations"
FILE_VARIABLE = "OPENMRR_DESTINATIONS"


def destinations_from_environment() -> DestinationsFile | None:
    """The file OPENMRR_DESTINATIONS names, read when the code location loads; None when unset."""
    file = os.environ.get(FILE_VARIABLE)
    return load_destinations(Path(file), check_env=False) if file else None


def destination_key(name: str) -> AssetKey:
    return AssetKey([GROUP, name])


def dataset_key(dataset: str) -> AssetKey:
    """The dbt asset of a dataset: `customers` -> analytics/customers, `source.invoices` -> source/invoices."""
    schema, _, table = dataset.rpartition(".")
    return AssetKey([schema or "analytics", table])


def delivery_metadata(run: Run, deliveries: Sequence[Delivery]) -> dict[str, MetadataValue]:
    """Totals, and one table row per dataset, for the asset's materialisation."""
    statuses = sorted({d.status for d in deliveries})
    lines = ["| dataset | status | rows | bytes | checksum | where |", "|---|---|---|---|---|---|"]
    lines += [f"| {d.dataset} | {d.status} | {d.rows} | {d.bytes} | {d.checksum or ''}"
              f" | {d.location or d.error or ''} |" for d in deliveries]
    return {
        "run_id": MetadataValue.text(run.run_id),
        "run_date": MetadataValue.text(f"{run.run_date:%Y-%m-%d}"),
        "status": MetadataValue.text(", ".join(statuses)),
        "rows": MetadataValue.int(sum(d.rows for d in deliveries if d.status == "delivered")),
        "bytes": MetadataValue.int(sum(d.bytes for d in deliveries if d.status == "delivered")),
        "deliveries": MetadataValue.md("\n".join(lines)),
        **{f"checksum/{d.dataset}": MetadataValue.text(d.checksum) for d in deliveries if d.checksum},
    }


def destination_asset(destination: Destination) -> AssetsDefinition:
    @asset(key=destination_key(destination.name), group_name=GROUP, kinds={destination.type},
           deps=[dataset_key(d) for d in destination.datasets],
           description=f"{destination.type} destination: sends {', '.join(destination.datasets)}.")
    def _deliver(context: AssetExecutionContext, openmrr: OpenMRRWarehouse,
                 destinations: DestinationsResource) -> MaterializeResult:
        from openmrr.destinations.service import send

        current = destinations.load().get(destination.name)
        run, deliveries = send(current, openmrr.warehouse_path, destinations.environ())
        for delivery in deliveries:
            context.log.info(f"{delivery.dataset}: {delivery.status}, {delivery.rows} rows, {delivery.bytes} bytes")
        return MaterializeResult(metadata=delivery_metadata(run, deliveries))

    return _deliver


def destination_definitions(destinations: DestinationsFile | None) -> tuple[
        list[AssetsDefinition], list, list[ScheduleDefinition]]:
    """(assets, jobs, schedules) for every declared destination."""
    assets, jobs, schedules = [], [], []
    for destination in destinations.destinations if destinations else ():
        assets.append(destination_asset(destination))
        job = define_asset_job(f"deliver_{destination.name}",
                               selection=AssetSelection.assets(destination_key(destination.name)),
                               description=f"Send the latest run to destination {destination.name}.")
        jobs.append(job)
        if destination.schedule:
            schedules.append(ScheduleDefinition(
                name=f"deliver_{destination.name}_schedule", job=job, cron_schedule=destination.schedule,
                execution_timezone="UTC", default_status=DefaultScheduleStatus.RUNNING))
    return assets, jobs, schedules
