"""Whether a dbt build can recompute only what new data touched, and the state that decides it.

A build after an earlier successful one recomputes only the touched subscriptions and customers
(models `int_changed_customers`, `int_touched_subscriptions`, `int_touched_customers`), when nothing
account-wide changed since: the settings (except a later as_of in the same month), the models, the
validation rules and their account tables, plans, merges, and exchange rates for days up to the
previous as_of. Anything else, or no recorded state, means a full rebuild (`--full-refresh`).

The state is written only after a build succeeds: a failed build leaves the earlier state, so the
next build recomputes at least everything since then.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from typing import Any

import duckdb

from openmrr.paths import PROJECT_ROOT
from openmrr.revalidate import CHANGES_TABLE
from openmrr.settings import Settings

STATE_TABLE = "analytics_internal._build_state"
# Files whose new rows change every customer: a full rebuild (rates only when dated up to the last as_of).
ACCOUNT_WIDE_FILES = ("plans", "customer_merges")
PROJECT_FILES = ("models", "dbt_project/macros", "dbt_project/dbt_project.yml", "seeds/reference")
PACKAGES = ("openmrr", "dbt-core", "dbt-duckdb", "duckdb")


@dataclass(frozen=True)
class BuildState:
    """What a build's tables depend on besides the raw rows up to `last_batch_seq`."""

    fingerprint: str
    as_of: datetime
    last_batch_seq: int
    validated_through: datetime | None  # the latest validation whose re-checked rows this build saw


@dataclass(frozen=True)
class BuildPlan:
    """A full build with the reason, or the scope of an incremental one (the dbt var `incremental`)."""

    state: BuildState
    full_reason: str | None
    scope: dict[str, Any] = field(default_factory=dict)

    @property
    def incremental(self) -> bool:
        return self.full_reason is None

    def dbt_vars(self) -> dict[str, Any]:
        return {"incremental": self.scope} if self.incremental else {}

    def dbt_flags(self) -> list[str]:
        return [] if self.incremental else ["--full-refresh"]

    def describe(self) -> str:
        if self.incremental:
            return f"incremental build: batches after {self.scope['since_batch_seq']}"
        return f"full build: {self.full_reason}"


def project_sha() -> str:
    """The models, macros, project file, reference seeds and package versions: a change rebuilds all."""
    digest = hashlib.sha256()
    for name in PROJECT_FILES:
        root = PROJECT_ROOT / name
        for path in sorted([root] if root.is_file() else root.rglob("*")):
            if path.is_file():
                digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
                digest.update(path.read_bytes())
    for package in PACKAGES:
        digest.update(f"{package}=={metadata.version(package)}".encode())
    return digest.hexdigest()


def _validation_fingerprint(con: duckdb.DuckDBPyConnection) -> list[Any]:
    try:
        return list(con.execute(
            "select rules_sha, account_currency, fx_sha, cycles_sha from quarantine._validation_state"
        ).fetchone() or [])
    except duckdb.CatalogException:
        return []


def current_state(con: duckdb.DuckDBPyConnection, settings: Settings) -> BuildState:
    account = {name: value for name, value in settings.dbt_vars().items() if name != "as_of"}
    fingerprint = json.dumps({"settings": account, "project": project_sha(),
                              "validation": _validation_fingerprint(con)}, sort_keys=True, default=str)
    last = con.execute("select coalesce(max(batch_seq), 0) from raw.import_batches").fetchone()[0]
    validated = con.execute(f"select max(validated_at) from {CHANGES_TABLE}").fetchone()[0]
    return BuildState(fingerprint, settings.effective_as_of().replace(tzinfo=None), int(last), validated)


def previous_state(con: duckdb.DuckDBPyConnection) -> BuildState | None:
    try:
        row = con.execute(f"select fingerprint, as_of, last_batch_seq, validated_through from {STATE_TABLE}"
                          ).fetchone()
    except (duckdb.CatalogException, duckdb.BinderException):
        return None
    return BuildState(row[0], row[1], int(row[2]), row[3]) if row else None


