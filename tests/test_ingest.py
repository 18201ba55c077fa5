"""inputs.md ingestion: raw rows verbatim, re-import replaces, JSON equals CSV, clear file errors."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from openmrr import pipeline
from openmrr.errors import ConfigError, FileFormatError
from openmrr.ingest import ingest
from orchestration.refresh import RunFailed, refresh
from tests.helpers import base_rows, check_folder, write_csv, write_folder

IGNORED_COLUMNS = {"loaded_at", "checked_at", "last_import_at", "built_at", "validated_through"}  # wall-clock times


def run(folder: Path, warehouse: Path) -> pipeline.RunResult:
    return refresh(folder, warehouse)


def table_rows(con: duckdb.DuckDBPyConnection, table: str, drop: set[str]) -> list[tuple]:
    columns = [c for (c,) in con.execute(
        "select column_name from information_schema.columns where table_schema || '.' || table_name = ?"
        " order by ordinal_position", [table]).fetchall() if c not in drop]
    select = ", ".join(f'"{c}"' for c in columns)
    return sorted(con.execute(f"select {select} from {table}").fetchall(), key=repr)


def all_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [t for (t,) in con.execute(
        "select table_schema || '.' || table_name from information_schema.tables"
        " where table_catalog = current_database() and table_type = 'BASE TABLE' order by 1").fetchall()]


def test_raw_tables_keep_every_value_verbatim_with_batch_file_and_line(tmp_path):
    rows = base_rows()
    rows["app/customers"][0] |= {"company": "  One, Inc. ", "favourite_colour": "teal"}
    folder = write_folder(tmp_path / "data", rows)
    con = duckdb.connect()
    result = ingest(con, folder)
    raw = con.execute(
        "select data_source, file, line, company, extra, batch_id from raw.customers order by line").fetchall()
    assert raw[0][:5] == ("app", "customers.csv", 2, "  One, Inc. ", '{"favourite_colour":"teal"}')
    assert raw[1][4] is None
    assert raw[0][5] == raw[1][5]
    assert "app/customers.csv: unknown columns kept as extra: favourite_colour" in result.warnings


def test_an_unchanged_file_is_not_loaded_again(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    con = duckdb.connect()
    first = ingest(con, folder)
    second = ingest(con, folder)
    assert len(first.loaded) == 12 and second.loaded == []
    assert len(second.unchanged) == 12


def test_reimporting_a_key_replaces_it_and_keeps_the_others(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    warehouse = tmp_path / "w.duckdb"
    run(folder, warehouse)
    write_csv(folder / "app" / "customers.csv", [{"external_id": "c1", "company": "Uno", "country": "US"}])
    run(folder, warehouse)
    con = duckdb.connect(str(warehouse))
    assert con.execute("select external_id, company from source.customers order by 1").fetchall() == [
        ("c1", "Uno"), ("c2", "Two"),
    ]
    assert con.execute("select count(*) from raw.customers").fetchone()[0] == 3  # nothing sent is lost


def test_a_bad_resend_does_not_replace_the_last_good_row(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    warehouse = tmp_path / "w.duckdb"
    run(folder, warehouse)
    write_csv(folder / "app" / "plans.csv", [
        {"external_id": "m", "name": "Monthly", "interval_count": "-1", "interval_unit": "month"},
        {"external_id": "y", "name": "Yearly", "interval_count": "1", "interval_unit": "year"},
    ])
    with pytest.raises(Exception, match=r"plans\.csv: 1 of 2 rows quarantined"):
        run(folder, warehouse)
    con = duckdb.connect(str(warehouse))
    assert con.execute("select rule from quarantine.plans").fetchall() == [("positive",)]


def test_keyless_line_items_are_replaced_by_invoice_and_position(tmp_path):
    rows = base_rows()
    for item in rows["app/line_items"]:
        item["external_id"] = ""
    folder = write_folder(tmp_path / "data", rows)
    warehouse = tmp_path / "w.duckdb"
    run(folder, warehouse)
    rows["app/line_items"][0]["amount"] = "120"
    write_folder(folder, {"app/line_items": rows["app/line_items"]})
    run(folder, warehouse)
    con = duckdb.connect(str(warehouse))
    assert con.execute("select invoice_external_id, amount from source.line_items order by 1").fetchall() == [
        ("i1", 120), ("i2", 1200.5),
    ]


def _as_json_document(rows: dict[str, list[dict[str, object]]]) -> dict[str, object]:
    def cents(row: dict[str, object], *columns: str) -> dict[str, object]:
        converted = {k: v for k, v in row.items() if v != ""}
        for column in columns:
            if converted.get(column) not in (None, ""):
                converted[f"{column}_in_cents"] = round(float(converted.pop(column)) * 100)
        return converted

    items = [cents(i, "amount", "tax_amount") for i in rows["app/line_items"]]
    transactions = [cents(t, "amount") for t in rows["app/transactions"]]
    invoices = []
    for invoice in rows["app/invoices"]:
        invoices.append({
            **invoice,
            "line_items": [{k: v for k, v in i.items() if k != "invoice_external_id"} for i in items
                           if i["invoice_external_id"] == invoice["external_id"]],
            "transactions": [t for t in transactions if t["invoice_external_id"] == invoice["external_id"]],
        })
    return {
        "customers": [{k: v for k, v in c.items() if v != ""} for c in rows["app/customers"]],
        "contacts": rows["app/contacts"],
        "plans": [{**p, "interval_count": int(p["interval_count"])} for p in rows["app/plans"]],
        "invoices": invoices,
        "subscription_events": [cents(e, "amount") for e in rows["app/subscription_events"]],
        "cancellations": rows["app/cancellations"],
    }


def test_a_json_import_document_lands_exactly_like_the_csv_files(tmp_path):
    rows = base_rows()
    csv_folder = write_folder(tmp_path / "csv", rows)
    json_folder = write_folder(tmp_path / "json", {k: v for k, v in rows.items() if not k.startswith("app/")})
    (json_folder / "app").mkdir()
    (json_folder / "app" / "import.json").write_text(json.dumps(_as_json_document(rows)))
    run(csv_folder, tmp_path / "csv.duckdb")
    run(json_folder, tmp_path / "json.duckdb")
    csv_con, json_con = duckdb.connect(str(tmp_path / "csv.duckdb")), duckdb.connect(str(tmp_path / "json.duckdb"))
    lineage = {"file", "line", "batch_id", "batch_seq", "loaded_at", "extra"}
    for table in ("customers", "contacts", "plans", "invoices", "line_items", "transactions",
                  "subscription_events", "cancellations"):
        from_json = table_rows(json_con, f"source.{table}", lineage)
        assert from_json == table_rows(csv_con, f"source.{table}", lineage), table
    assert table_rows(json_con, "analytics.mrr_activities", set()) == table_rows(
        csv_con, "analytics.mrr_activities", set())


def test_a_file_that_is_not_utf8_is_rejected_with_its_line(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    path = folder / "app" / "customers.csv"
    path.write_bytes(path.read_bytes() + "c3,Caf\u00e9 Ltd,,,FR\n".encode("latin-1"))
    with pytest.raises(FileFormatError) as error:
        ingest(duckdb.connect(), folder)
    assert str(error.value).endswith("customers.csv, line 4: not UTF-8 text; save the file as UTF-8")


def test_a_missing_header_is_rejected_naming_the_required_columns(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    path = folder / "app" / "plans.csv"
    path.write_text("m,Monthly,1,month\ny,Yearly,1,year\n")
    with pytest.raises(FileFormatError, match=r"plans.csv, line 1: the header has no external_id, name, "
                                              r"interval_count, interval_unit column \(required\)"):
        ingest(duckdb.connect(), folder)


def test_a_short_row_is_quarantined_with_its_line_and_text_and_the_file_loads(tmp_path):
    # inputs.md "Bad input": a row with too few fields is a row problem (rule field_count), never a file problem
    folder = write_folder(tmp_path / "data", base_rows())
    path = folder / "app" / "plans.csv"
    path.write_text(path.read_text() + "q,Quarterly,3\n")
    con, _ = check_folder(folder)
    assert con.execute("select line, external_id from raw.plans where raw_record is null order by line").fetchall() == [
        (2, "m"), (3, "y")]
    assert con.execute("select file, line, raw_record, rule, message from quarantine.plans").fetchall() == [
        ("plans.csv", 4, "q,Quarterly,3", "field_count", "row has 3 fields where the header has 4")]


def test_an_empty_file_is_rejected(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    (folder / "app" / "plans.csv").write_text("")
    with pytest.raises(FileFormatError, match=r"plans\.csv, line 1: empty file"):
        ingest(duckdb.connect(), folder)


def test_a_failed_file_leaves_no_partial_batch(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    path = folder / "app" / "line_items.csv"
    path.write_bytes(path.read_bytes() + "i1,l3,subscription,Caf\u00e9\n".encode("latin-1"))  # not UTF-8
    con = duckdb.connect()
    with pytest.raises(FileFormatError):
        ingest(con, folder)
    assert con.execute("select count(*) from raw.line_items").fetchone()[0] == 0
    assert con.execute("select count(*) from raw.import_batches where file = 'line_items.csv'").fetchone()[0] == 0


def test_a_missing_data_folder_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError, match="data folder not found"):
        ingest(duckdb.connect(), tmp_path / "nowhere")


class Killed(BaseException):
    """Stands in for SIGKILL: nothing after it runs, not even except-clauses for Exception."""


def test_a_run_killed_during_ingestion_and_started_again_equals_a_clean_run(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    (folder / "openmrr.yml").write_text("as_of: 2024-06-01T00:00:00Z\n")  # both runs at the same moment
    clean, resumed = tmp_path / "clean.duckdb", tmp_path / "resumed.duckdb"
    run(folder, clean)
    seen = []

    def kill_on_fifth_file(document):
        seen.append(document)
        if len(seen) == 5:
            raise Killed

    with pytest.raises(RunFailed, match="Killed"):  # the job records the step's end; nothing of ours runs after it
        refresh(folder, resumed, progress=pipeline.Progress(on_file=kill_on_fifth_file))
    partial = duckdb.connect(str(resumed))
    assert partial.execute("select count(*) from raw.import_batches").fetchone()[0] == 4
    partial.close()
    run(folder, resumed)
    a, b = duckdb.connect(str(clean)), duckdb.connect(str(resumed))
    assert all_tables(a) == all_tables(b)
    for table in all_tables(a):
        assert table_rows(a, table, IGNORED_COLUMNS) == table_rows(b, table, IGNORED_COLUMNS), table
