"""dbt-labs/mrr-playbook, run from a checkout the user points at, on dbt-duckdb (the dbt of our venv).

Its code is never part of this repository: `prepare_playbook` copies the user's checkout to a work
folder and applies, there, the edits it needs to run on DuckDB without dbt packages (this machine
reaches no dbt hub): `dbt.date_spine` instead of `dbt_utils.date_spine`, a spine range from vars,
`dbt.dateadd` instead of Snowflake's `dateadd(month, ...)`, `dbt.hash` instead of
`dbt_utils.surrogate_key`, open end dates (a still-live period has no end), no dbt_utils tests, and
dbt 1.x's `model-paths`/`seed-paths`. Each edit checks that the text it replaces is there, so a
checkout that changed fails with the file it could not edit rather than running something else.

The models are materialised as tables, so that `dbt run` computes the MRR as `openmrr run` does; its
own default (views) would leave that work to the first query (`materialized="view"` keeps it).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

PROFILE = "playbook"
MODELS_TABLE = "main.mrr"


class PlaybookError(Exception):
    """The folder is not an mrr-playbook checkout these edits know, or dbt failed on it."""


@dataclass(frozen=True)
class Edit:
    path: str
    old: str
    new: str


EDITS = (
    Edit("models/utils/util_months.sql",
         """{{ dbt_utils.date_spine(
    datepart="month",
    start_date="'2018-01-01'",
    end_date="date_trunc('month', current_date)"
   )
}}""",
         """{{ dbt.date_spine(
    datepart="month",
    start_date="cast('" ~ var('spine_start') ~ "' as date)",
    end_date="cast('" ~ var('spine_end') ~ "' as date)"
   )
}}"""),
    Edit("models/customer_churn_month.sql",
         "dateadd(month, 1, date_month)::date as date_month",
         "cast({{ dbt.dateadd('month', 1, 'date_month') }} as date) as date_month"),
    Edit("models/customer_revenue_by_month.sql",
         "date_trunc('month', max(end_date)) as date_month_end",
         "date_trunc('month', max(coalesce(end_date, cast('{{ var(\"spine_end\") }}' as date)))) as date_month_end"),
    Edit("models/mrr.sql",
         "{{  dbt_utils.surrogate_key('date_month', 'customer_id') }} as id",
         "{{ dbt.hash(dbt.concat(['cast(date_month as ' ~ dbt.type_string() ~ ')', \"'-'\","
         " 'cast(customer_id as ' ~ dbt.type_string() ~ ')'])) }} as id"),
)
PROJECT_KEYS = {"source-paths": "model-paths", "data-paths": "seed-paths"}
SEED = "data/subscription_periods.csv"


def commit_of(checkout: Path) -> str:
    """The checkout's git commit, or a note that it is not a git checkout."""
    completed = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True,
                               check=False)
    return completed.stdout.strip() if completed.returncode == 0 else "unknown (not a git checkout)"


def _edit(project: Path, edit: Edit) -> None:
    path = project / edit.path
    text = path.read_text() if path.exists() else ""
    if edit.old not in text:
        raise PlaybookError(f"{edit.path}: the text this benchmark replaces is not there; is the folder a"
                            " checkout of dbt-labs/mrr-playbook at commit f7921cf?")
    path.write_text(text.replace(edit.old, edit.new))


def _without_dbt_utils_tests(node: object) -> object:
    """A schema .yml with every `dbt_utils.*` test removed (the package is not installed)."""
    if isinstance(node, dict):
        return {key: _without_dbt_utils_tests(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_without_dbt_utils_tests(item) for item in node
                if not (isinstance(item, dict) and any(str(key).startswith("dbt_utils.") for key in item))]
    return node


def prepare_playbook(checkout: Path, work: Path, seed: Path, spine: tuple[str, str], warehouse: Path,
                     materialized: str = "table") -> Path:
    """A runnable copy of the playbook in `work` (replaced if present), with `seed` as its subscription_periods."""
    if not (checkout / "dbt_project.yml").is_file():
        raise PlaybookError(f"{checkout}: no dbt_project.yml; --playbook wants a checkout of dbt-labs/mrr-playbook")
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(checkout, work, ignore=shutil.ignore_patterns(".git", "docs", "target", "dbt_packages",
                                                                  "dbt_modules", "logs"))
    (work / "packages.yml").unlink(missing_ok=True)
    for edit in EDITS:
        _edit(work, edit)
    for schema_file in (work / "models").rglob("*.yml"):
        schema_file.write_text(yaml.safe_dump(_without_dbt_utils_tests(yaml.safe_load(schema_file.read_text())),
                                              sort_keys=False))
    project = yaml.safe_load((work / "dbt_project.yml").read_text())
    project = {PROJECT_KEYS.get(key, key): value for key, value in project.items()}
    project["profile"] = PROFILE
    project["vars"] = {"spine_start": spine[0], "spine_end": spine[1]}
    project["models"] = {project["name"]: {"+materialized": materialized}}
    project["seeds"] = {**(project.get("seeds") or {}),
                        project["name"]: {"subscription_periods": {"+column_types": {
                            "customer_id": "varchar", "start_date": "date", "end_date": "date",
                            "monthly_amount": "decimal(18, 2)"}}}}
    (work / "dbt_project.yml").write_text(yaml.safe_dump(project, sort_keys=False))
    shutil.copy(seed, work / SEED)
    (work / "profiles.yml").write_text(yaml.safe_dump({PROFILE: {"target": "duckdb", "outputs": {"duckdb": {
        "type": "duckdb", "path": str(warehouse), "threads": 2}}}}))
    return work


def run_playbook(project: Path) -> float:
    """Seconds of `dbt seed && dbt run` on the prepared project (the dbt of this interpreter's venv)."""
    dbt = Path(sys.executable).parent / "dbt"
    flags = ["--project-dir", str(project), "--profiles-dir", str(project), "--no-send-anonymous-usage-stats"]
    started = time.perf_counter()
    for command in ("seed", "run"):
        completed = subprocess.run([str(dbt), command, *flags], cwd=project, capture_output=True, text=True,
                                   check=False)
        if completed.returncode != 0:
            raise PlaybookError(f"dbt {command} failed on the playbook:\n{completed.stdout[-3000:]}")
    return time.perf_counter() - started
