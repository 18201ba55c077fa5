"""mrr-rules §7: committed MRR from scheduled events that are not retracted and not yet invoiced."""

from __future__ import annotations

from decimal import Decimal as D

import duckdb

from orchestration.refresh import refresh
from tests.helpers import write_csv


def event(external_id: str, customer: str, subscription: str, event_type: str, effective: str,
          **values: str) -> dict[str, str]:
    return {"external_id": external_id, "customer_external_id": customer, "subscription_external_id": subscription,
            "event_type": event_type, "event_date": "2023-10-10", "effective_date": effective, **values}


def test_committed_movements_follow_scheduled_events(tmp_path):
    folder = tmp_path / "data"
    write_csv(folder / "app" / "customers.csv", [{"external_id": c} for c in ("a", "b", "c")])
    write_csv(folder / "app" / "plans.csv", [
        {"external_id": "month", "name": "Monthly", "interval_count": 1, "interval_unit": "month"}])
    items = [("a", "a_1", "2023-10-01", "2023-11-01"), ("b", "b_1", "2023-10-01", "2023-11-01"),
             ("c", "c_1", "2023-09-01", "2023-10-01"), ("c", "c_1", "2023-10-01", "2023-11-01")]
    write_csv(folder / "app" / "invoices.csv", [
        {"external_id": f"i{n}", "customer_external_id": c, "date": start, "currency": "USD"}
        for n, (c, _, start, _) in enumerate(items)])
    write_csv(folder / "app" / "line_items.csv", [
        {"invoice_external_id": f"i{n}", "type": "subscription", "subscription_external_id": sub,
         "plan_external_id": "month", "service_period_start": start, "service_period_end": end, "amount": "100",
         "prorated": "false"} for n, (_, sub, start, end) in enumerate(items)])
    amount = {"amount": "150", "quantity": "2", "plan_external_id": "month"}
    write_csv(folder / "app" / "subscription_events.csv", [
        event("e1", "a", "a_1", "subscription_update_scheduled", "2023-11-01", **amount),
        event("e2", "a", "a_1", "subscription_cancellation_scheduled", "2023-12-01"),
        event("e3", "a", "a_2", "subscription_start_scheduled", "2024-01-01", amount="30", quantity="1",
              plan_external_id="month"),
        event("e4", "b", "b_1", "subscription_update_scheduled", "2023-11-01", **amount),
        event("e5", "b", "b_1", "scheduled_subscription_update_retracted", "2023-11-01"),
        event("e6", "c", "c_1", "subscription_update_scheduled", "2023-10-01", **amount),  # invoiced already
    ])
    (folder / "openmrr.yml").write_text("as_of: 2023-10-15\n")
    refresh(folder, tmp_path / "w.duckdb")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    assert con.execute(
        "select strftime(date, '%Y-%m-%d'), customer_external_id, subscription_external_id, type, mrr_movement, cmrr"
        " from analytics.cmrr_activities order by date").fetchall() == [
        ("2023-11-01", "a", "a_1", "expansion", D("50.00"), D("150.00")),
        ("2023-12-01", "a", "a_1", "churn", D("-150.00"), D("0.00")),
        ("2024-01-01", "a", "a_2", "reactivation", D("30.00"), D("30.00")),
    ]
