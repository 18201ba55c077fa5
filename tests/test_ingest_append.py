"""A CSV file that only grew loads only its new rows, and the warehouse equals loading the whole file.

Ingestion recognises an appended file by the hash of its previously loaded bytes; validation (duplicate
keys, reports) and staging (keyless positions) treat the appended batch and the batches before it as
one file.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import duckdb

from openmrr import pipeline
from openmrr.ingest import ingest
from openmrr.quality import validate
from orchestration.refresh import refresh
from tests.helpers import base_rows, write_folder

BATCH_COLUMNS = {"batch_id", "batch_seq", "loaded_at", "checked_at", "last_import_at"}


def append_rows(path: Path, rows: list[dict[str, object]]) -> None:
    """Append rows to a CSV file in its header's column order, leaving its earlier bytes untouched."""
    with path.open(newline="", encoding="utf-8") as handle:
        columns = next(csv.reader(handle))
    text = io.StringIO()
    csv.DictWriter(text, fieldnames=columns, lineterminator="\n").writerows(rows)
    with path.open("a", newline="", encoding="utf-8") as handle:
        handle.write(text.getvalue())


def rows_without_batches(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple]:
    columns = [c for (c,) in con.execute(
        "select column_name from information_schema.columns where table_schema || '.' || table_name = ?"
        " order by ordinal_position", [table]).fetchall() if c not in BATCH_COLUMNS]
    select = ", ".join(f'"{c}"' for c in columns)
    return sorted(con.execute(f"select {select} from {table}").fetchall(), key=repr)


def new_item(external_id: str, invoice: str = "i1", amount: str = "50", month: int = 2) -> dict[str, object]:
    """A renewal of subscription s1 (customer c1) for one month of 2023."""
    return {"invoice_external_id": invoice, "external_id": external_id, "type": "subscription", "amount": amount,
            "subscription_external_id": "s1", "plan_external_id": "m", "service_period_start": f"2023-{month:02d}-01",
            "service_period_end": f"2023-{month + 1:02d}-01", "prorated": "false", "quantity": "1"}


def test_an_appended_file_loads_only_its_new_rows_with_the_file_line_numbers(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    con = duckdb.connect()
    ingest(con, folder)
    append_rows(folder / "app" / "line_items.csv", [new_item("l3"), new_item("l4")])
    second = ingest(con, folder)
    assert [(b.file, b.rows, b.appended) for b in second.loaded] == [("line_items.csv", 2, True)]
    first_id = con.execute("select batch_id from raw.import_batches where file = 'line_items.csv'"
                           " order by batch_seq limit 1").fetchone()[0]
    assert second.loaded[0].first_batch_id == first_id
    assert con.execute("select external_id, line from raw.line_items where batch_id = ? order by line",
                       [second.loaded[0].batch_id]).fetchall() == [("l3", 4), ("l4", 5)]


def test_a_file_changed_before_its_end_is_loaded_whole(tmp_path):
    rows = base_rows()
    folder = write_folder(tmp_path / "data", rows)
    con = duckdb.connect()
    ingest(con, folder)
    rows["app/line_items"][0]["amount"] = "101"
    write_folder(folder, {"app/line_items": [*rows["app/line_items"], new_item("l3")]})
    second = ingest(con, folder)
    assert [(b.file, b.rows, b.appended) for b in second.loaded] == [("line_items.csv", 3, False)]


def test_a_file_without_a_final_line_break_is_loaded_whole_when_it_grows(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    items = folder / "app" / "line_items.csv"
    items.write_bytes(items.read_bytes().rstrip(b"\n"))
    con = duckdb.connect()
    ingest(con, folder)
    with items.open("ab") as handle:
        handle.write(b"\n")
    append_rows(items, [new_item("l3")])
    assert [(b.rows, b.appended) for b in ingest(con, folder).loaded] == [(3, False)]


def test_validation_of_an_appended_file_equals_validation_of_the_whole_file(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    grown = duckdb.connect()
    ingest(grown, folder)
    validate(grown)
    # a key already in the file's first part is a duplicate; a keyless row continues its invoice's positions
    append_rows(folder / "app" / "line_items.csv", [new_item("l1"), new_item(""), new_item("l5", invoice="nope")])
    ingest(grown, folder)
    grown_reports = validate(grown)
    fresh = duckdb.connect()
    ingest(fresh, folder)
    fresh_reports = validate(fresh)
    assert rows_without_batches(grown, "quarantine.line_items") == rows_without_batches(fresh, "quarantine.line_items")
    assert len(rows_without_batches(grown, "quarantine.line_items")) == 2  # the duplicate and the unknown invoice
    assert sorted((r.label, r.rows_read, r.rows_quarantined, r.top_rules) for r in grown_reports) == sorted(
        (r.label, r.rows_read, r.rows_quarantined, r.top_rules) for r in fresh_reports)


def test_an_appended_file_builds_the_same_models_as_the_whole_file(tmp_path):
    rows = base_rows()
    for item in rows["app/line_items"]:
        item["external_id"] = ""
    folder = write_folder(tmp_path / "data", rows)
    grown, fresh = tmp_path / "grown.duckdb", tmp_path / "fresh.duckdb"
    refresh(folder, grown)
    append_rows(folder / "app" / "line_items.csv", [new_item("", amount="70"), new_item("", month=3)])
    refresh(folder, grown)
    refresh(folder, fresh)
    with pipeline.connect(grown) as a, pipeline.connect(fresh) as b:
        assert a.execute("select count(*) from raw.import_batches where first_batch_id <> batch_id").fetchone()[0] == 1
        for table in ("source.line_items", "analytics.mrr_activities", "analytics.mrr_intervals"):
            assert rows_without_batches(a, table) == rows_without_batches(b, table), table
        assert len(rows_without_batches(a, "source.line_items")) == 4  # keyless rows keyed by position in file
