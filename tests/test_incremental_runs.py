"""A run on a warehouse that already holds earlier data gives exactly what a fresh run on the same
files gives, whatever changed in between: an edited customer, corrected exchange rates, a new merge, a
later as_of (the one-more-day case is in test_benchmarks.py).

These guard every incremental shortcut (appended batches, validation of new rows only, and
incremental models when they come): each scenario compares every dataset with a fresh build.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from openmrr import pipeline
from openmrr.generate import GeneratorOptions, generate_data_folder
from tests.test_benchmarks import COMPARED_DATASETS, _rows
from tests.test_ingest_append import append_rows

pytestmark = pytest.mark.slow


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def edit_a_customer(data: Path) -> None:
    """Rewrite a customers file with one company renamed (not an append: a whole new batch)."""
    path = data / "stripe_us" / "customers.csv"
    rows = _read(path)
    rows[0]["company"] = "Renamed Holdings"
    _rewrite(path, rows)


def _rewrite(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def correct_exchange_rates(data: Path) -> None:
    """The EUR rates of June 2023 re-sent corrected (the generated rates are daily, so new keys would
    be dates nobody converts at): invoices of that month convert differently."""
    path = data / "currency_rates.csv"
    rows = _read(path)
    for row in rows:
        if row["from_currency"] == "EUR" and row["date"].startswith("2023-06"):
            row["rate"] = "1.5"
    _rewrite(path, rows)


def add_a_merge(data: Path) -> None:
    """Merge the first stripe_us customer into the first stripe_eu customer."""
    us = _read(data / "stripe_us" / "customers.csv")[0]["external_id"]
    eu = _read(data / "stripe_eu" / "customers.csv")[0]["external_id"]
    append_rows(data / "customer_merges.csv", [{"from_source": "stripe_us", "from_external_id": us,
                                                "into_source": "stripe_eu", "into_external_id": eu}])


def move_as_of_forward(data: Path) -> None:
    """The first run was at an earlier as_of (set in the test); this run uses the folder's own."""


CHANGES: dict[str, Callable[[Path], None]] = {
    "edited customer": edit_a_customer,
    "corrected exchange rates": correct_exchange_rates,
    "new merge": add_a_merge,
    "as_of moved forward": move_as_of_forward,
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("generated") / "data"
    generate_data_folder(GeneratorOptions(customers=300, seed=5, start="2023-01-01", months=12), data)
    return data


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_run_after_a_change_equals_a_fresh_run_on_the_same_files(generated, tmp_path, change):
    data = tmp_path / "data"
    shutil.copytree(generated, data)
    settings = (data / "openmrr.yml").read_text()
    if change == "as_of moved forward":
        earlier = [line for line in settings.splitlines() if not line.startswith("as_of:")]
        (data / "openmrr.yml").write_text("\n".join([*earlier, "as_of: '2023-10-01T00:00:00Z'", ""]))
    warehouse, fresh = tmp_path / "warehouse.duckdb", tmp_path / "fresh.duckdb"
    pipeline.run(data, warehouse)
    before = {dataset: _rows(warehouse, dataset) for dataset in COMPARED_DATASETS}
    (data / "openmrr.yml").write_text(settings)
    CHANGES[change](data)
    pipeline.run(data, warehouse)
    pipeline.run(data, fresh)
    after = {dataset: _rows(warehouse, dataset) for dataset in COMPARED_DATASETS}
    for dataset in COMPARED_DATASETS:
        assert after[dataset] == _rows(fresh, dataset), dataset
    assert after != before  # the change reached the datasets compared
