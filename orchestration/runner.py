"""Run the `refresh` job in-process, so every CLI run is recorded in DAGSTER_HOME."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, redirect_stdout
from pathlib import Path

from dagster import DagsterInstance

from openmrr import errors
from openmrr.pipeline import (
    Progress,
    RunResult,
    prepare_warehouse_folder,
    require_data_folder,
    resolve_settings,
    summarise,
)
from openmrr.transform import BuildFailed
from orchestration.definitions import defs
from orchestration.instance import fail_orphaned_runs, prepare_dagster_home, run_tags
from orchestration.resources import OpenMRRWarehouse

# Our exceptions by class name, to re-raise a step's failure as the error the user caused.
KNOWN_ERRORS = {cls.__name__: cls for cls in (errors.ConfigError, errors.DataRejected, errors.FileFormatError,
                                              errors.StorageError, BuildFailed)}


class StepFailed(errors.OpenMRRError):
    """A failure recorded by Dagster, carrying the exit code of the error behind it."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def dagster_instance(warehouse: Path) -> DagsterInstance:
    """The instance of DAGSTER_HOME (when unset, a `dagster` folder beside the warehouse), with our
    dagster.yaml where it has none (telemetry off; stated, so Dagster does not warn that the file is
    missing), and every run a killed process left STARTED marked failed."""
    configured = os.environ.get("DAGSTER_HOME")
    home = prepare_dagster_home(Path(configured or warehouse.resolve().parent / "dagster"))
    os.environ["DAGSTER_HOME"] = str(home)
    instance = DagsterInstance.get()
    fail_orphaned_runs(instance)
    return instance


def console_run_config(verbose: bool) -> dict:
    """Dagster's console logger prints every event (about 600 a run) at DEBUG level, and a step's failure
    with its traceback. The run's event log in DAGSTER_HOME records all of them either way; the command
    line shows its own progress and the user's error, so the console logger stays quiet unless --verbose."""
    return {"loggers": {"console": {"config": {"log_level": "DEBUG" if verbose else "CRITICAL"}}}}


def _user_error(error_info, warehouse: Path) -> StepFailed | None:
    """The first error of ours in a failure's cause chain, or the machine's (a full disk, a folder that
    cannot be written: errors.storage_error_from_text) named as such."""
    while error_info is not None:
        known = KNOWN_ERRORS.get(error_info.cls_name)
        if known is not None:
            message = error_info.message.strip()
            prefix = f"{known.__module__}.{known.__name__}: "
            return StepFailed(message.removeprefix(prefix).removeprefix(f"{known.__name__}: "), known.exit_code)
        storage = errors.storage_error_from_text(error_info.cls_name, error_info.message, warehouse)
        if storage is not None:
            return StepFailed(str(storage), storage.exit_code)
        error_info = error_info.cause
    return None


def _deepest_cause(error_info) -> str:
    """`Class: message` of the innermost cause of a step failure: Dagster's own wrapper ("Error occurred
    while executing op ...") says nothing about what went wrong, and an exception raised without a
    message would otherwise print an empty one."""
    while (error_info.cause or error_info.context) is not None:
        error_info = error_info.cause or error_info.context
    message = error_info.message.strip()
    return message if message and message != error_info.cls_name else f"{error_info.cls_name} (no message)"


@contextmanager
def _stdout_discarded() -> Iterator[None]:
    with open(os.devnull, "w") as sink, redirect_stdout(sink):
        yield


def run_refresh(data_dir: Path, warehouse: Path, config: Path | None = None,
                progress: Progress | None = None, verbose: bool = False) -> RunResult:
    """Execute `refresh` for this data folder and warehouse; raise the user's error on failure.

    Unless `verbose`, what the job writes to stdout (dagster-dbt echoes each of dbt's log lines there,
    several per model and test) is dropped: dbt's own dbt.log (`transform.build_target_path`) and the Dagster
    event log keep it, and the progress callbacks report the same nodes."""
    require_data_folder(data_dir)
    settings = resolve_settings(data_dir, config)
    prepare_warehouse_folder(warehouse)
    progress = progress or Progress()
    warnings: list[str] = []
    forward_warning = progress.on_warning

    def on_warning(warning: str) -> None:
        warnings.append(warning)
        forward_warning(warning)

    progress.on_warning = on_warning
    resource = OpenMRRWarehouse(data_dir=str(data_dir.resolve()), warehouse=str(warehouse.resolve()),
                                config=str(config.resolve()) if config else None,
                                settings_json=settings.model_dump_json())
    instance = dagster_instance(warehouse)
    with nullcontext() if verbose else _stdout_discarded():
        result = defs.resolve_job_def("refresh").execute_in_process(
            run_config=console_run_config(verbose), instance=instance, raise_on_error=False, tags=run_tags(),
            resources={"openmrr": resource, "progress": progress},
        )
    if not result.success:
        failures = [event.step_failure_data.error for event in result.all_events if event.is_step_failure]
        for failure in failures:
            known = _user_error(failure, warehouse)
            if known is not None:
                raise known
        detail = _deepest_cause(failures[0]) if failures else "no step failed; see the Dagster run log"
        raise BuildFailed(f"run {result.run_id} failed: {detail}"
                          " (run again with --verbose for the traceback; `openmrr ui` shows the run's log)")
    return RunResult(settings, _reports(warehouse), warnings, summary=summarise(warehouse, settings),
                     run_id=result.run_id)


def _reports(warehouse: Path) -> list:
    from openmrr.pipeline import connect
    from openmrr.quality import stored_reports

    con = connect(warehouse)
    try:
        return stored_reports(con)
    finally:
        con.close()
