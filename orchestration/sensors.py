"""Start a refresh when files in the data folder are added or changed."""

from __future__ import annotations

import hashlib
import json

from dagster import RunRequest, SensorEvaluationContext, SkipReason, sensor

from orchestration.jobs import refresh_job
from orchestration.resources import OpenMRRWarehouse


def data_folder_fingerprint(openmrr: OpenMRRWarehouse) -> str:
    """A digest of every file's path, size and modification time: cheap, and changes with any edit."""
    entries = sorted(
        (str(path.relative_to(openmrr.data_path)), path.stat().st_size, path.stat().st_mtime_ns)
        for path in openmrr.data_path.rglob("*") if path.is_file() and not path.name.startswith(".")
    )
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()


@sensor(job=refresh_job, minimum_interval_seconds=60, description="New or changed files in the data folder.")
def data_folder_sensor(context: SensorEvaluationContext, openmrr: OpenMRRWarehouse):
    if not openmrr.data_path.is_dir():
        return SkipReason(f"{openmrr.data_path} is not a folder")
    fingerprint = data_folder_fingerprint(openmrr)
    if fingerprint == context.cursor:
        return SkipReason("no new or changed files")
    context.update_cursor(fingerprint)
    return RunRequest(run_key=fingerprint)
