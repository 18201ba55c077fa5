"""Small builders for test data folders."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb

from openmrr.contract import FILES_BY_NAME
from openmrr.ingest import ingest
from openmrr.quality import FileReport, validate

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The repository keeps its own copy of the specification (docs/spec) and its scenarios (tests/scenarios),
# so a clone anywhere runs every test; tests/test_spec_copy.py checks it against ../shared/spec where present.
SPEC_DIR = PROJECT_ROOT / "docs" / "spec"
SCENARIOS_DIR = PROJECT_ROOT / "tests" / "scenarios"
SHARED_SPEC_DIR = PROJECT_ROOT.parent / "shared" / "spec"


def write_csv(path: Path, rows: list[dict[str, object]], columns: list[str] | None = None) -> Path:
    """Write rows with a header; columns default to the union of the rows' keys, in order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if columns is None:
        columns = []
        for row in rows:
            columns += [key for key in row if key not in columns]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def base_rows() -> dict[str, list[dict[str, object]]]:
    """A small valid data folder: every input file, one source called `app`."""
    return {
        "app/customers": [
            {"external_id": "c1", "company": "One", "email": "a@one.example.com", "country": "US", "state": "CA"},
            {"external_id": "c2", "company": "Two", "country": "DE", "lead_status": "Working Lead"},
        ],
        "app/contacts": [
            {"customer_external_id": "c1", "email": "cfo@one.example.com",
             "linkedin": "https://linkedin.com/in/cfo"},
        ],
        "app/plans": [
            {"external_id": "m", "name": "Monthly", "interval_count": "1", "interval_unit": "month"},
            {"external_id": "y", "name": "Yearly", "interval_count": "1", "interval_unit": "year"},
        ],
        "app/invoices": [
            {"external_id": "i1", "customer_external_id": "c1", "date": "2023-01-01", "currency": "USD"},
            {"external_id": "i2", "customer_external_id": "c2", "date": "2023-01-05T10:00:00Z", "currency": "EUR"},
        ],
        "app/line_items": [
            {"invoice_external_id": "i1", "external_id": "l1", "type": "subscription", "amount": "100",
             "subscription_external_id": "s1", "plan_external_id": "m", "service_period_start": "2023-01-01",
             "service_period_end": "2023-02-01", "prorated": "false", "quantity": "1", "tax_amount": "",
             "discount_code": ""},
            {"invoice_external_id": "i2", "external_id": "l2", "type": "subscription", "amount": "1200.50",
             "subscription_external_id": "s2", "plan_external_id": "y", "service_period_start": "2023-01-05",
             "service_period_end": "2024-01-05", "prorated": "No", "quantity": "3", "tax_amount": "200",
             "discount_code": "LAUNCH"},
        ],
        "app/transactions": [
            {"invoice_external_id": "i1", "external_id": "t1", "type": "payment", "result": "successful",
             "date": "2023-01-01", "amount": "100"},
        ],
        "app/subscription_events": [
            {"external_id": "e1", "customer_external_id": "c1", "subscription_external_id": "s1",
             "event_type": "subscription_start", "event_date": "2023-01-01", "effective_date": "2023-01-01",
             "plan_external_id": "m", "currency": "USD", "amount": "100", "quantity": "1",
             "retracted_event_id": ""},
        ],
        "app/cancellations": [
            {"subscription_external_id": "s1", "customer_external_id": "c1", "cancelled_at": "2023-06-01"},
        ],
        "currency_rates": [
            {"date": "2023-01-01", "from_currency": "EUR", "to_currency": "USD", "rate": "1.0812"},
        ],
        "customer_merges": [],
        "tags": [{"source": "app", "customer_external_id": "c1", "tag": "vip"}],
        "custom_attributes": [
            {"source": "app", "customer_external_id": "c1", "key": "seats", "type": "Integer", "value": "12"},
        ],
    }


def write_folder(folder: Path, rows: dict[str, list[dict[str, object]]]) -> Path:
    for name, file_rows in rows.items():
        file_name = name.split("/")[-1]
        columns = FILES_BY_NAME[file_name].column_names if not file_rows else None
        write_csv(folder / f"{name}.csv", file_rows, columns)
    return folder


def check_folder(folder: Path) -> tuple[duckdb.DuckDBPyConnection, list[FileReport]]:
    """Ingest and validate into an in-memory warehouse."""
    con = duckdb.connect()
    ingest(con, folder)
    return con, validate(con)


def quarantined(con: duckdb.DuckDBPyConnection, file: str) -> list[tuple]:
    return con.execute(
        f"select data_source, line, rule, message from quarantine.{file} order by batch_seq, line"
    ).fetchall()
