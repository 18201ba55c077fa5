"""The Dagster instance (DAGSTER_HOME) OpenMRR records runs in: its dagster.yaml, and the runs whose process
died without telling it."""

from __future__ import annotations

import socket
from pathlib import Path

import psutil
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunRecord, RunsFilter

# Written where no dagster.yaml exists: Dagster's defaults, except that no usage statistics leave the
# machine (dbt's are off too, see openmrr.transform.dbt_environment).
DAGSTER_YAML = """\
# Written by OpenMRR: Dagster's defaults, without sending usage statistics (telemetry) to Dagster.
telemetry:
  enabled: false
"""

# Tags of every `openmrr run`: which process executes it, so a later start can tell that it died.
PID_TAG = "openmrr/pid"
HOST_TAG = "openmrr/host"
# A process started this long after a run's start cannot be the one running it (the pid was reused).
PID_REUSE_SLACK_SECONDS = 2.0


def prepare_dagster_home(home: Path) -> Path:
    """Create `home` and, when it has no dagster.yaml (or an empty one, as earlier versions wrote), write
    ours with telemetry off. A dagster.yaml of the user's own is left as it is."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or not config.read_text().strip():
        config.write_text(DAGSTER_YAML)
    return home


def run_tags() -> dict[str, str]:
    """The tags that let `fail_orphaned_runs` find an in-process run's process."""
    import os

    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def fail_orphaned_runs(instance: DagsterInstance) -> list[str]:
    """Mark failed (or canceled, if a cancel was asked) every run still STARTING, STARTED or CANCELING whose
    process is gone: killed (kill -9, out of memory), or stopped with the machine. Nothing reports the end
    of such a run, so the UI would show it running forever. Returns the ids of the runs marked.

    The process is the run's `openmrr/pid` tag (`openmrr run`), else the pid of its first engine event
    (a run launched from the UI: its run worker). A run without either has not started a process yet."""
    statuses = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
    marked = []
    for record in instance.get_run_records(RunsFilter(statuses=statuses)):
        run = record.dagster_run
        if run.tags.get(HOST_TAG, socket.gethostname()) != socket.gethostname():
            continue  # another machine's process: not ours to judge
        pid = _run_pid(instance, record)
        if pid is None or _running(pid, record):
            continue
        message = (f"The process running this run (pid {pid}) ended without reporting its end (killed?);"
                   " marked by OpenMRR when it next started.")
        if run.status == DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, message)
        else:
            instance.report_run_failed(run, message)
        marked.append(run.run_id)
    return marked


def _run_pid(instance: DagsterInstance, record: RunRecord) -> int | None:
    tagged = record.dagster_run.tags.get(PID_TAG)
    if tagged is not None:
        return int(tagged)
    events = instance.get_records_for_run(record.dagster_run.run_id, of_type=DagsterEventType.ENGINE_EVENT,
                                          limit=20).records
    for event in events:
        dagster_event = event.event_log_entry.dagster_event
        data = dagster_event.engine_event_data if dagster_event else None
        pid = data.metadata.get("pid") if data else None
        if pid is not None:
            return int(pid.value)
    return None


def _running(pid: int, record: RunRecord) -> bool:
    """Whether `pid` is alive and old enough to be the process that started the run."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        started = record.start_time or record.create_timestamp.timestamp()
        return process.create_time() <= started + PID_REUSE_SLACK_SECONDS
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # cannot tell (another user's process): leave the run alone
