"""datasets.md metrics, checked against values computed by hand from scenario 02 and a cash example."""

from __future__ import annotations

from decimal import Decimal as D

import duckdb
import pytest

from orchestration.refresh import refresh
from tests.helpers import SCENARIOS_DIR, base_rows, write_folder


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    path = tmp_path_factory.mktemp("lifecycle") / "w.duckdb"
    refresh(SCENARIOS_DIR / "02-lifecycle" / "data", path)
    con = duckdb.connect(str(path))
    yield con
    con.close()


def month(con, month: str) -> dict:
    relation = con.execute("select * from analytics.metrics_monthly where month = ?", [month])
    names = [d[0] for d in relation.description]
    return dict(zip(names, relation.fetchone(), strict=True))


def test_january_balances_and_new_business(lifecycle):
    january = month(lifecycle, "2023-01-01")
    # acme: Gold 166.67 + Silver 60.00; adam: 50.00
    assert january["mrr"] == D("276.67") and january["arr"] == D("3320.04")
    assert january["customers"] == 2 and january["arpa"] == D("138.34")  # 138.335 rounds away from zero
    assert january["new_biz_mrr"] == D("216.67") and january["expansion_mrr"] == D("60.00")
    assert january["new_customers"] == 2 and january["asp"] == D("108.34")
    assert january["subscription_quantity"] == 7 and january["subscriptions"] == 3


def test_rates_with_a_zero_denominator_are_null(lifecycle):
    january = month(lifecycle, "2023-01-01")
    for rate in ("customer_churn_rate", "gross_mrr_churn_rate", "net_mrr_churn_rate", "quantity_churn_rate", "ltv"):
        assert january[rate] is None, rate


def test_march_churn_rates_and_fx_impact(lifecycle):
    march = month(lifecycle, "2023-03-01")
    # start 466.67; adam +48.44, acme silver -60.00, berlin revalued +10.00
    assert march["mrr"] == D("465.11")
    assert march["fx_impact"] == D("10.00")
    assert march["net_mrr_movement"] == D("-11.56")
    assert march["gross_mrr_churn_rate"] == D("0.128571")  # 60 / 466.67
    assert march["net_mrr_churn_rate"] == D("0.024771")  # 11.56 / 466.67
    assert march["quantity_churn_rate"] == D("0.222222")  # 2 seats lost of 9
    assert march["customer_churn_rate"] == D("0")


def test_april_customer_churn_rate_and_ltv(lifecycle):
    april = month(lifecycle, "2023-04-01")
    assert april["churned_customers"] == 1 and april["customer_churn_rate"] == D("0.25")  # evt, of 4
    assert april["arpa"] == D("138.89")  # 416.67 / 3
    # mean churn rate of Feb, Mar, Apr (January has none) = 0.25 / 3; 138.89 / (0.25 / 3)
    assert april["ltv"] == D("1666.68")


def test_june_churned_customers_and_net_churn_may_be_negative(lifecycle):
    june = month(lifecycle, "2023-06-01")
    assert june["churn_mrr"] == D("-316.67") and june["churned_customers"] == 2  # acme gold, twin
    september = month(lifecycle, "2023-09-01")
    assert september["reactivation_mrr"] == D("150.00") and september["reactivated_customers"] == 1
    assert september["net_mrr_churn_rate"] == D("-0.6")  # -150 / 250


def test_daily_metrics_end_where_the_monthly_ones_do(lifecycle):
    last_day = lifecycle.execute(
        "select mrr, customers from analytics.metrics_daily order by day desc limit 1").fetchone()
    assert last_day == (D("400.00"), 3)
    assert lifecycle.execute("select count(*) from analytics.metrics_daily").fetchone()[0] == 288  # Jan 1 - Oct 15


def test_customer_mrr_monthly_matches_the_monthly_balance(lifecycle):
    assert lifecycle.execute("""
        select count(*) from analytics.metrics_monthly m
        left join (select month, sum(mrr) as mrr from analytics.customer_mrr_monthly group by month) c
            on m.month = c.month
        where m.mrr <> coalesce(c.mrr, 0)
    """).fetchone()[0] == 0


def test_cash_flow_metrics(tmp_path):
    rows = base_rows()
    rows["app/transactions"] = [
        {"invoice_external_id": "i1", "external_id": "t1", "type": "payment", "result": "failed",
         "date": "2023-01-01", "amount": "100"},
        {"invoice_external_id": "i1", "external_id": "t2", "type": "payment", "result": "successful",
         "date": "2023-01-02", "amount": ""},  # defaults to the invoice total: 100 + 15 one-time
        {"invoice_external_id": "i1", "external_id": "t3", "type": "refund", "result": "successful",
         "date": "2023-01-20", "amount": "40"},
        {"invoice_external_id": "i2", "external_id": "t4", "type": "payment", "result": "successful",
         "date": "2023-01-05", "amount": "1200.50"},  # EUR at 1.0812
    ]
    rows["app/line_items"].append({"invoice_external_id": "i1", "type": "one_time", "amount": "15"})
    folder = write_folder(tmp_path / "data", rows)
    (folder / "openmrr.yml").write_text("as_of: 2023-01-31\n")
    refresh(folder, tmp_path / "w.duckdb")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    january = month(con, "2023-01-01")
    assert january["gross_cash_flow"] == D("115.00") + D("1297.98")  # 1200.50 x 1.0812 = 1297.9806
    assert january["refunds"] == D("40.00")
    assert january["net_cash_flow"] == D("1372.98")
    assert january["successful_payments"] == 2
    assert january["failed_transactions"] == 1
    assert january["non_recurring_cash_flow"] == D("15.00")
    net = con.execute("select customer_external_id, net_payments from analytics.customers order by 1").fetchall()
    assert net == [("c1", D("75.00")), ("c2", D("1297.98"))]
