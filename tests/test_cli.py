"""The openmrr command: exit codes 0/1/2, reports, no tracebacks for user mistakes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from typer.testing import CliRunner

from openmrr.cli import app
from orchestration.refresh import refresh
from tests.helpers import base_rows, write_folder

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_help_is_available_for_every_command():
    for command in ([], ["run"], ["validate"], ["generate"]):
        result = invoke(*command, "--help")
        assert result.exit_code == 0
        assert "Usage" in result.output


def test_run_builds_the_warehouse_prints_a_summary_and_records_the_dagster_run(tmp_path, monkeypatch):
    from dagster import DagsterInstance

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    folder = write_folder(tmp_path / "data", base_rows())
    result = invoke("run", "--data", str(folder), "--warehouse", str(tmp_path / "w.duckdb"))
    assert result.exit_code == 0, result.output
    assert "MRR summary" in result.output
    assert "new_biz movements" in result.output
    assert (tmp_path / "w.duckdb").exists()
    [run] = DagsterInstance.get().get_runs()
    assert run.job_name == "refresh" and run.is_success
    assert run.run_id in result.output
    assert "Build: full build: no earlier build" in result.output


def test_a_second_run_on_the_same_files_builds_incrementally(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    folder = write_folder(tmp_path / "data", base_rows())
    (folder / "openmrr.yml").write_text("as_of: 2024-06-01T00:00:00Z\n")
    arguments = ("run", "--data", str(folder), "--warehouse", str(tmp_path / "w.duckdb"))
    first, second = invoke(*arguments), invoke(*arguments)
    assert second.exit_code == 0, second.output
    assert "Build: incremental build" in second.output
    summary = [line for line in second.output.splitlines() if "movements" in line or "MRR" in line]
    assert summary == [line for line in first.output.splitlines() if "movements" in line or "MRR" in line]


def test_run_past_the_bad_row_threshold_exits_1_naming_files_and_rules(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    rows = base_rows()
    rows["app/customers"][1]["lead_status"] = "Hot"
    folder = write_folder(tmp_path / "data", rows)
    result = invoke("run", "--data", str(folder), "--warehouse", str(tmp_path / "w.duckdb"))
    assert result.exit_code == 1
    assert "too many bad rows" in result.output
    assert "app/customers.csv: 1 of 2 rows quarantined (50.0%), top rules: enum (1)" in result.output
    assert "Traceback" not in result.output


def test_validate_prints_the_report_and_writes_nothing(tmp_path):
    rows = base_rows()
    rows["app/plans"][0]["interval_unit"] = "fortnight"
    folder = write_folder(tmp_path / "data", rows)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = invoke("validate", "--data", str(folder))
    assert result.exit_code == 1
    assert "Import report" in result.output
    assert "too many bad rows" in result.output and "app/plans.csv" in result.output and "enum" in result.output
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_the_bad_row_threshold_is_a_setting(tmp_path):
    rows = base_rows()
    rows["app/customers"][1]["lead_status"] = "Hot"  # c2, its invoice and line item: half of each file
    folder = write_folder(tmp_path / "data", rows)
    assert invoke("validate", "--data", str(folder)).exit_code == 1
    (folder / "openmrr.yml").write_text("max_bad_row_share: 0.6\n")
    assert invoke("validate", "--data", str(folder)).exit_code == 0


def test_a_bad_setting_is_a_usage_error_naming_the_key(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    (folder / "openmrr.yml").write_text("churn_recognition: sometimes\n")
    result = invoke("run", "--data", str(folder), "--warehouse", str(tmp_path / "w.duckdb"))
    assert result.exit_code == 2
    assert "openmrr.yml: churn_recognition:" in result.output
    assert "Traceback" not in result.output


def test_an_unreadable_file_exits_1_with_file_and_line_and_no_traceback(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    # a short row is a row problem now (inputs.md "Bad input"); bytes that are not UTF-8 still fail the file
    (folder / "app" / "plans.csv").write_bytes("external_id,name,interval_count,interval_unit\nm,Caf\u00e9,1,month\n"
                                               .encode("latin-1"))
    result = invoke("run", "--data", str(folder), "--warehouse", str(tmp_path / "w.duckdb"))
    assert result.exit_code == 1
    assert "plans.csv, line 2: not UTF-8 text; save the file as UTF-8" in result.output
    assert "Traceback" not in result.output


def test_a_missing_data_folder_exits_2(tmp_path):
    result = invoke("validate", "--data", str(tmp_path / "missing"))
    assert result.exit_code == 2
    assert "data folder not found" in result.output


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_generate_is_deterministic_and_writes_every_input_file(tmp_path):
    args = ["generate", "--customers", "300", "--seed", "3"]
    assert invoke(*args, "--out", str(tmp_path / "a")).exit_code == 0
    assert invoke(*args, "--out", str(tmp_path / "b")).exit_code == 0
    first = _digest(tmp_path / "a")
    assert first == _digest(tmp_path / "b")
    names = {Path(p).name for p in first}
    assert names >= {"customers.csv", "contacts.csv", "plans.csv", "invoices.csv", "line_items.csv",
                     "transactions.csv", "subscription_events.csv", "cancellations.csv", "currency_rates.csv",
                     "customer_merges.csv", "tags.csv", "custom_attributes.csv", "openmrr.yml"}
    assert invoke("validate", "--data", str(tmp_path / "a")).exit_code == 0


def test_explain_shows_each_movement_with_its_rows_and_arithmetic(tmp_path):
    from tests.helpers import SCENARIOS_DIR

    warehouse = tmp_path / "w.duckdb"
    assert invoke("run", "--data", str(SCENARIOS_DIR / "02-lifecycle" / "data"),
                  "--warehouse", str(warehouse)).exit_code == 0
    adam = invoke("explain", "--customer", "adam", "--warehouse", str(warehouse))
    assert adam.exit_code == 0
    lines = adam.output.splitlines()
    expansion = lines.index(next(line for line in lines if "+48.44" in line))
    assert "expansion" in lines[expansion]
    assert lines[expansion + 1].strip() == "from app/line_items.csv line 10 (invoice inv009, line item li009)"
    assert "proration 2678400s/1382400s (31d full period / 16d item, differential) = item MRR 48.44" in (
        lines[expansion + 3])
    assert lines[expansion + 4].strip() == "subscription MRR 50.00 → 98.44 USD (change 48.44)"
    berlin = invoke("explain", "--customer", "berlin", "--warehouse", str(warehouse)).output
    assert "× rate 1.25 = movement 25.00 USD" in berlin
    evt = invoke("explain", "--customer", "evt", "--warehouse", str(warehouse)).output
    assert "from app/subscription_events.csv line 2 [cancellation]" in evt
    missing = invoke("explain", "--customer", "nobody", "--warehouse", str(warehouse))
    assert missing.exit_code == 2 and "customer 'nobody' not found" in missing.output


def test_docs_builds_the_dbt_docs_site_from_a_warehouse(tmp_path):
    from openmrr.paths import DBT_PROJECT_DIR
    from tests.helpers import SCENARIOS_DIR

    warehouse = tmp_path / "w.duckdb"
    refresh(SCENARIOS_DIR / "02-lifecycle" / "data", warehouse)
    result = invoke("docs", "--warehouse", str(warehouse))
    assert result.exit_code == 0, result.output
    catalog = (DBT_PROJECT_DIR / "target" / "catalog.json").read_text()
    assert '"model.openmrr.mrr_activities"' in catalog
    assert (DBT_PROJECT_DIR / "target" / "index.html").exists()


def test_run_without_a_terminal_prints_progress_lines_and_no_dagster_or_dbt_event_lines(tmp_path):
    import os
    import subprocess
    import sys

    folder = write_folder(tmp_path / "data", base_rows())
    environment = {key: value for key, value in os.environ.items() if key != "DAGSTER_HOME"}
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "openmrr"), "run", "--data", str(folder),
         "--warehouse", str(tmp_path / "w.duckdb")],
        capture_output=True, text=True, env=environment, check=False,
    )  # stdout and stderr are pipes, as in CI or `make demo > log`
    assert completed.returncode == 0, completed.stderr
    output = completed.stdout + completed.stderr
    for step in ("ingest", "validate", "build"):
        assert f"] {step} done in " in completed.stderr
    assert "MRR summary" in completed.stdout
    assert " - DEBUG - " not in output and "STEP_START" not in output  # Dagster's console event log
    assert "START sql table model" not in output and "PASS not_null" not in output  # dbt's per-node lines
    assert "No dagster instance configuration file" not in output
    assert (tmp_path / "dagster" / "dagster.yaml").exists()  # the run history beside the warehouse
    assert len(completed.stderr.splitlines()) < 40
