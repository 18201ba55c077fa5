"""Run the dbt project in-process against a warehouse, with the account settings as vars."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openmrr.errors import OpenMRRError
from openmrr.paths import DBT_PROJECT_DIR

DEFAULT_MEMORY_LIMIT = "4GB"


class BuildFailed(OpenMRRError):
    """A model or a data test failed: the data broke a self-check (exit 1)."""

    exit_code = 1


@dataclass(frozen=True)
class NodeEvent:
    """Progress of one dbt node: `started` or `finished`, with its unique id."""

    kind: str
    unique_id: str
    status: str | None = None


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def memory_limit() -> str:
    """DuckDB's memory limit for ingestion and the dbt build (it spills to disk beyond it):
    OPENMRR_MEMORY_LIMIT, default 4GB, so a million-customer build fits a laptop beside other work."""
    return os.environ.get("OPENMRR_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT)


@contextmanager
def dbt_environment(warehouse: Path, target: str = "duckdb",
                    extra: Mapping[str, str] | None = None) -> Iterator[None]:
    """The environment the dbt profile reads: which warehouse file and target to use, plus `extra`
    (e.g. a server target's OPENMRR_PG_* connection values), all restored afterwards."""
    with _environment({"OPENMRR_WAREHOUSE": str(warehouse), "OPENMRR_TARGET": target,
                       "OPENMRR_MEMORY_LIMIT": memory_limit(),
                       "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **(extra or {})}):
        yield


# dbt's partial-parse cache, beside the project's manifest (parsing is several seconds without it)
PARTIAL_PARSE_FILE = "partial_parse.msgpack"
# dagster-dbt's per-run folders (`<op>-<run id>-<uuid>`) that builds before build_target_path left in the checkout
STALE_RUN_FOLDER_PREFIX = "openmrr_dbt_models-"


def build_target_path(warehouse: Path) -> Path:
    """Where the Dagster build of `warehouse` writes dbt's artefacts (manifest, run_results.json, compiled
    SQL, dbt.log): one folder beside the warehouse, instead of dagster-dbt's new folder per run under the
    checkout's dbt_project/target (278 MB after about 40 runs). Emptied by `fresh_build_target`, so it
    holds the latest build's; a warehouse takes one writer at a time, so builds never share it."""
    return warehouse.resolve().parent / "dbt_target" / warehouse.stem


def fresh_build_target(warehouse: Path) -> Path:
    """`build_target_path`, emptied of the previous build's artefacts."""
    import shutil

    for stale in (DBT_PROJECT_DIR / "target").glob(f"{STALE_RUN_FOLDER_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
    target = build_target_path(warehouse)
    target.mkdir(parents=True, exist_ok=True)
    for entry in target.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return target


def ensure_manifest() -> Path:
    """target/manifest.json of the project as it is now, from which Dagster loads the asset graph: parsed
    again when the models, macros, seeds or packages changed since it was written (so `openmrr ui`
    follows edits to the models)."""
    from openmrr.incremental import project_sha

    target = DBT_PROJECT_DIR / "target"
    stamp = target / "manifest.sha256"
    if not (stamp.exists() and stamp.read_text() == project_sha() and (target / "manifest.json").exists()):
        parsed_project()
    return target / "manifest.json"


def dbt_arguments(command: str, dbt_vars: dict[str, Any], extra: list[str] | None = None) -> list[str]:
    return [
        *command.split(),  # e.g. "docs generate"
        "--project-dir", str(DBT_PROJECT_DIR),
        "--profiles-dir", str(DBT_PROJECT_DIR),
        "--vars", json.dumps(dbt_vars),
        *(extra or []),
    ]


def run_dbt(command: str, warehouse: Path, dbt_vars: dict[str, Any], extra: list[str] | None = None,
            on_node: Callable[[NodeEvent], None] | None = None, target: str = "duckdb",
            environment: Mapping[str, str] | None = None) -> Any:
    """Invoke dbt; raise BuildFailed naming every failed node and its message.

    `warehouse` is the DuckDB file (its folder also receives dbt's logs); `environment` holds extra
    variables for the profile, set only for this invocation (credentials never go to a file)."""
    from dbt.cli.main import dbtRunner

    def forward(event: Any) -> None:
        name = event.info.name
        if on_node is None or name not in ("NodeStart", "NodeFinished"):
            return
        node = event.data.node_info
        on_node(NodeEvent("started" if name == "NodeStart" else "finished", node.unique_id, node.node_status))

    arguments = dbt_arguments(command, dbt_vars, ["--quiet", "--log-path", str(warehouse.parent / "logs"),
                                                  *(extra or [])])
    with dbt_environment(warehouse, target, environment):
        result = dbtRunner(callbacks=[forward]).invoke(arguments)
    return _succeeded(command, result)


def _succeeded(command: str, result: Any) -> Any:
    """dbt's node results, or BuildFailed naming every failed node and its message."""
    if result.exception is not None:
        raise BuildFailed(f"dbt {command} could not run: {result.exception}")
    if not result.success:
        failures = [
            f"{r.node.unique_id}: {r.status} — {(r.message or '').strip()}"
            for r in (result.result or [])
            if str(r.status) in ("error", "fail")
        ]
        raise BuildFailed(f"dbt {command} failed:\n  " + "\n  ".join(failures or ["(no details)"]))
    return result.result


# The parsed project by project version, for the life of the process (see parsed_project).
_PARSED: dict[str, Any] = {}


def parsed_project() -> Any:
    """dbt's manifest of the project, parsed once per process and project version; the same for every
    warehouse, because the profile attaches each warehouse file under one database name.

    The parse runs with the project's default vars and a placeholder warehouse, never a run's: dbt
    discards its partial-parse cache whenever the vars or the profile differ, and a run's vars (`as_of`,
    the incremental scope) differ every run. So the cache in dbt_project/target stays valid from process
    to process until the project changes. A build given this manifest skips parsing; its own `--vars`
    still reach every model and macro, which render when they compile.

    The parse writes into a scratch folder, then moves the manifest and the cache into place one file at
    a time, so a process reading them at the same moment reads one version or the other, never half."""
    import shutil
    import tempfile

    from dbt.cli.main import dbtRunner

    from openmrr.incremental import project_sha

    sha = project_sha()
    if sha not in _PARSED:
        target = DBT_PROJECT_DIR / "target"
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target, prefix=".parse-") as scratch:
            if (target / PARTIAL_PARSE_FILE).exists():
                shutil.copy(target / PARTIAL_PARSE_FILE, scratch)
            with dbt_environment(target / "parse.duckdb"):
                result = dbtRunner().invoke(dbt_arguments(
                    "parse", {}, ["--quiet", "--target-path", scratch, "--log-path", scratch]))
            manifest = _succeeded("parse", result)
            for name in ("manifest.json", PARTIAL_PARSE_FILE):
                os.replace(Path(scratch) / name, target / name)
        (target / "manifest.sha256").write_text(sha)
        _PARSED.clear()
        _PARSED[sha] = manifest
    return _PARSED[sha]


# dbt's events that say a node started or what it produced (dagster-dbt turns the results into assets and checks)
NODE_EVENTS = frozenset({"NodeStart", "LogModelResult", "LogSeedResult", "LogSnapshotResult", "LogTestResult"})


def stream_build(warehouse: Path, dbt_vars: dict[str, Any], extra: list[str] | None = None) -> Iterator[dict]:
    """`dbt build` of the parsed project in this process, yielding each node event as dbt's structured log
    writes it (`{"info": ..., "data": ...}`) while the build runs; BuildFailed at the end if a node failed.

    In-process and without a parse, a build starts in milliseconds instead of the seconds a dbt process
    and its parse cost. dbt calls back from its worker threads, so the build runs on a thread of its own
    and its events reach the caller's thread through a queue."""
    import queue
    import threading

    from dbt.cli.main import dbtRunner
    from dbt_common.events.functions import msg_to_dict

    manifest = parsed_project()
    target = fresh_build_target(warehouse)
    events: queue.Queue = queue.Queue()
    finished = object()
    outcome: dict[str, Any] = {}

    def forward(event: Any) -> None:
        if event.info.name in NODE_EVENTS:
            events.put(msg_to_dict(event))

    def build() -> None:
        try:
            arguments = dbt_arguments("build", dbt_vars, ["--quiet", "--target-path", str(target),
                                                          "--log-path", str(target), *(extra or [])])
            with dbt_environment(warehouse):
                outcome["result"] = dbtRunner(manifest=manifest, callbacks=[forward]).invoke(arguments)
        except BaseException as error:  # re-raised on the caller's thread
            outcome["error"] = error
        finally:
            events.put(finished)

    thread = threading.Thread(target=build, name="dbt-build", daemon=True)
    thread.start()
    while (event := events.get()) is not finished:
        yield event
    thread.join()
    _release_warehouse()
    if "error" in outcome:
        raise outcome["error"]
    _succeeded("build", outcome["result"])


def _release_warehouse() -> None:
    """Close the database dbt-duckdb keeps open in the process after a build (its environment's
    connection outlives the invocation), so that the caller, in this process, can open the warehouse
    again with any configuration, read-only included, and another process can open it at all."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    environment = DuckDBConnectionManager._ENV
    if environment is not None:
        environment.close()
    DuckDBConnectionManager.close_all_connections()


def flush_to_disk(warehouse: Path) -> None:
    """One fsync of the warehouse file and its write-ahead log, after a step's many commits that skipped
    theirs (`fsync_mode: none` in the profile, `SET fsync_mode` in openmrr.pipeline.connect).

    An fsync per commit cost a small build more than half its time (about 7 of 13 s for the 160 nodes
    of scenario 02 on this machine's disk). Skipping them risks the file only if the operating system
    itself crashes before this call; a killed process loses nothing the kernel was given. The warehouse
    is rebuilt from the data folder in that case (docs/reference.md, "Durability")."""
    for path in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
        try:
            descriptor = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
