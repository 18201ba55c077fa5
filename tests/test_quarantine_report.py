"""inputs.md, "Bad input": a failure message shows the first few quarantined rows (file:line, column,
value, rule, message); `openmrr validate` shows them too and `validate --report FILE` writes them all,
as a CSV a spreadsheet opens without running any value as a formula (issue 13, item 8)."""

from __future__ import annotations

import csv

import pytest
from typer.testing import CliRunner

from openmrr.cli import app
from openmrr.spreadsheet import spreadsheet_safe
from tests.helpers import base_rows, write_folder

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def _bad_folder(tmp_path, lead_status: str = "Hot"):
    """c2's lead status and plan m's interval are bad: 7 rows quarantined with their dependants (among them
    s1's cancellation, whose only line item uses plan m)."""
    rows = base_rows()
    rows["app/customers"][1]["lead_status"] = lead_status
    rows["app/plans"][0]["interval_unit"] = "fortnight"
    return write_folder(tmp_path / "data", rows)


def test_validate_prints_the_first_quarantined_rows_with_file_line_column_value_rule_and_message(tmp_path):
    result = invoke("validate", "--data", str(_bad_folder(tmp_path)))
    assert result.exit_code == 1
    lines = [line.strip() for line in result.output.splitlines()]
    assert "First quarantined rows (5 of 7; all of them: --report FILE):" in lines
    assert ("app/customers.csv:3, column lead_status, value 'Hot', rule enum: lead_status 'Hot' is not one of:"
            " New Lead, Working Lead, Qualified Lead, Unqualified Lead") in lines
    assert ("app/plans.csv:2, column interval_unit, value 'fortnight', rule enum: interval_unit 'fortnight' is"
            " not one of: day, month, year") in lines
    assert ("app/invoices.csv:3, column customer_external_id, value 'c2', rule depends_on_quarantined: depends"
            " on quarantined customers row 'c2'") in lines
    assert sum(line.startswith("app/") and ", rule " in line for line in lines) == 5


def test_validate_report_writes_every_quarantined_row_and_neutralises_formulas(tmp_path):
    report = tmp_path / "out" / "quarantine.csv"
    result = invoke("validate", "--data", str(_bad_folder(tmp_path, lead_status='=HYPERLINK("http://x")')),
                    "--report", str(report))
    assert result.exit_code == 1
    assert f"all 7 in {report}" in result.output
    with report.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["file", "line", "column", "value", "rule", "message"]
    assert [(r["file"], r["line"], r["column"], r["rule"]) for r in rows] == [
        ("app/customers.csv", "3", "lead_status", "enum"),
        ("app/plans.csv", "2", "interval_unit", "enum"),
        ("app/invoices.csv", "3", "customer_external_id", "depends_on_quarantined"),
        ("app/line_items.csv", "2", "plan_external_id", "depends_on_quarantined"),
        ("app/line_items.csv", "3", "invoice_external_id", "depends_on_quarantined"),
        ("app/subscription_events.csv", "2", "plan_external_id", "depends_on_quarantined"),
        ("app/cancellations.csv", "2", "subscription_external_id", "depends_on_quarantined"),
    ]
    assert rows[0]["value"] == "'=HYPERLINK(\"http://x\")"
    assert rows[0]["message"].startswith("lead_status '=HYPERLINK")


def test_validate_report_of_clean_data_is_a_header_only(tmp_path):
    report = tmp_path / "quarantine.csv"
    result = invoke("validate", "--data", str(write_folder(tmp_path / "data", base_rows())), "--report", str(report))
    assert result.exit_code == 0, result.output
    assert "First quarantined rows" not in result.output
    assert report.read_text() == "file,line,column,value,rule,message\n"


def test_a_row_the_reader_could_not_split_is_shown_with_its_verbatim_record(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    customers = folder / "app" / "customers.csv"
    customers.write_text(customers.read_text() + "c9,=SUM(A1)\n")  # two fields where the header has more
    report = tmp_path / "quarantine.csv"
    result = invoke("validate", "--data", str(folder), "--report", str(report))
    line = len(customers.read_text().splitlines())
    assert f"app/customers.csv:{line}, record 'c9,=SUM(A1)', rule field_count: row has 2 fields" in result.output
    with report.open(newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["rule"] == "field_count"]
    assert [(r["line"], r["column"], r["value"]) for r in rows] == [(str(line), "", "c9,=SUM(A1)")]


@pytest.mark.parametrize(("cell", "safe"), [
    ("=1+2", "'=1+2"), ("+1", "'+1"), ("-5", "'-5"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("plain", "plain"), ("a=b", "a=b"), ("", ""),
])
def test_a_cell_starting_like_a_formula_gets_a_single_quote_in_front(cell, safe):
    assert spreadsheet_safe(cell) == safe


def test_run_past_the_threshold_quotes_the_first_quarantined_rows_of_the_rejected_files(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    rows = base_rows()
    rows["app/customers"][1]["lead_status"] = "[/x] Hot"  # also: printed as text, never as markup
    folder = write_folder(tmp_path / "data", rows)
    result = invoke("run", "--data", str(folder), "--warehouse", str(tmp_path / "w.duckdb"))
    assert result.exit_code == 1, result.output
    assert "First quarantined rows:" in result.output
    assert "app/customers.csv:3, column lead_status, value '[/x] Hot', rule enum: lead_status '[/x] Hot'" in (
        result.output)
    assert "Traceback" not in result.output


def test_the_pipeline_threshold_failure_quotes_the_rows_too(tmp_path):
    from openmrr.errors import DataRejected
    from orchestration.refresh import RunFailed, refresh

    with pytest.raises(RunFailed) as raised:
        refresh(_bad_folder(tmp_path), tmp_path / "w.duckdb")
    assert (raised.value.kind, raised.value.exit_code) == ("DataRejected", DataRejected.exit_code)
    assert "app/plans.csv:2, column interval_unit, value 'fortnight', rule enum:" in str(raised.value)


def test_every_rule_count_is_stored_as_a_row_and_the_run_reports_them(tmp_path, monkeypatch):
    import duckdb

    from orchestration.refresh import refresh

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    folder = _bad_folder(tmp_path)
    (folder / "openmrr.yml").write_text("max_bad_row_share: 1\n")
    warehouse = tmp_path / "w.duckdb"
    run = refresh(folder, warehouse)  # what `openmrr run` calls and prints
    con = duckdb.connect(str(warehouse), read_only=True)
    rules = con.execute("select data_source, file, rule, rows_quarantined from source.import_report_rules"
                        " order by file, rule").fetchall()
    texts = dict(con.execute("select file, top_rules from source.import_reports where rows_quarantined > 0"
                             ).fetchall())
    con.close()
    assert rules == [
        ("app", "cancellations.csv", "depends_on_quarantined", 1), ("app", "customers.csv", "enum", 1),
        ("app", "invoices.csv", "depends_on_quarantined", 1), ("app", "line_items.csv", "depends_on_quarantined", 2),
        ("app", "plans.csv", "enum", 1), ("app", "subscription_events.csv", "depends_on_quarantined", 1),
    ]
    assert texts["line_items.csv"] == "depends_on_quarantined (2)"
    reported = sorted(("app", r.file, rule, n) for r in run.reports for rule, n in r.top_rules)
    assert reported == rules
