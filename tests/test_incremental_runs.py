"""A run on a warehouse that already holds earlier data gives exactly what a fresh run on the same
files gives, whatever changed in between (the one-more-day case is in test_benchmarks.py).

These guard every incremental shortcut (appended batches, validation of new rows only, incremental
models): each scenario compares every dataset with a fresh build, and checks that the second build
took the path it should (incremental, or full for the reason given).
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from openmrr import pipeline
from openmrr.generate import GeneratorOptions, generate_data_folder
from orchestration.refresh import refresh
from tests.test_benchmarks import COMPARED_DATASETS, _rows
from tests.test_ingest_append import append_rows

pytestmark = pytest.mark.slow

AS_OF = "'2023-12-31T23:59:59Z'"  # the generated folder's own
EARLIER_IN_DECEMBER = "'2023-12-05T00:00:00Z'"
MISSING_RENEWAL = "missing_renewal:\n  churn_after_days: 7"


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _rewrite(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def edit_a_customer(data: Path) -> None:
    """Rewrite a customers file with one company renamed (not an append: a whole new batch)."""
    path = data / "stripe_us" / "customers.csv"
    rows = _read(path)
    rows[0]["company"] = "Renamed Holdings"
    _rewrite(path, rows)


def correct_exchange_rates(data: Path) -> None:
    """The EUR rates of June 2023 re-sent corrected (the generated rates are daily, so new keys would
    be dates nobody converts at): invoices of that month convert differently."""
    path = data / "currency_rates.csv"
    rows = _read(path)
    for row in rows:
        if row["from_currency"] == "EUR" and row["date"].startswith("2023-06"):
            row["rate"] = "1.5"
    _rewrite(path, rows)


def correct_rates_after_the_previous_as_of(data: Path) -> None:
    """EUR rates from 20 December re-sent corrected: only conversions dated from then on change."""
    rows = [row for row in _read(data / "currency_rates.csv")
            if row["from_currency"] == "EUR" and row["date"] >= "2023-12-20"]
    append_rows(data / "currency_rates.csv", [{**row, "rate": "1.3"} for row in rows])


def add_a_merge(data: Path) -> None:
    """Merge the first stripe_us customer into the first stripe_eu customer."""
    us = _read(data / "stripe_us" / "customers.csv")[0]["external_id"]
    eu = _read(data / "stripe_eu" / "customers.csv")[0]["external_id"]
    append_rows(data / "customer_merges.csv", [{"from_source": "stripe_us", "from_external_id": us,
                                                "into_source": "stripe_eu", "into_external_id": eu}])


def bill_an_upgrade(data: Path) -> None:
    """A mid-December invoice upgrading a live subscription, paid: appended to three files."""
    source = data / "stripe_us"
    items = [row for row in _read(source / "line_items.csv")
             if row["type"] == "subscription" and row["service_period_start"].startswith("2023-12")]
    item = items[0]
    invoice = next(row for row in _read(source / "invoices.csv") if row["external_id"] == item["invoice_external_id"])
    append_rows(source / "invoices.csv", [{**invoice, "external_id": "inv_upgrade", "date": "2023-12-20"}])
    append_rows(source / "line_items.csv", [{
        **item, "invoice_external_id": "inv_upgrade", "external_id": "li_upgrade", "amount": "500.00",
        "service_period_start": "2023-12-20", "service_period_end": "2024-01-20", "prorated": "false",
    }])
    append_rows(source / "transactions.csv", [{
        "invoice_external_id": "inv_upgrade", "type": "payment", "result": "successful", "date": "2023-12-20",
        "amount": "500.00", "external_id": "txn_upgrade", "transaction_fees": "",
    }])


def move_invoices_to_another_customer(data: Path) -> None:
    """The invoices file re-sent with the first customer's invoices billed to another customer (a whole
    new batch: a key twice in one file is a duplicate): both customers' histories change."""
    path = data / "stripe_us" / "invoices.csv"
    rows = _read(path)
    first = rows[0]["customer_external_id"]
    other = next(row["customer_external_id"] for row in rows if row["customer_external_id"] != first)
    _rewrite(path, [{**row, "customer_external_id": other} if row["customer_external_id"] == first else row
                    for row in rows])


