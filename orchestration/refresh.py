"""`refresh`: the one way a refresh runs, for the command line, the tests and the benchmarks alike.

It executes the Dagster job `refresh` in this process against the instance of DAGSTER_HOME, so every run
is in the run history `openmrr ui` shows."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, redirect_stdout
from pathlib import Path

from dagster import DagsterInstance

from openmrr.errors import OpenMRRError
from openmrr.pipeline import (
    Progress,
    RunResult,
    connect,
    prepare_warehouse_folder,
    require_data_folder,
    resolve_settings,
    summarise,
)
from openmrr.quality import stored_reports
from orchestration.definitions import defs
from orchestration.failures import EXIT_CODE, KIND
from orchestration.instance import fail_orphaned_runs, prepare_dagster_home, run_tags
from orchestration.resources import OpenMRRWarehouse


class RunFailed(OpenMRRError):
    """A run that failed: the message, exit code and class (`kind`, e.g. "DataRejected") of the error a step
    reported (orchestration.failures), or a bug's deepest cause."""

    def __init__(self, message: str, exit_code: int, kind: str, run_id: str) -> None:
        super().__init__(message)
        self.exit_code, self.kind, self.run_id = exit_code, kind, run_id


def dagster_instance(warehouse: Path) -> DagsterInstance:
    """The instance of DAGSTER_HOME (when unset, a `dagster` folder beside the warehouse), with our
    dagster.yaml where it has none (telemetry off; stated, so Dagster does not warn that the file is
    missing), and every run a killed process left STARTED marked failed. Opened from its folder, so the
    process environment stays as it was."""
    configured = os.environ.get("DAGSTER_HOME")
    home = prepare_dagster_home(Path(configured or warehouse.resolve().parent / "dagster"))
    instance = DagsterInstance.from_config(str(home))
    fail_orphaned_runs(instance)
    return instance


def console_run_config(verbose: bool) -> dict:
    """Dagster's console logger prints every event at DEBUG level, and a step's failure with its traceback.
    The run's event log in DAGSTER_HOME records all of them either way; the command line shows its own
    progress and the user's error, so the console logger stays quiet unless --verbose."""
    return {"loggers": {"console": {"config": {"log_level": "DEBUG" if verbose else "CRITICAL"}}}}


@contextmanager
def _stdout_discarded() -> Iterator[None]:
    with open(os.devnull, "w") as sink, redirect_stdout(sink):
        yield


def refresh(data_dir: Path, warehouse: Path, config: Path | None = None,
            progress: Progress | None = None, verbose: bool = False) -> RunResult:
    """Ingest, validate and build every dataset of `data_dir` into `warehouse` (the job `refresh`); raise
    RunFailed with the error a step reported, or ConfigError/StorageError before the run for a missing
    data folder, bad settings or a warehouse folder that cannot be written."""
    require_data_folder(data_dir)
    settings = resolve_settings(data_dir, config)
    prepare_warehouse_folder(warehouse)
    progress = progress or Progress()
    warnings: list[str] = []
    forward_warning = progress.on_warning

    def on_warning(warning: str) -> None:
        warnings.append(warning)
        forward_warning(warning)

    progress = Progress(progress.on_step, progress.on_file, progress.on_node, on_warning)
    resource = OpenMRRWarehouse(data_dir=str(data_dir.resolve()), warehouse=str(warehouse.resolve()),
                                config=str(config.resolve()) if config else None,
                                settings_json=settings.model_dump_json())
    with dagster_instance(warehouse) as instance, nullcontext() if verbose else _stdout_discarded():
        result = defs.resolve_job_def("refresh").execute_in_process(
            run_config=console_run_config(verbose), instance=instance, raise_on_error=False, tags=run_tags(),
            resources={"openmrr": resource, "progress": progress},
        )
    if not result.success:
        raise _run_failure(result)
    con = connect(warehouse)
    try:
        reports = stored_reports(con)
    finally:
        con.close()
    return RunResult(settings, reports, warnings, summary=summarise(warehouse, settings), run_id=result.run_id)


def _run_failure(result) -> RunFailed:
    """The error the first failed step reported as data (orchestration.failures), else the deepest cause
    of a bug, pointing at --verbose and the run's log."""
    failures = [event.step_failure_data for event in result.all_events if event.is_step_failure]
    for failure in failures:
        reported = failure.user_failure_data
        if reported is not None and EXIT_CODE in reported.metadata:
            return RunFailed(reported.description or "", reported.metadata[EXIT_CODE].value,
                             reported.metadata[KIND].value, result.run_id)
    detail = _deepest_cause(failures[0].error) if failures else "no step failed; see the Dagster run log"
    return RunFailed(f"run {result.run_id} failed: {detail}"
                     " (run again with --verbose for the traceback; `openmrr ui` shows the run's log)",
                     1, "BuildFailed", result.run_id)


def _deepest_cause(error_info) -> str:
    """`Class: message` of the innermost cause of a step failure: Dagster's own wrapper ("Error occurred
    while executing op ...") says nothing about what went wrong, and an exception raised without a
    message would otherwise print an empty one."""
    while (error_info.cause or error_info.context) is not None:
        error_info = error_info.cause or error_info.context
    message = error_info.message.strip()
    return message if message and message != error_info.cls_name else f"{error_info.cls_name} (no message)"
