"""Validation after new batches checks only what they can change, and equals a rebuild of every table."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from openmrr import revalidate
from openmrr.contract import INPUT_FILES, InputFile
from openmrr.ingest import ingest
from openmrr.quality import validate
from tests.helpers import base_rows, write_folder
from tests.test_ingest_append import append_rows, new_item


@pytest.fixture
def rechecks(monkeypatch) -> list[int]:
    """The `since` of every incremental validation (none when every table was rebuilt)."""
    calls: list[int] = []
    original = revalidate.recheck_since

    def recording(con: duckdb.DuckDBPyConnection, since: int, validated_at: datetime) -> None:
        calls.append(since)
        original(con, since, validated_at)

    monkeypatch.setattr(revalidate, "recheck_since", recording)
    return calls


@pytest.fixture
def rebuilt_files(monkeypatch) -> list[str]:
    """The files an incremental validation rebuilt whole (most of their rows to check again)."""
    names: list[str] = []
    original = revalidate._rebuild_file

    def recording(con: duckdb.DuckDBPyConnection, spec: InputFile) -> None:
        names.append(spec.name)
        original(con, spec)

    monkeypatch.setattr(revalidate, "_rebuild_file", recording)
    return names


def with_filler(rows: dict[str, list[dict[str, object]]], count: int) -> dict[str, list[dict[str, object]]]:
    """`count` more valid customers, invoices, items and events, so a few new rows are a small share."""
    for n in range(10, 10 + count):
        rows["app/customers"].append({"external_id": f"c{n}", "company": f"Filler {n}", "country": "US"})
        rows["app/invoices"].append({"external_id": f"i{n}", "customer_external_id": f"c{n}",
                                     "date": "2023-01-01", "currency": "USD"})
        rows["app/line_items"].append(new_item(f"l{n}", invoice=f"i{n}") | {"subscription_external_id": f"s{n}"})
        rows["app/subscription_events"].append(
            {"external_id": f"e{n}", "customer_external_id": f"c{n}", "subscription_external_id": f"s{n}",
             "event_type": "subscription_start", "event_date": "2023-01-01", "effective_date": "2023-01-01",
             "plan_external_id": "m", "currency": "USD", "amount": "100", "quantity": "1"})
        rows["app/cancellations"].append({"subscription_external_id": f"s{n}", "customer_external_id": f"c{n}",
                                          "cancelled_at": "2023-03-15"})
    return rows


def quarantine_tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return {spec.name: sorted(con.execute(f"select * from quarantine.{spec.name}").fetchall(), key=repr)
            for spec in INPUT_FILES}


def assert_equals_a_rebuild(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    incremental = quarantine_tables(con)
    con.execute(f"delete from {revalidate.STATE_TABLE}")
    validate(con)
    assert incremental == quarantine_tables(con)
    return incremental


def load(con: duckdb.DuckDBPyConnection, folder: Path) -> None:
    ingest(con, folder)
    validate(con)


def test_new_batches_are_checked_alone_and_old_rows_follow_their_references(tmp_path, rechecks, rebuilt_files):
    rows = with_filler(base_rows(), 10)
    rows["app/line_items"].append(new_item("l3", invoice="i3"))  # its invoice comes later
    rows["app/subscription_events"].append(
        {"external_id": "e2", "customer_external_id": "c1", "subscription_external_id": "s1",
         "event_type": "subscription_event_retracted", "event_date": "2023-01-02", "effective_date": "2023-01-02",
         "retracted_event_id": "e3"})
    rows["customer_merges"] = [{"from_source": "app", "from_external_id": "c3", "into_source": "app",
                                "into_external_id": "c1"}]
    folder = write_folder(tmp_path / "data", rows)
    con = duckdb.connect()
    load(con, folder)
    before = quarantine_tables(con)
    assert [r[-2] for r in before["line_items"]] == ["reference"]
    assert [r[-2] for r in before["customer_merges"]] == ["reference"]
    assert [r[-2] for r in before["subscription_events"]] == ["reference"]
    # the invoice, the retracted event and the merged customer arrive; a duplicate item and a bad invoice too
    append_rows(folder / "app" / "invoices.csv", [
        {"external_id": "i3", "customer_external_id": "c1", "date": "2023-02-01", "currency": "USD"},
        {"external_id": "i4", "customer_external_id": "c1", "date": "2023-02-01", "currency": "XXX"},
    ])
    append_rows(folder / "app" / "line_items.csv", [new_item("l1"), new_item("l5", invoice="i4")])
    append_rows(folder / "app" / "subscription_events.csv", [
        {"external_id": "e3", "customer_external_id": "c1", "subscription_external_id": "s1",
         "event_type": "subscription_start", "event_date": "2023-01-01", "effective_date": "2023-01-01",
         "plan_external_id": "m", "currency": "USD", "amount": "100", "quantity": "1"}])
    append_rows(folder / "app" / "customers.csv", [{"external_id": "c3", "company": "Three", "country": "US"}])
    load(con, folder)
    assert len(rechecks) == 1  # the first validation had no state and rebuilt; the second rechecked
    assert rebuilt_files == ["customer_merges"]  # its one row is new to check: the others went row by row
    after = assert_equals_a_rebuild(con)
    assert sorted(r[-2] for r in after["line_items"]) == ["depends_on_quarantined", "unique_key"]
    assert after["customer_merges"] == [] and after["subscription_events"] == []


def test_a_resent_file_and_an_unchanged_run_are_checked_incrementally(tmp_path, rechecks, rebuilt_files):
    rows = base_rows()
    folder = write_folder(tmp_path / "data", rows)
    con = duckdb.connect()
    load(con, folder)
    load(con, folder)  # nothing new
    rows["app/invoices"][0]["currency"] = "XXX"  # a bad re-send: the good row stays valid for its items
    rows["app/customers"][1]["country"] = "Germany"  # a bad re-send: its invoice keeps a valid customer row
    write_folder(folder, {"app/invoices": rows["app/invoices"], "app/customers": rows["app/customers"]})
    load(con, folder)
    assert len(rechecks) == 2  # both runs after the first
    assert [r[-2] for r in quarantine_tables(con)["customers"]] == ["country_code"]
    assert rebuilt_files[:2] == ["customers", "contacts"]  # whole files re-sent: rebuilt, and what they reach
    after = assert_equals_a_rebuild(con)
    assert len(after["invoices"]) == 1 and after["line_items"] == []


def test_a_new_exchange_rate_or_currency_rebuilds_every_table(tmp_path, rechecks):
    rows = base_rows()
    rows["app/invoices"].append({"external_id": "i3", "customer_external_id": "c1", "date": "2023-03-01",
                                 "currency": "GBP"})
    folder = write_folder(tmp_path / "data", rows)
    con = duckdb.connect()
    load(con, folder)
    assert [r[-2] for r in quarantine_tables(con)["invoices"]] == ["fx_rate"]
    append_rows(folder / "currency_rates.csv",
                [{"date": "2023-01-01", "from_currency": "GBP", "to_currency": "USD", "rate": "1.25"}])
    load(con, folder)
    assert rechecks == [] and quarantine_tables(con)["invoices"] == []
    validate(con, "EUR")
    assert rechecks == []


def test_a_cancellation_before_its_first_item_is_checked_again_when_an_earlier_item_arrives(tmp_path, rechecks):
    rows = with_filler(base_rows(), 10)
    rows["app/cancellations"].append({"subscription_external_id": "s2", "customer_external_id": "c2",
                                      "cancelled_at": "2023-01-02"})  # s2 starts on 2023-01-05
    folder = write_folder(tmp_path / "data", rows)
    con = duckdb.connect()
    load(con, folder)
    assert [r[-2] for r in quarantine_tables(con)["cancellations"]] == ["cancellation_before_start"]
    append_rows(folder / "app" / "line_items.csv", [
        new_item("l30", invoice="i2") | {"subscription_external_id": "s2", "plan_external_id": "m",
                                         "service_period_start": "2023-01-01", "service_period_end": "2023-01-05"}])
    load(con, folder)
    assert len(rechecks) == 1
    assert assert_equals_a_rebuild(con)["cancellations"] == []
