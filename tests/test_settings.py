"""inputs.md settings: each one changes the result the way the spec says."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import duckdb
import yaml

from orchestration.refresh import refresh
from tests.helpers import write_csv

PLANS = [
    {"external_id": "month", "name": "Monthly", "interval_count": 1, "interval_unit": "month"},
    {"external_id": "week", "name": "Weekly", "interval_count": 7, "interval_unit": "day"},
]


def build(tmp_path: Path, items: list[dict], settings: dict, cancellations: list[dict] | None = None,
          currency: str = "USD", rates: list[dict] | None = None) -> duckdb.DuckDBPyConnection:
    """One customer `c` per subscription prefix; every item on its own invoice."""
    folder = tmp_path / "data"
    customers = sorted({i["sub"].split("_")[0] for i in items})
    write_csv(folder / "app" / "customers.csv", [{"external_id": c} for c in customers])
    write_csv(folder / "app" / "plans.csv", PLANS)
    write_csv(folder / "app" / "invoices.csv", [
        {"external_id": f"i{n}", "customer_external_id": i["sub"].split("_")[0], "date": i["start"],
         "currency": currency} for n, i in enumerate(items)])
    write_csv(folder / "app" / "line_items.csv", [
        {"invoice_external_id": f"i{n}", "type": "subscription", "subscription_external_id": i["sub"],
         "plan_external_id": i.get("plan", "month"), "service_period_start": i["start"],
         "service_period_end": i["end"], "amount": i["amount"], "prorated": "false",
         "transaction_fees": i.get("fees", "")} for n, i in enumerate(items)])
    if cancellations:
        write_csv(folder / "app" / "cancellations.csv", cancellations)
    if rates:
        write_csv(folder / "currency_rates.csv", rates)
    (folder / "openmrr.yml").write_text(yaml.safe_dump(settings))
    refresh(folder, tmp_path / "w.duckdb")
    return duckdb.connect(str(tmp_path / "w.duckdb"))


def movements(con) -> list[tuple]:
    return con.execute(
        "select strftime(date, '%Y-%m-%d'), subscription_external_id, type, mrr_movement"
        " from analytics.mrr_activities order by date, customer_id, rank").fetchall()


def status(con, customer: str) -> tuple:
    return con.execute(
        "select status, mrr from analytics.customers where customer_external_id = ?", [customer]).fetchone()


MONTHLY = {"sub": "a_1", "start": "2023-01-01", "end": "2023-02-01", "amount": "100"}
CANCEL_MID_PERIOD = [{"subscription_external_id": "a_1", "customer_external_id": "a", "cancelled_at": "2023-01-15"}]


def test_churn_recognition_at_cancellation_dates_churn_at_the_cancellation(tmp_path):
    con = build(tmp_path, [MONTHLY], {"as_of": "2023-03-01"}, CANCEL_MID_PERIOD)
    assert movements(con)[-1] == ("2023-01-15", "a_1", "churn", D("-100.00"))


def test_churn_recognition_at_period_end_dates_churn_at_the_paid_periods_end(tmp_path):
    con = build(tmp_path, [MONTHLY], {"as_of": "2023-03-01", "churn_recognition": "at_period_end"},
                CANCEL_MID_PERIOD)
    assert movements(con)[-1] == ("2023-02-01", "a_1", "churn", D("-100.00"))


def test_missing_renewal_keep_leaves_the_subscription_live_and_past_due(tmp_path):
    con = build(tmp_path, [MONTHLY], {"as_of": "2023-04-01"})
    assert [m[2] for m in movements(con)] == ["new_biz"]
    assert status(con, "a") == ("Past Due", D("100.00"))


def test_missing_renewal_churns_at_the_period_end_after_n_days(tmp_path):
    late = {"sub": "a_1", "start": "2023-02-20", "end": "2023-03-20", "amount": "100"}
    con = build(tmp_path, [MONTHLY, late], {"as_of": "2023-03-05", "missing_renewal": {"churn_after_days": 10}})
    assert movements(con) == [
        ("2023-01-01", "a_1", "new_biz", D("100.00")),
        ("2023-02-01", "a_1", "churn", D("-100.00")),
        ("2023-02-20", "a_1", "reactivation", D("100.00")),
    ]
    assert status(con, "a") == ("Active", D("100.00"))


FREE = [MONTHLY, {"sub": "a_1", "start": "2023-02-01", "end": "2023-03-01", "amount": "0"}]


def test_free_customers_stay_active_by_default(tmp_path):
    con = build(tmp_path, FREE, {"as_of": "2023-02-15"})
    assert movements(con)[-1] == ("2023-02-01", "a_1", "contraction", D("-100.00"))
    assert status(con, "a") == ("Active", D("0.00"))


def test_free_customers_churn_when_set(tmp_path):
    con = build(tmp_path, FREE, {"as_of": "2023-02-15", "free_customers": "churn"})
    assert movements(con)[-1] == ("2023-02-01", "a_1", "churn", D("-100.00"))
    assert status(con, "a") == ("Cancelled", D("0.00"))


TWINS = [{"sub": "a_1", "start": "2023-01-01 10:00", "end": "2023-02-01", "amount": "100"},
         {"sub": "a_2", "start": "2023-01-01 10:30", "end": "2023-02-01", "amount": "50"}]


def test_smart_classification_folds_a_purchase_within_the_window_into_new_business(tmp_path):
    con = build(tmp_path, TWINS, {"as_of": "2023-01-15"})
    assert [m[2] for m in movements(con)] == ["new_biz", "new_biz"]


def test_smart_classification_can_be_turned_off(tmp_path):
    con = build(tmp_path, TWINS, {"as_of": "2023-01-15", "smart_classification_minutes": 0})
    assert [m[2] for m in movements(con)] == ["new_biz", "expansion"]


def test_smart_classification_window_is_in_minutes(tmp_path):
    con = build(tmp_path, TWINS, {"as_of": "2023-01-15", "smart_classification_minutes": 20})
    assert [m[2] for m in movements(con)] == ["new_biz", "expansion"]


def test_days_per_month_normalises_day_plans(tmp_path):
    weekly = {"sub": "a_1", "start": "2023-01-01", "end": "2023-01-08", "amount": "10", "plan": "week"}
    con = build(tmp_path, [weekly], {"as_of": "2023-01-05", "days_per_month": 30})
    assert status(con, "a")[1] == D("42.86")  # 10 x 30 / 7 = 42.857


def test_transaction_fees_are_deducted_when_set_for_the_account(tmp_path):
    con = build(tmp_path, [{**MONTHLY, "fees": "3.30"}], {"as_of": "2023-01-15", "deduct_transaction_fees": True})
    assert status(con, "a")[1] == D("96.70")


def test_a_source_can_override_the_fee_setting(tmp_path):
    con = build(tmp_path, [{**MONTHLY, "fees": "3.30"}],
                {"as_of": "2023-01-15", "deduct_transaction_fees": True,
                 "sources": {"app": {"deduct_transaction_fees": False}}})
    assert status(con, "a")[1] == D("100.00")


def test_the_account_currency_converts_every_amount(tmp_path):
    rates = [{"date": "2022-12-01", "from_currency": "USD", "to_currency": "EUR", "rate": "0.9"}]
    con = build(tmp_path, [MONTHLY], {"as_of": "2023-01-15", "account_currency": "EUR"}, rates=rates)
    assert status(con, "a")[1] == D("90.00")
    assert con.execute("select account_currency, billing_currency from analytics.mrr_activities").fetchone() == (
        "EUR", "USD")


def test_an_inverse_rate_is_exact(tmp_path):
    rates = [{"date": "2022-12-01", "from_currency": "EUR", "to_currency": "USD", "rate": "3"}]
    con = build(tmp_path, [MONTHLY], {"as_of": "2023-01-15", "account_currency": "EUR"}, rates=rates)
    assert status(con, "a")[1] == D("33.33")  # 100 / 3, not 100 x 0.333...
