"""mrr-rules §1 to §3 and the money rules of spec/README.md, one subscription per rule."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pytest

from orchestration.refresh import refresh
from tests.helpers import write_csv

PLANS = [
    {"external_id": "month", "name": "Monthly", "interval_count": 1, "interval_unit": "month"},
    {"external_id": "year", "name": "Yearly", "interval_count": 1, "interval_unit": "year"},
    {"external_id": "week", "name": "Weekly", "interval_count": 7, "interval_unit": "day"},
    {"external_id": "twelve", "name": "Twelve months", "interval_count": 12, "interval_unit": "month"},
]


def item(sub: str, plan: str, start: str, end: str, amount: str, **extra: str) -> dict[str, str]:
    return {"subscription_external_id": sub, "plan_external_id": plan, "service_period_start": start,
            "service_period_end": end, "amount": amount, "prorated": "false", **extra}


ITEMS = [
    item("monthly", "month", "2023-01-01", "2023-02-01", "100"),
    item("annual_with_tax", "year", "2023-01-01", "2024-01-01", "850", tax_amount="50"),
    item("weekly", "week", "2023-01-01", "2023-01-08", "10"),
    item("prorated_first", "month", "2023-03-16", "2023-04-01", "25", prorated="true"),
    item("half_cent", "twelve", "2023-01-01", "2024-01-01", "1000.26"),
    item("negative_half_cent", "twelve", "2023-01-01", "2024-01-01", "2000.52"),
    item("negative_half_cent", "twelve", "2023-01-01", "2024-01-01", "-1000.26", prorated="true"),
    item("differential", "month", "2023-01-01", "2023-02-01", "100", quantity="2"),
    item("differential", "month", "2023-01-16", "2023-02-01", "50", quantity="1", prorated="true"),
    item("full", "month", "2023-01-01", "2023-02-01", "100", quantity="2"),
    item("full", "month", "2023-01-16", "2023-02-01", "100", quantity="4", prorated="true", proration_type="full"),
    item("differential_mrr", "month", "2023-01-01", "2023-02-01", "100", quantity="2"),
    item("differential_mrr", "month", "2023-01-16", "2023-02-01", "50", quantity="5", prorated="true",
         proration_type="differential_mrr"),
    item("zero_first", "month", "2023-01-01", "2023-02-01", "0"),
    item("zero_first", "month", "2023-02-01", "2023-03-01", "100"),
    item("renewal", "month", "2023-01-01", "2023-02-01", "100"),
    item("renewal", "month", "2023-02-01", "2023-03-01", "100"),
    item("event_order", "month", "2023-01-01", "2023-02-01", "200", event_order="2"),
    item("event_order", "month", "2023-01-01", "2023-02-01", "100", event_order="1"),
    item("revived", "month", "2023-01-01", "2023-02-01", "100"),
    item("revived", "month", "2023-03-01", "2023-04-01", "100"),
    item("fees", "month", "2023-01-01", "2023-02-01", "100", transaction_fees="3.20"),
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    folder = tmp_path_factory.mktemp("rules") / "data"
    subscriptions = sorted({i["subscription_external_id"] for i in ITEMS})
    write_csv(folder / "app" / "customers.csv", [{"external_id": f"c_{s}"} for s in subscriptions])
    write_csv(folder / "app" / "plans.csv", PLANS)
    write_csv(folder / "app" / "invoices.csv", [
        {"external_id": f"i{n}", "customer_external_id": f"c_{i['subscription_external_id']}",
         "date": i["service_period_start"], "currency": "USD"} for n, i in enumerate(ITEMS)])
    columns = ["invoice_external_id", "type", "subscription_external_id", "plan_external_id", "service_period_start",
               "service_period_end", "amount", "tax_amount", "transaction_fees", "prorated", "proration_type",
               "quantity", "event_order"]
    write_csv(folder / "app" / "line_items.csv", [
        {"invoice_external_id": f"i{n}", "type": "subscription", **i} for n, i in enumerate(ITEMS)], columns)
    write_csv(folder / "app" / "cancellations.csv", [
        {"subscription_external_id": "revived", "customer_external_id": "c_revived", "cancelled_at": "2023-01-20"}])
    (folder / "openmrr.yml").write_text(
        "as_of: 2023-12-31\nsources:\n  app:\n    deduct_transaction_fees: true\n")
    path = folder.parent / "warehouse.duckdb"
    refresh(folder, path)
    con = duckdb.connect(str(path))
    yield con
    con.close()


def subscription(con, name: str) -> tuple[Decimal, int]:
    return con.execute(
        "select mrr, quantity from analytics.subscriptions where subscription_external_id = ?", [name]
    ).fetchone()


def movements(con, name: str) -> list[tuple]:
    return con.execute(
        "select strftime(date, '%Y-%m-%d'), type, mrr_movement from analytics.mrr_activities"
        " where subscription_external_id = ? order by date, rank", [name]).fetchall()


@pytest.mark.parametrize(("name", "mrr"), [
    ("monthly", "100.00"),  # monthly plan, amount 100
    ("annual_with_tax", "66.67"),  # (850 - 50) / 12
    ("weekly", "43.48"),  # 10 * 30.4375 / 7
    ("prorated_first", "48.44"),  # 25 * 31 days / 16 days
    ("half_cent", "83.36"),  # 1000.26 / 12 = 83.355: half away from zero, not binary floating point
    ("negative_half_cent", "83.35"),  # 166.71 + (-83.355 -> -83.36)
    ("fees", "96.80"),  # fee deduction on for this source
])
def test_worked_mrr_values(warehouse, name, mrr):
    assert subscription(warehouse, name)[0] == Decimal(mrr)


def test_differential_proration_adds_amount_and_quantity(warehouse):
    assert subscription(warehouse, "differential") == (Decimal("196.88"), 3)


def test_full_proration_replaces_amount_and_quantity(warehouse):
    assert subscription(warehouse, "full") == (Decimal("193.75"), 4)


def test_differential_mrr_proration_adds_amount_but_replaces_quantity(warehouse):
    assert subscription(warehouse, "differential_mrr") == (Decimal("196.88"), 5)


def test_a_subscription_starts_at_its_first_item_above_zero(warehouse):
    assert movements(warehouse, "zero_first") == [("2023-02-01", "new_biz", Decimal("100.00"))]


def test_a_renewal_at_the_same_mrr_makes_no_movement(warehouse):
    assert movements(warehouse, "renewal") == [("2023-01-01", "new_biz", Decimal("100.00"))]


def test_items_at_the_same_moment_apply_in_event_order(warehouse):
    assert subscription(warehouse, "event_order")[0] == Decimal("200.00")


def test_a_line_item_after_a_cancellation_revives_the_subscription(warehouse):
    assert movements(warehouse, "revived") == [
        ("2023-01-01", "new_biz", Decimal("100.00")),
        ("2023-01-20", "churn", Decimal("-100.00")),
        ("2023-03-01", "reactivation", Decimal("100.00")),
    ]
