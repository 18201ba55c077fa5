"""The account settings of `openmrr.yml` (spec/inputs.md, "Settings")."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from openmrr.errors import ConfigError
from openmrr.paths import REFERENCE_SEEDS_DIR

SETTINGS_FILE = "openmrr.yml"
DEFAULT_REFRESH_CRON = "0 6 * * *"
MINUTES_PER_YEAR = 366 * 24 * 60


@cache
def iso_currency_codes() -> frozenset[str]:
    """The ISO 4217 codes of the reference seed, the list validation checks currencies against."""
    with (REFERENCE_SEEDS_DIR / "iso_currencies.csv").open(encoding="utf-8", newline="") as handle:
        return frozenset(row["code"] for row in csv.DictReader(handle))


class MissingRenewal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    churn_after_days: int = Field(ge=1, le=90)


class SourceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    deduct_transaction_fees: bool | None = None


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    as_of: datetime | None = None
    churn_recognition: Literal["at_cancellation", "at_period_end"] = "at_cancellation"
    missing_renewal: Literal["keep"] | MissingRenewal = "keep"
    free_customers: Literal["stay_active", "churn"] = "stay_active"
    # at most a year: the window is date arithmetic in the models, which a huge number overflows
    smart_classification_minutes: int = Field(default=60, ge=0, le=MINUTES_PER_YEAR)
    deduct_transaction_fees: bool = False
    sources: dict[str, SourceSettings] = Field(default_factory=dict)
    # at most 31: the models' exact MRR arithmetic (and validation's money bounds) assume it
    days_per_month: Decimal = Field(default=Decimal("30.4375"), gt=0, le=31, decimal_places=6)
    max_bad_row_share: float = Field(default=0.05, ge=0, le=1)
    # OpenMRR's own: when the Dagster daily schedule refreshes (UTC cron)
    refresh_cron: str = DEFAULT_REFRESH_CRON

    @field_validator("refresh_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from openmrr.cron import is_schedule_cron

        if not is_schedule_cron(value):
            raise ValueError(f"'{value}' is not a cron expression")
        return value

    @field_validator("account_currency")
    @classmethod
    def _iso_currency(cls, value: str) -> str:
        if value not in iso_currency_codes():
            raise ValueError(f"'{value}' is not an ISO 4217 currency code (e.g. USD, EUR, GBP)")
        return value

    @field_validator("as_of")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None

    def effective_as_of(self) -> datetime:
        return self.as_of or datetime.now(UTC).replace(microsecond=0)

    def sources_overriding_fees(self, deduct: bool) -> list[str]:
        """Sources whose own `deduct_transaction_fees` is set to `deduct` (the account default aside)."""
        return sorted(name for name, source in self.sources.items() if source.deduct_transaction_fees is deduct)

    def dbt_vars(self) -> dict[str, Any]:
        """The settings as dbt vars, the only way they reach the models."""
        return {
            "account_currency": self.account_currency,
            "as_of": self.effective_as_of().strftime("%Y-%m-%d %H:%M:%S"),
            "churn_recognition": self.churn_recognition,
            "churn_after_days": (
                self.missing_renewal.churn_after_days if isinstance(self.missing_renewal, MissingRenewal) else None
            ),
            "free_customers": self.free_customers,
            "smart_classification_minutes": self.smart_classification_minutes,
            "deduct_transaction_fees": self.deduct_transaction_fees,
            "fee_deduction_sources": self.sources_overriding_fees(deduct=True),
            "fee_keeping_sources": self.sources_overriding_fees(deduct=False),
            "days_per_month": str(self.days_per_month),
        }


class _DatesAsTextLoader(yaml.SafeLoader):
    """YAML without implicit timestamps: PyYAML turns `2024-02-30` into a ValueError that names no key;
    as text, the pydantic model reading the file checks it and the error names the key (spec: a date that
    does not exist is a settings error). Used for every file we read (openmrr.yml, destinations.yml)."""


_DatesAsTextLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_yaml(path: Path) -> Any:
    """A YAML file's content (None-free: an empty file is {}; dates stay text for the models to check);
    ConfigError naming the file and line."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_DatesAsTextLoader) or {}  # a SafeLoader
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({getattr(error, 'problem', error)})") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text") from error


def load_settings(path: Path) -> Settings:
    """Read settings; a missing file means all defaults. Errors name the file and the key."""
    if not path.exists():
        return Settings()
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
    try:
        return Settings.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in error.errors()
        )
        raise ConfigError(f"{path}: {problems}") from error


def source_folders(data_dir: Path) -> list[str]:
    """The data folder's source folders (their names are the source names), as ingestion finds them."""
    return sorted(p.name for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def check_source_keys(settings: Settings, path: Path, data_dir: Path) -> None:
    """A `sources:` key must name a source folder of the data folder (spec inputs.md, Settings): a typo
    would otherwise silently leave that source's fees alone. A missing data folder is ingestion's error."""
    if not data_dir.is_dir():
        return
    folders = source_folders(data_dir)
    unknown = sorted(set(settings.sources) - set(folders))
    if unknown:
        found = ", ".join(repr(name) for name in folders) or "none"
        raise ConfigError(
            f"{path}: sources: {', '.join(repr(name) for name in unknown)} is not a source folder of"
            f" {data_dir} (source folders found: {found})"
        )
