"""The peer benchmark's inputs describe one business, and the tools are compared per customer-month.

The month-aligned history (benchmarks/aligned.py) is written three ways: an OpenMRR data folder, the
mrr-playbook's seed and the saas-metrics tape. They must validate cleanly and give the same MRR in every
customer-month, or the benchmark would compare different work. The end-to-end run (slow) needs no
peer: it checks OpenMRR against the history itself, and adds the playbook when a checkout is found
(OPENMRR_PLAYBOOK_DIR, else benchmarks/.peers/mrr-playbook) and saas-metrics when benchmarks/.peers-venv
exists. No timing is asserted.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from benchmarks.aligned import START, AlignedFolders, generate_aligned
from benchmarks.peers import compare
from benchmarks.playbook import PlaybookError, prepare_playbook
from benchmarks.saas_metrics_peer import DEFAULT_VENV, venv_python
from openmrr import pipeline
from openmrr.generate import GeneratorOptions
from openmrr.paths import PROJECT_ROOT

PLAYBOOK = Path(os.environ.get("OPENMRR_PLAYBOOK_DIR", PROJECT_ROOT / "benchmarks" / ".peers" / "mrr-playbook"))

# MRR per (customer, month) as each input states it
PLAYBOOK_SEED_MRR = """
    select periods.customer_id, months.month, cast(periods.monthly_amount as decimal(18, 2)) as mrr
    from read_csv(?, header = true, all_varchar = true) as periods
    inner join (select unnest(generate_series(date '2023-01-01', date '2024-12-01', interval 1 month))::date
                as month) as months
        on months.month >= cast(periods.start_date as date)
        and (periods.end_date is null or months.month < cast(periods.end_date as date))"""
TAPE_MRR = """
    select customer_id, cast(period as date) as month, cast(revenue as decimal(18, 2)) as mrr
    from read_csv(?, header = true, all_varchar = true)"""
# mrr-rules §2 on the data folder: the line item whose service period covers the month (one at a time)
LINE_ITEM_MRR = """
    select invoices.customer_external_id as customer_id, months.month,
        cast(round(cast(items.amount as decimal(18, 2))
                   / case plans.interval_unit when 'year' then 12 else 1 end, 2) as decimal(18, 2)) as mrr
    from read_csv(?, header = true, all_varchar = true) as items
    inner join read_csv(?, header = true, all_varchar = true) as invoices
        on invoices.external_id = items.invoice_external_id
    inner join read_csv(?, header = true, all_varchar = true) as plans
        on plans.external_id = items.plan_external_id
    inner join (select unnest(generate_series(date '2023-01-01', date '2024-12-01', interval 1 month))::date
                as month) as months
        on months.month >= cast(items.service_period_start as date)
        and months.month < cast(items.service_period_end as date)"""


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> AlignedFolders:
    return generate_aligned(GeneratorOptions(customers=200, seed=7, start=START), tmp_path_factory.mktemp("aligned"))


def _mrr(query: str, *paths: Path) -> list[tuple]:
    return duckdb.connect().execute(f"select * from ({query}) order by all", [str(p) for p in paths]).fetchall()


def test_aligned_history_validates_with_no_quarantined_row(history):
    result = pipeline.validate_only(history.openmrr)
    assert {report.file for report in result.reports} >= {"customers.csv", "invoices.csv", "line_items.csv",
                                                          "cancellations.csv", "plans.csv"}
    assert [(report.file, report.rows_quarantined) for report in result.reports if report.rows_quarantined] == []
    assert result.warnings == []


def test_every_input_states_the_same_mrr_in_every_customer_month(history):
    billing = history.openmrr / "billing"
    from_items = _mrr(LINE_ITEM_MRR, billing / "line_items.csv", billing / "invoices.csv", billing / "plans.csv")
    assert len(from_items) > 2000
    assert _mrr(PLAYBOOK_SEED_MRR, history.playbook_seed) == from_items
    assert _mrr(TAPE_MRR, history.saas_metrics_tape) == from_items


def test_the_history_holds_every_movement_the_peers_classify(history):
    con = duckdb.connect()
    con.execute("create table periods as select * from read_csv(?, header = true, all_varchar = true,"
                " types = {'start_date': 'date', 'end_date': 'date', 'monthly_amount': 'decimal(18, 2)'})",
                [str(history.playbook_seed)])
    changes = dict(con.execute("""
        select kind, count(*) from (
            select case when previous_end is null then 'new'
                        when previous_end < start_date then 'reactivation'
                        when monthly_amount > previous_amount then 'upgrade' else 'downgrade' end as kind
            from (select *, lag(end_date) over customer as previous_end,
                      lag(monthly_amount) over customer as previous_amount
                  from periods window customer as (partition by customer_id order by start_date)))
        group by kind""").fetchall())
    assert all(changes.get(kind, 0) > 0 for kind in ("new", "reactivation", "upgrade", "downgrade")), changes
    assert con.execute("select count(*) from periods where end_date is not null").fetchone()[0] > 0  # churned
    assert con.execute("select count(*) from periods where day(start_date) <> 1 or day(end_date) <> 1"
                       " or end_date <= start_date").fetchone()[0] == 0
    overlapping = con.execute("""select count(*) from periods as a inner join periods as b
        on a.customer_id = b.customer_id and a.subscription_id <> b.subscription_id
        and a.start_date < coalesce(b.end_date, date '9999-12-31')
        and b.start_date < coalesce(a.end_date, date '9999-12-31')""").fetchone()[0]
    assert overlapping == 0  # one period per customer at a time, as the playbook's schema requires
    plans = {row[0] for row in con.execute("select distinct plan_external_id from read_csv(?, header = true)",
                                           [str(history.openmrr / "billing" / "line_items.csv")]).fetchall()}
    assert {"basic_monthly", "business_annual"} <= plans


def test_the_same_seed_gives_the_same_bytes_and_another_seed_another_history(tmp_path):
    def files(seed: int, folder: str) -> dict[str, bytes]:
        root = generate_aligned(GeneratorOptions(customers=30, seed=seed, start=START), tmp_path / folder).root
        return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*.csv"))}

    first = files(1, "a")
    assert files(1, "b") == first
    assert files(2, "c") != first


def test_compare_lists_each_customer_month_where_a_peer_differs():
    def values(rows: str) -> tuple[str, str]:
        return "", f"select * from (values {rows}) as t(customer_id, month, mrr)"

    ours = values("('c1', date '2023-01-01', 10.00), ('c1', date '2023-02-01', 10.00),"
                  " ('c2', date '2023-01-01', 5.00)")
    same = values("('c2', date '2023-01-01', 5.00), ('c1', date '2023-02-01', 10.00),"
                  " ('c1', date '2023-01-01', 10.00), ('c1', date '2025-01-01', 99.00)")  # after the history: ignored
    other = values("('c1', date '2023-01-01', 10.00), ('c1', date '2023-02-01', 12.50),"
                   " ('c3', date '2023-03-01', 1.00)")
    compared, differences = compare({"openmrr": ours, "same": same, "other": other},
                                    GeneratorOptions(customers=3, start="2023-01-01", months=24))
    assert compared == {"same": 3, "other": 4}
    assert differences["same"] == []
    assert [(customer, str(month), mine, theirs) for customer, month, mine, theirs in differences["other"]] == [
        ("c1", "2023-02-01", 10, 12.5), ("c2", "2023-01-01", 5, None), ("c3", "2023-03-01", None, 1)]


def test_a_folder_that_is_not_the_playbook_is_refused_by_name(tmp_path, history):
    with pytest.raises(PlaybookError, match=r"no dbt_project\.yml"):
        prepare_playbook(tmp_path, tmp_path / "work", history.playbook_seed, ("2023-01-01", "2025-01-01"),
                         tmp_path / "p.duckdb")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "dbt_project.yml").write_text("name: other\n")
    with pytest.raises(PlaybookError, match=r"util_months\.sql"):
        prepare_playbook(tmp_path / "other", tmp_path / "work", history.playbook_seed,
                         ("2023-01-01", "2025-01-01"), tmp_path / "p.duckdb")


@pytest.mark.slow
def test_openmrr_and_every_available_peer_agree_on_monthly_mrr(tmp_path):
    command = [sys.executable, "-m", "benchmarks.peers", "--customers", "20", "--no-fixed-cost",
               "--cache", str(tmp_path / "data"), "--work", str(tmp_path / "work"), "--out", str(tmp_path / "r.md")]
    peers = ["history"]
    if (PLAYBOOK / "dbt_project.yml").exists():
        command += ["--playbook", str(PLAYBOOK)]
        peers.append("playbook")
    if venv_python(DEFAULT_VENV).exists():
        peers.append("saas-metrics")
    else:
        command.append("--no-saas-metrics")
    completed = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    row = next(line for line in (tmp_path / "r.md").read_text().splitlines() if line.startswith("| 20 |"))
    for peer in peers:
        assert re.search(rf"{peer}: all \d+", row), row