def _everything_revalidated(con: duckdb.DuckDBPyConnection, after: datetime | None) -> bool:
    """A validation since the last build checked every file again (its verdicts may all differ)."""
    return con.execute(f"select count(*) from {CHANGES_TABLE} where file = '*' and validated_at > ?",
                       [after or datetime.min]).fetchone()[0] > 0


def _new_rows(con: duckdb.DuckDBPyConnection, file: str, since: int) -> int:
    return con.execute(f"select count(*) from raw.{file} where batch_seq > ?", [since]).fetchone()[0]


def _first_new_rate_day(con: duckdb.DuckDBPyConnection, since: int) -> datetime | None:
    """The earliest day of a rate row loaded after the last build (rows that fail to parse are
    quarantined; they change nothing)."""
    return con.execute(
        "select min(try_cast(trim(date) as timestamp)) from raw.currency_rates where batch_seq > ?", [since]
    ).fetchone()[0]


def plan_build(con: duckdb.DuckDBPyConnection, settings: Settings) -> BuildPlan:
    """Full or incremental, from the warehouse's recorded state and what arrived since."""
    state = current_state(con, settings)
    previous = previous_state(con)

    def full(reason: str) -> BuildPlan:
        return BuildPlan(state, reason)

    if previous is None:
        return full("no earlier build is recorded in this warehouse")
    if previous.fingerprint != state.fingerprint:
        return full("the settings, the models or the validation rules changed")
    if state.as_of < previous.as_of:
        return full("as_of moved back")
    if (state.as_of.year, state.as_of.month) != (previous.as_of.year, previous.as_of.month):
        return full("as_of entered a new month (every customer gets a month-end row)")
    if _everything_revalidated(con, previous.validated_through):
        return full("validation checked every file again")
    for file in ACCOUNT_WIDE_FILES:
        if _new_rows(con, file, previous.last_batch_seq):
            return full(f"{file} changed")
    rates_from = _first_new_rate_day(con, previous.last_batch_seq)
    if rates_from is not None and rates_from <= previous.as_of:
        return full("exchange rates changed for days up to the previous as_of")
    scope = {
        "since_batch_seq": previous.last_batch_seq,
        "previous_as_of": previous.as_of.strftime("%Y-%m-%d %H:%M:%S"),
        "rates_from": rates_from.strftime("%Y-%m-%d %H:%M:%S") if rates_from else None,
        "revalidated_after": (previous.validated_through or datetime.min).strftime("%Y-%m-%d %H:%M:%S.%f"),
    }
    return BuildPlan(state, None, scope)


def record_build(con: duckdb.DuckDBPyConnection, plan: BuildPlan) -> None:
    """After a successful build: the state the next build compares with."""
    con.execute("create schema if not exists analytics_internal")
    con.execute(f"create or replace table {STATE_TABLE} (fingerprint varchar, as_of timestamp,"
                " last_batch_seq integer, validated_through timestamp, build varchar, built_at timestamp)")
    con.execute(f"insert into {STATE_TABLE} values (?, ?, ?, ?, ?, current_timestamp)",
                [plan.state.fingerprint, plan.state.as_of, plan.state.last_batch_seq, plan.state.validated_through,
                 plan.describe()])
    if plan.state.validated_through is not None:  # those re-checks are built now
        con.execute(f"delete from {CHANGES_TABLE} where validated_at <= ?", [plan.state.validated_through])


def last_build(con: duckdb.DuckDBPyConnection) -> str | None:
    """How the warehouse's latest successful build ran (BuildPlan.describe), if one is recorded."""
    try:
        row = con.execute(f"select build from {STATE_TABLE}").fetchone()
    except duckdb.CatalogException:
        return None
    return row[0] if row else None
