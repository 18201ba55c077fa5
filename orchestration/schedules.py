"""The daily refresh, at the cron of the settings (`refresh_cron` in openmrr.yml)."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import DefaultScheduleStatus, ScheduleDefinition

from openmrr.errors import OpenMRRError
from openmrr.settings import DEFAULT_REFRESH_CRON, SETTINGS_FILE, load_settings
from orchestration.jobs import refresh_job


def refresh_cron() -> str:
    """The cron of the data folder's settings, read when the code location loads."""
    data_dir = os.environ.get("OPENMRR_DATA_DIR")
    if not data_dir:
        return DEFAULT_REFRESH_CRON
    try:
        return load_settings(Path(data_dir) / SETTINGS_FILE).refresh_cron
    except OpenMRRError:
        return DEFAULT_REFRESH_CRON  # the run itself reports the settings error


daily_refresh = ScheduleDefinition(
    name="daily_refresh", job=refresh_job, cron_schedule=refresh_cron(), execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
)
