"""The parts of a run (orchestration.refresh runs them as the Dagster job `refresh`): the settings, the
warehouse file, ingestion with validation, the build plan and the summary; and `validate_only`."""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from openmrr.errors import OS_CAUSES, ConfigError, StorageError
from openmrr.incremental import BuildPlan, last_build, plan_build, record_build
from openmrr.ingest import IngestResult, InputDocument, ingest
from openmrr.quality import FileReport, validate
from openmrr.settings import SETTINGS_FILE, Settings, check_source_keys, load_settings
from openmrr.transform import NodeEvent, memory_limit


@dataclass
class Progress:
    """Callbacks a front end (CLI progress bars, Dagster logs) hooks into; all optional."""

    on_step: Callable[[str], None] = lambda step: None
    on_file: Callable[[InputDocument], None] = lambda document: None
    on_node: Callable[[NodeEvent], None] = lambda event: None
    on_warning: Callable[[str], None] = lambda warning: None


@dataclass
class Summary:
    mrr: Decimal
    account_currency: str
    customers: int
    movements: dict[str, tuple[int, Decimal]]
    quarantined_rows: int
    build: str | None = None  # full or incremental, and why (openmrr.incremental.BuildPlan.describe)


@dataclass
class RunResult:
    settings: Settings
    reports: list[FileReport]
    warnings: list[str] = field(default_factory=list)
    ingest: IngestResult | None = None
    summary: Summary | None = None
    run_id: str | None = None  # the Dagster run, when run through the refresh job
    quarantined: list[Any] = field(default_factory=list)  # validate_only: the first quarantined rows


def resolve_settings(data_dir: Path, config: Path | None) -> Settings:
    """Settings from --config, else the data folder's openmrr.yml, else defaults; `sources:` keys must be
    source folders of `data_dir`."""
    if config is not None and not config.exists():
        raise ConfigError(f"{config}: settings file not found")
    path = config or data_dir / SETTINGS_FILE
    if config is None and path.is_symlink() and not path.resolve().is_relative_to(data_dir.resolve()):
        # files are read only inside the data folder (inputs.md); ignoring the settings would change the numbers
        raise ConfigError(f"{path}: a symbolic link to a place outside the data folder; refused"
                          " (name that file with --config to use it)")
    settings = load_settings(path)
    check_source_keys(settings, path, data_dir)
    return settings


def require_data_folder(data_dir: Path) -> None:
    """ConfigError when the data folder is missing, checked before anything is created: a mistyped --data
    must not leave an empty warehouse or a run history behind."""
    if not data_dir.is_dir():
        raise ConfigError(f"{data_dir}: data folder not found")


def prepare_warehouse_folder(warehouse: Path) -> None:
    """Create the warehouse's folder and prove it writable by creating and removing a file there, so a
    read-only or full folder is named up front as the warehouse's (StorageError) instead of surfacing
    half-way through a run from DuckDB or Dagster. (os.access says yes to root on a read-only mount.)"""
    import tempfile

    folder = warehouse.resolve().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".openmrr-write-check-"):
            pass
    except FileExistsError as error:  # mkdir(exist_ok=True) on a path that is a file
        raise StorageError.at(f"--warehouse {warehouse}: cannot write in {folder}", OS_CAUSES[errno.ENOTDIR]) from error
    except OSError as error:
        if error.errno not in OS_CAUSES:
            raise
        raise StorageError.at(f"--warehouse {warehouse}: cannot write in {folder}", OS_CAUSES[error.errno]) from error


def connect(warehouse: Path | str) -> duckdb.DuckDBPyConnection:
    """The warehouse file, with DuckDB's memory capped like the dbt profile's (it spills beyond)."""
    try:
        con = duckdb.connect(str(warehouse))
    except duckdb.IOException as error:
        raise ConfigError(f"{warehouse}: cannot open the warehouse ({error})") from error
    con.execute(f"set memory_limit = '{memory_limit()}'")  # a SET, not connect config: other handles may be open
    con.execute("set fsync_mode = 'none'")  # a step ends with transform.flush_to_disk instead
    return con


def load_and_check(con: duckdb.DuckDBPyConnection, data_dir: Path, settings: Settings,
                   progress: Progress) -> tuple[IngestResult, list[FileReport]]:
    progress.on_step("ingest")
    loaded = ingest(con, data_dir, on_file=progress.on_file)
    for warning in loaded.warnings:
        progress.on_warning(warning)
    progress.on_step("validate")
    return loaded, validate(con, settings.account_currency)


def validate_only(data_dir: Path, config: Path | None = None, progress: Progress | None = None,
                  report_file: Path | None = None) -> RunResult:
    """Checks in a throw-away in-memory warehouse: nothing is written anywhere, except every quarantined
    row to `report_file` (CSV) when given. The result holds the first few quarantined rows."""
    from openmrr.quality import SHOWN_ROWS
    from openmrr.quarantine_report import quarantined_rows, write_quarantine_csv

    settings = resolve_settings(data_dir, config)
    con = duckdb.connect(":memory:")
    try:
        loaded, reports = load_and_check(con, data_dir, settings, progress or Progress())
        first_rows = list(quarantined_rows(con, reports, limit=SHOWN_ROWS))
        if report_file is not None:
            write_quarantine_csv(quarantined_rows(con, reports), report_file)
    finally:
        con.close()
    return RunResult(settings, reports, loaded.warnings, loaded, quarantined=first_rows)


def plan_for(warehouse: Path, settings: Settings) -> BuildPlan:
    """The dbt build this warehouse needs now: incremental when its last build allows it."""
    con = connect(warehouse)
    try:
        return plan_build(con, settings)
    finally:
        con.close()


def record(warehouse: Path, plan: BuildPlan) -> None:
    """Remember a successful build, so the next one can be incremental."""
    con = connect(warehouse)
    try:
        record_build(con, plan)
    finally:
        con.close()


def summarise(warehouse: Path, settings: Settings) -> Summary:
    con = connect(warehouse)  # dbt-duckdb may still hold the file open in this process
    try:
        mrr, customers = con.execute(
            "select coalesce(sum(mrr), 0), count(*) filter (where status in ('Active', 'Past Due'))"
            " from analytics.customers"
        ).fetchone()
        movements = {
            kind: (count, total)
            for kind, count, total in con.execute(
                "select type, count(*), sum(mrr_movement) from analytics.mrr_activities group by type order by type"
            ).fetchall()
        }
        quarantined = con.execute("select coalesce(sum(rows_quarantined), 0) from source.import_reports").fetchone()[0]
        build = last_build(con)
    finally:
        con.close()
    return Summary(Decimal(mrr), settings.account_currency, customers, movements, int(quarantined), build)
