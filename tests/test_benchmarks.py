"""The benchmark runs end to end (CI smoke test at 10k customers), and a rerun after one more day of
data gives exactly the warehouse a fresh run on the same files gives.

No timing is asserted: numbers are the benchmark's output, not the suite's verdict.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.run import append_one_day
from openmrr import pipeline
from openmrr.generate import GeneratorOptions, generate_data_folder
from openmrr.paths import PROJECT_ROOT
from orchestration.refresh import refresh

pytestmark = pytest.mark.slow

STAGES = ("generate", "floor", "refresh", "increment", "run", "rerun")
COMPARED_DATASETS = ("customers", "subscriptions", "mrr_activities", "cmrr_activities", "fx_adjustments",
                     "mrr_intervals", "customer_mrr_monthly", "metrics_daily", "metrics_monthly", "activity_sources")


def test_benchmark_reports_every_stage_at_10k_customers(tmp_path):
    out = tmp_path / "results.md"
    subprocess.run([sys.executable, "-m", "benchmarks.run", "--customers", "10000", "--cache", str(tmp_path / "data"),
                    "--out", str(out), "--work", str(tmp_path / "work")], cwd=PROJECT_ROOT, check=True)
    table = {row[0]: row[1:] for row in (
        [cell.strip() for cell in line.strip("|").split("|")] for line in out.read_text().splitlines()
        if re.match(r"\| (generate|floor|refresh|increment|run|rerun) \|", line))}
    assert tuple(table) == STAGES
    for stage, (seconds, rows, _rate, peak_mb, _ratio) in table.items():
        assert float(seconds) > 0 and float(peak_mb) > 0, stage
        assert int(rows.replace(",", "")) > 0, stage
    assert int(table["rerun"][1].replace(",", "")) > int(table["run"][1].replace(",", ""))  # one more day read
    assert int(table["increment"][1].replace(",", "")) > int(table["refresh"][1].replace(",", ""))
    assert "refresh (full build: no earlier build" in out.read_text()
    assert "increment (incremental build: batches after" in out.read_text()
    assert "Slowest nodes:" in out.read_text()


def _rows(warehouse: Path, dataset: str) -> list[tuple]:
    with pipeline.connect(warehouse) as con:  # dbt-duckdb may still hold the file in this process
        return con.execute(f"select * from analytics.{dataset} order by all").fetchall()


def test_rerun_after_one_more_day_equals_a_fresh_run_on_the_same_files(tmp_path):
    data = tmp_path / "data"
    generate_data_folder(GeneratorOptions(customers=300, seed=3, start="2023-01-01", months=12), data)
    rerun, fresh = tmp_path / "rerun.duckdb", tmp_path / "fresh.duckdb"
    refresh(data, rerun)
    before = _rows(rerun, "mrr_activities")
    plus_one_day = tmp_path / "plus-one-day"
    shutil.copytree(data, plus_one_day)
    append_one_day(plus_one_day)
    refresh(plus_one_day, rerun)
    refresh(plus_one_day, fresh)
    with pipeline.connect(rerun) as con:  # the grown files loaded only their appended rows
        appended = con.execute("select file, sum(rows) from raw.import_batches where first_batch_id <> batch_id"
                               " group by file order by file").fetchall()
        assert [file for file, _ in appended] == ["invoices.csv", "line_items.csv"]
        raw_items = con.execute("select count(*) from raw.line_items").fetchone()[0]
    with pipeline.connect(fresh) as con:  # no row of the grown files was loaded twice
        assert raw_items == con.execute("select count(*) from raw.line_items").fetchone()[0]
    for dataset in COMPARED_DATASETS:
        assert _rows(rerun, dataset) == _rows(fresh, dataset), dataset
    assert _rows(rerun, "mrr_activities") != before  # the extra day changed something to compare