def _upgrade_rows(data: Path) -> tuple[dict[str, str], dict[str, str]]:
    """A mid-December invoice and line item upgrading a live stripe_us subscription."""
    source = data / "stripe_us"
    item = next(row for row in _read(source / "line_items.csv")
                if row["type"] == "subscription" and row["service_period_start"].startswith("2023-12"))
    invoice = next(row for row in _read(source / "invoices.csv") if row["external_id"] == item["invoice_external_id"])
    return ({**invoice, "external_id": "inv_late", "date": "2023-12-20"},
            {**item, "invoice_external_id": "inv_late", "external_id": "li_late", "amount": "500.00",
             "service_period_start": "2023-12-20", "service_period_end": "2024-01-20", "prorated": "false"})


def send_a_line_item_before_its_invoice(data: Path) -> None:
    """Before the first run: a line item whose invoice has not arrived (quarantined for now)."""
    append_rows(data / "stripe_us" / "line_items.csv", [_upgrade_rows(data)[1]])


def send_the_late_invoice(data: Path) -> None:
    """The invoice arrives: the earlier line item becomes valid without being sent again."""
    append_rows(data / "stripe_us" / "invoices.csv", [_upgrade_rows(data)[0]])


def nothing(data: Path) -> None:
    """Only the settings' as_of differs between the runs."""


@dataclass(frozen=True)
class Change:
    apply: Callable[[Path], None]
    expected_build: str  # the start of BuildPlan.describe()
    first_as_of: str = AS_OF
    settings: str = ""
    touched_customers: int | None = None  # calculated customers an incremental build recomputes
    before_first_run: Callable[[Path], None] = nothing


CHANGES: dict[str, Change] = {
    "edited customer": Change(edit_a_customer, "incremental"),
    "upgrade billed": Change(bill_an_upgrade, "incremental", touched_customers=1),
    "invoices moved to another customer": Change(move_invoices_to_another_customer, "incremental"),
    "line item's invoice arrives later": Change(send_the_late_invoice, "incremental", touched_customers=1,
                                                before_first_run=send_a_line_item_before_its_invoice),
    "as_of moved forward in its month": Change(nothing, "incremental", EARLIER_IN_DECEMBER, MISSING_RENEWAL),
    "rates corrected after the previous as_of": Change(correct_rates_after_the_previous_as_of, "incremental",
                                                       EARLIER_IN_DECEMBER),
    "corrected exchange rates": Change(correct_exchange_rates, "full build: exchange rates"),
    "new merge": Change(add_a_merge, "full build: customer_merges"),
    "as_of moved to a later month": Change(nothing, "full build: as_of entered a new month", "'2023-10-01T00:00:00Z'"),
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("generated") / "data"
    generate_data_folder(GeneratorOptions(customers=300, seed=5, start="2023-01-01", months=12), data)
    return data


def _write_settings(data: Path, as_of: str, extra: str) -> None:
    kept = [line for line in (data / "openmrr.yml").read_text().splitlines() if not line.startswith("as_of:")]
    (data / "openmrr.yml").write_text("\n".join([*kept, f"as_of: {as_of}", extra, ""]))


@pytest.mark.parametrize("name", list(CHANGES))
def test_a_run_after_a_change_equals_a_fresh_run_on_the_same_files(generated, tmp_path, name):
    change = CHANGES[name]
    data = tmp_path / "data"
    shutil.copytree(generated, data)
    _write_settings(data, change.first_as_of, change.settings)
    change.before_first_run(data)
    warehouse, fresh = tmp_path / "warehouse.duckdb", tmp_path / "fresh.duckdb"
    assert refresh(data, warehouse).summary.build.startswith("full build: no earlier build")
    before = {dataset: _rows(warehouse, dataset) for dataset in COMPARED_DATASETS}
    (data / "openmrr.yml").write_text((generated / "openmrr.yml").read_text())
    _write_settings(data, AS_OF, change.settings)
    change.apply(data)
    assert refresh(data, warehouse).summary.build.startswith(change.expected_build)
    if change.touched_customers is not None:
        with pipeline.connect(warehouse) as con:
            assert con.execute("select count(distinct customer_id) from analytics_internal.int_touched_customers"
                               ).fetchone()[0] == change.touched_customers
    refresh(data, fresh)
    after = {dataset: _rows(warehouse, dataset) for dataset in COMPARED_DATASETS}
    for dataset in COMPARED_DATASETS:
        assert after[dataset] == _rows(fresh, dataset), dataset
    assert after != before  # the change reached the datasets compared
