"""`openmrr explain`: a customer's movements with the rows and arithmetic behind each one."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from openmrr.built_warehouse import open_built
from openmrr.errors import ConfigError


@dataclass(frozen=True)
class ExplainedMovement:
    date: str
    type: str
    mrr_movement: Decimal
    mrr_after: Decimal
    account_currency: str
    subscription: str
    description: str
    source: str
    arithmetic: list[str]


def _money(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _rate(numerator: Decimal, denominator: Decimal) -> str:
    numerator, denominator = numerator.normalize(), denominator.normalize()
    return f"{numerator:f}" if denominator == 1 else f"1/{denominator:f}" if numerator == 1 else (
        f"{numerator:f}/{denominator:f}")


def _arithmetic(row: dict) -> list[str]:
    lines = []
    if row["source_kind"] == "line_item":
        fees = f" − fees {_money(row['deducted_fees'])}" if row["deducted_fees"] else ""
        lines.append(f"amount {_money(row['amount'])} − tax {_money(row['tax_amount'])}{fees}"
                     f" = {_money(row['base_amount'])} {row['billing_currency']}")
        ratio = (f"{row['ratio_numerator'] / Decimal(1000000):f}/{row['ratio_denominator']}"
                 f" ({row['interval_count']} {row['interval_unit']} plan)")
        factor = ""
        if row["prorated"]:
            days = Decimal(row["full_period_seconds"]) / 86400, Decimal(row["item_period_seconds"]) / 86400
            factor = (f" × proration {row['full_period_seconds']}s/{row['item_period_seconds']}s"
                      f" ({days[0]:g}d full period / {days[1]:g}d item, {row['proration_type']})")
        lines.append(f"× plan ratio {ratio}{factor} = item MRR {_money(row['mrr_item'])}")
    lines.append(f"subscription MRR {_money(row['previous_mrr_billing_currency'])} → "
                 f"{_money(row['mrr_billing_currency'])} {row['billing_currency']}"
                 f" (change {_money(row['mrr_movement_billing_currency'])})")
    if row["source_kind"] == "line_item":
        lines.append(f"× rate {_rate(row['rate_numerator'], row['rate_denominator'])} = movement "
                     f"{_money(row['mrr_movement'])} {row['account_currency']}")
    else:  # mrr-rules §4: a churn is valued at the rate of the interval it ends
        lines.append(f"churn of the account-currency MRR {_money(row['previous_mrr'])} = movement "
                     f"{_money(row['mrr_movement'])} {row['account_currency']}")
    return lines


# what explain reads; a warehouse without them was never built (or its first build failed)
EXPLAIN_TABLES = (("analytics_internal", "int_customer_map"), ("analytics", "mrr_activities"),
                  ("analytics", "activity_sources"))


def explain_customer(warehouse: Path, external_id: str, data_source: str | None = None) -> list[ExplainedMovement]:
    """The movements of the calculated customer that `external_id` belongs to, oldest first."""
    con = open_built(warehouse, EXPLAIN_TABLES)
    try:
        matches = con.execute(
            "select distinct data_source, customer_id from analytics_internal.int_customer_map"
            " where customer_external_id = ? and (? is null or data_source = ?)",
            [external_id, data_source, data_source],
        ).fetchall()
        if not matches:
            raise ConfigError(f"customer '{external_id}' not found" + (f" in source {data_source}" if data_source
                                                                    else ""))
        if len({customer_id for _, customer_id in matches}) > 1:
            sources = ", ".join(sorted(source for source, _ in matches))
            raise ConfigError(f"customer '{external_id}' exists in several sources ({sources}): add --source")
        relation = con.execute(
            """select a.date, a.type, a.mrr_movement, a.mrr, a.account_currency, a.subscription_external_id,
                      a.description, s.*
               from analytics.mrr_activities a
               inner join analytics.activity_sources s on a.activity_id = s.activity_id
               where a.customer_id = ?
               order by a.date, a.rank""",
            [matches[0][1]],
        )
        names = [d[0] for d in relation.description]
        rows = [dict(zip(names, values, strict=False)) for values in relation.fetchall()]
    finally:
        con.close()
    return [
        ExplainedMovement(
            date=f"{row['date']:%Y-%m-%d %H:%M}", type=row["type"], mrr_movement=row["mrr_movement"],
            mrr_after=row["mrr"], account_currency=row["account_currency"],
            subscription=row["subscription_external_id"], description=row["description"],
            source=(f"{row['data_source']}/{row['file']} line {row['line']}"
                    + (f" (invoice {row['invoice_external_id']}, line item {row['line_item_external_id']})"
                       if row["source_kind"] == "line_item" and row["line_item_external_id"] else "")
                    + ("" if row["source_kind"] == "line_item" else f" [{row['source_kind']}]")),
            arithmetic=_arithmetic(row),
        )
        for row in rows
    ]
