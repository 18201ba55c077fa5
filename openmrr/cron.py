"""Whether a cron expression can be a Dagster schedule: the settings' `refresh_cron` and each destination's
`schedule` become `ScheduleDefinition`s, so Dagster itself is asked, through its public API. Imported only
when a cron is checked (`import openmrr` imports no Dagster)."""

from __future__ import annotations


def is_schedule_cron(expression: str) -> bool:
    """True when Dagster accepts `expression` as a schedule's cron (five fields, or an alias like @daily)."""
    from dagster import DagsterInvalidDefinitionError, ScheduleDefinition

    try:
        ScheduleDefinition(name="cron_check", cron_schedule=expression, job_name="cron_check")
    except DagsterInvalidDefinitionError:
        return False
    return True
