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


# dbt's partial-parse cache: kept between builds of a warehouse (parsing is several seconds without it)
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
    """`build_target_path`, emptied of the previous build's artefacts except dbt's partial-parse cache."""
    import shutil

    for stale in (DBT_PROJECT_DIR / "target").glob(f"{STALE_RUN_FOLDER_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
    target = build_target_path(warehouse)
    target.mkdir(parents=True, exist_ok=True)
    for entry in target.iterdir():
        if entry.name == PARTIAL_PARSE_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return target


def ensure_manifest() -> Path:
    """target/manifest.json, parsed now if missing (Dagster needs it to load the asset graph)."""
    manifest = DBT_PROJECT_DIR / "target" / "manifest.json"
    if not manifest.exists():
        from dbt.cli.main import dbtRunner

        with dbt_environment(DBT_PROJECT_DIR / "target" / "parse.duckdb"):
            result = dbtRunner().invoke(dbt_arguments("parse", {}, ["--quiet"]))
        if not result.success:
            raise BuildFailed(f"dbt parse failed: {result.exception}")
    return manifest


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
