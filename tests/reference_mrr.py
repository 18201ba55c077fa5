"""An independent, row-by-row reference of mrr-rules.md §1-§6, written from the spec text only.

It is deliberately plain (no SQL, no pandas) and slow: one subscription and one moment at a
time, `Decimal` for every amount and rate, one exact division per value before rounding to
cents. The property test compares it with the dbt engine on random billing histories.

Scope: line items, `cancellations.csv`, line-item `cancelled_at` and `subscription_cancelled`
events; `churn_recognition: at_cancellation`, `missing_renewal: keep`,
`free_customers: stay_active`; one calculated customer per source customer (no merges); no
failed payments. Input rows are dicts of CSV text, exactly as they are written to the files.

Readings of the spec this reference takes where the text leaves a choice open:
- A subscription changes at most once per moment: every line item starting at that moment is
  applied in timeline order, then its cancellations (§3), and the one movement is the net
  change from just before the moment to just after it (a zero-length stretch is no interval).
- Every line item that applies starts a new MRR interval, so a renewal revalues the
  account-currency MRR at its start day's rate (no movement, an FX adjustment; scenario 02).
- Changes of one customer at the same moment are ordered by (event order of the
  subscription's first item at that moment, missing last; line items before cancellations;
  input row position).
- Smart classification: an expansion/contraction takes the type of the latest new_biz or
  reactivation at most W minutes before it (or at the same moment, ranked before it);
  otherwise it becomes churn when a churn follows within W minutes. Windows are inclusive.
- Nothing dated after `as_of` exists (OpenMRR's decision): those items and cancellations are
  dropped before anything is computed.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext

CENT = Decimal("0.01")
EXACT = 80  # decimal digits: enough that every product here is exact and every division correctly rounded


# ---------------------------------------------------------------------------------------------
# Parsing CSV text (inputs.md types)
# ---------------------------------------------------------------------------------------------
def parse_ts(text: str) -> datetime:
    """ISO 8601 date or date-time; a date alone is midnight UTC; naive times are UTC."""
    moment = datetime.fromisoformat(text.strip())
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_bool(text: object) -> bool:
    return str(text).strip().lower() in {"true", "yes", "1"}


def parse_money(text: object) -> Decimal:
    value = "" if text is None else str(text).strip()
    return Decimal(value) if value else Decimal(0)


def parse_int(text: object) -> int | None:
    value = "" if text is None else str(text).strip()
    return int(value) if value else None


def blank(row: dict[str, object], column: str) -> bool:
    value = row.get(column)
    return value is None or str(value).strip() == ""


def round_cents(value: Decimal) -> Decimal:
    """Half away from zero (Decimal's ROUND_HALF_UP), to cents."""
    with localcontext() as context:
        context.prec = EXACT
        return value.quantize(CENT, rounding=ROUND_HALF_UP)


def exact_ratio(numerator: Decimal, denominator: Decimal) -> Decimal:
    """One division, correctly rounded to 80 digits: exact whenever the true value terminates."""
    with localcontext() as context:
        context.prec = EXACT
        return numerator / denominator


def times(*factors: Decimal | int) -> Decimal:
    with localcontext() as context:
        context.prec = EXACT
        product = Decimal(1)
        for factor in factors:
            product *= Decimal(factor)
        return product


# ---------------------------------------------------------------------------------------------
# Settings and inputs
# ---------------------------------------------------------------------------------------------
@dataclass
class Settings:
    as_of: datetime
    account_currency: str = "USD"
    smart_classification_minutes: int = 60
    days_per_month: Decimal = Decimal("30.4375")
    churn_recognition: str = "at_cancellation"
    deduct_transaction_fees: dict[str, bool] = field(default_factory=dict)  # per source

    def __post_init__(self) -> None:
        if self.churn_recognition != "at_cancellation":
            raise NotImplementedError("the reference implements churn_recognition: at_cancellation only")


@dataclass
class Source:
    """One data source's files, as lists of CSV rows (column -> text)."""

    customers: list[dict[str, str]]
    plans: list[dict[str, str]]
    invoices: list[dict[str, str]]
    line_items: list[dict[str, str]]
    cancellations: list[dict[str, str]] = field(default_factory=list)
    subscription_events: list[dict[str, str]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# §2: the MRR of one line item
# ---------------------------------------------------------------------------------------------
def minus_months(moment: datetime, months: int) -> datetime:
    """Calendar month arithmetic; the day clamps to the end of a shorter month."""
    index = moment.year * 12 + (moment.month - 1) - months
    year, month = divmod(index, 12)
    month += 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def full_period_start(end: datetime, unit: str, count: int) -> datetime:
    """The start of one plan interval ending at `end`."""
    if unit == "month":
        return minus_months(end, count)
    if unit == "year":
        return minus_months(end, 12 * count)
    if unit == "day":
        return end - timedelta(days=count)
    raise ValueError(f"unknown interval unit {unit!r}")


def seconds(delta: timedelta) -> int:
    return delta.days * 86400 + delta.seconds  # every input time is whole seconds


def line_item_mrr(base: Decimal, unit: str, count: int, prorated: bool, start: datetime, end: datetime,
                  days_per_month: Decimal = Decimal("30.4375")) -> Decimal:
    """mrr_item = round_cents(base * ratio(plan) * factor), computed as one exact division."""
    if unit == "month":
        numerator, denominator = Decimal(1), Decimal(count)
    elif unit == "year":
        numerator, denominator = Decimal(1), Decimal(12 * count)
    elif unit == "day":
        numerator, denominator = days_per_month, Decimal(count)
    else:
        raise ValueError(f"unknown interval unit {unit!r}")
    if prorated:
        full = seconds(end - full_period_start(end, unit, count))
        item = seconds(end - start)
        numerator, denominator = times(numerator, full), times(denominator, item)
    return round_cents(exact_ratio(times(base, numerator), denominator))


# ---------------------------------------------------------------------------------------------
# §4: currency rates
# ---------------------------------------------------------------------------------------------
class Rates:
    """The rate for a day is the latest on or before it; the inverse pair may be used (exactly)."""

    def __init__(self, rows: list[dict[str, str]], account_currency: str) -> None:
        self.account_currency = account_currency
        self.rows = [(parse_ts(r["date"]), r["from_currency"].strip(), r["to_currency"].strip(),
                      Decimal(str(r["rate"]).strip())) for r in rows]

    def convert(self, amount: Decimal, currency: str, day: datetime) -> Decimal:
        """amount (billing currency) in the account currency at `day`'s rate, unrounded."""
        if currency == self.account_currency:
            return amount
        day_start = day.replace(hour=0, minute=0, second=0, microsecond=0)
        best: tuple[datetime, int, Decimal, bool] | None = None
        for rate_day, source, target, rate in self.rows:
            if rate_day > day_start:
                continue
            if (source, target) == (currency, self.account_currency):
                candidate = (rate_day, 1, rate, False)  # the direct pair wins a same-day tie
            elif (source, target) == (self.account_currency, currency):
                candidate = (rate_day, 0, rate, True)
            else:
                continue
            if best is None or candidate[:2] > best[:2]:
                best = candidate
        if best is None:
            raise LookupError(f"no {currency}->{self.account_currency} rate on or before {day_start:%Y-%m-%d}")
        _, _, rate, inverse = best
        return exact_ratio(amount, rate) if inverse else times(amount, rate)


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------
@dataclass
class Movement:
    date: datetime
    data_source: str
    customer_external_id: str
    subscription_external_id: str
    type: str
    mrr_movement: Decimal
    mrr: Decimal  # the customer's account-currency MRR after the movement
    mrr_movement_billing_currency: Decimal
    subscription_quantity: int
    plan_external_id: str | None
    previous_plan_external_id: str | None


@dataclass
class FxAdjustment:
    date: datetime
    data_source: str
    customer_external_id: str
    subscription_external_id: str
    amount: Decimal


@dataclass
class SubscriptionState:
    data_source: str
    customer_external_id: str
    subscription_external_id: str
    billing_currency: str
    live: bool = False
    started: bool = False
    mrr_billing_currency: Decimal = Decimal(0)
    mrr: Decimal = Decimal(0)  # account currency
    quantity: int = 0
    plan_external_id: str | None = None
    last_period_end: datetime | None = None
    status: str | None = None  # active / past_due / cancelled at as_of; None if it never started


@dataclass
class CustomerState:
    data_source: str
    customer_external_id: str
    mrr: Decimal
    status: str


@dataclass
class Result:
    movements: list[Movement]
    fx_adjustments: list[FxAdjustment]
    subscriptions: dict[tuple[str, str], SubscriptionState]
    customers: dict[tuple[str, str], CustomerState]


# ---------------------------------------------------------------------------------------------
# §3: the timeline of one subscription
# ---------------------------------------------------------------------------------------------
@dataclass
class _Item:
    start: datetime
    end: datetime
    base: Decimal
    net_of_tax: Decimal
    unit: str
    count: int
    plan: str
    prorated: bool
    proration_type: str
    quantity: int
    event_order: int | None
    position: int


@dataclass
class _Step:
    """What one moment did to one subscription."""

    at: datetime
    order: tuple
    subscription: SubscriptionState
    live_before: bool
    live_after: bool
    billing_change: Decimal
    mrr_before: Decimal
    mrr_after: Decimal
    movement: Decimal  # account currency; 0 = no movement
    quantity_after: int
    plan_before: str | None
    plan_after: str | None


def _timeline_key(item: _Item) -> tuple:
    return (item.start, item.event_order is None, item.event_order or 0, item.position)


def _run_subscription(state: SubscriptionState, items: list[_Item], cancellations: list[tuple[datetime, int]],
                      rates: Rates, settings: Settings) -> list[_Step]:
    items = sorted(items, key=_timeline_key)
    moments = sorted({i.start for i in items} | {at for at, _ in cancellations})
    steps = []
    for at in moments:
        at_items = [i for i in items if i.start == at]
        at_cancellations = sorted(position for when, position in cancellations if when == at)
        live_before, billing_before, mrr_before = state.live, state.mrr_billing_currency, state.mrr
        plan_before = state.plan_external_id
        applied = False
        for item in at_items:
            if not state.started and item.net_of_tax <= 0:
                continue  # §1: zero-amount items before the start are ignored for MRR
            mrr_item = line_item_mrr(item.base, item.unit, item.count, item.prorated, item.start, item.end,
                                     settings.days_per_month)
            if not state.live or not item.prorated or item.proration_type == "full":
                state.mrr_billing_currency, state.quantity = mrr_item, item.quantity
            elif item.proration_type == "differential":
                state.mrr_billing_currency += mrr_item
                state.quantity += item.quantity
            elif item.proration_type == "differential_mrr":
                state.mrr_billing_currency += mrr_item
                state.quantity = item.quantity
            else:
                raise ValueError(f"unknown proration type {item.proration_type!r}")
            state.live = state.started = True
            state.plan_external_id = item.plan
            state.last_period_end = max(item.end, state.last_period_end or item.end)
            applied = True
        if at_cancellations and state.live:
            state.live = False
            state.mrr_billing_currency = Decimal(0)
        if not live_before and not state.live:
            continue  # nothing live before or after (e.g. a repeated cancellation)
        if state.live:
            state.mrr = round_cents(rates.convert(state.mrr_billing_currency, state.billing_currency, at))
            change = state.mrr_billing_currency - (billing_before if live_before else Decimal(0))
            movement = round_cents(rates.convert(change, state.billing_currency, at)) if change else Decimal(0)
        else:
            change = -billing_before
            movement = -mrr_before  # a churn is valued at the rate of the interval it ends
            state.mrr = Decimal(0)
        if applied:
            first = at_items[0]
            order = (first.event_order is None, first.event_order or 0, 0, first.position)
        else:
            order = (True, 0, 1, at_cancellations[0])
        steps.append(_Step(at, order, state, live_before, state.live, change, mrr_before if live_before else Decimal(0),
                           state.mrr, movement, state.quantity, plan_before, state.plan_external_id))
    return steps


# ---------------------------------------------------------------------------------------------
# §5: classification, customer by customer
# ---------------------------------------------------------------------------------------------
def _classify(steps: list[_Step], settings: Settings) -> tuple[list[Movement], list[FxAdjustment], Decimal]:
    live: dict[str, Decimal] = {}  # subscription -> account MRR, for live subscriptions
    ever_subscriber = False
    movements: list[tuple[Movement, str]] = []
    adjustments = []
    for step in sorted(steps, key=lambda s: (s.at, s.order)):
        sub = step.subscription
        subscriber_before = bool(live)
        if step.live_after:
            live[sub.subscription_external_id] = step.mrr_after
        else:
            live.pop(sub.subscription_external_id, None)
        subscriber_after = bool(live)
        total = sum(live.values(), Decimal("0.00"))
        fx = step.mrr_after - step.mrr_before - step.movement
        if fx:
            adjustments.append(FxAdjustment(step.at, sub.data_source, sub.customer_external_id,
                                            sub.subscription_external_id, fx))
        if step.movement:
            if not subscriber_before and subscriber_after:
                kind = "reactivation" if ever_subscriber else "new_biz"
            elif subscriber_before and not subscriber_after:
                kind = "churn"
            elif subscriber_before and subscriber_after:
                kind = "expansion" if step.movement > 0 else "contraction"
            else:
                raise AssertionError("a movement on a customer that is a subscriber neither before nor after")
            movements.append((Movement(step.at, sub.data_source, sub.customer_external_id,
                                       sub.subscription_external_id, kind, step.movement, total,
                                       step.billing_change, step.quantity_after, step.plan_after,
                                       step.plan_before), kind))
        ever_subscriber = ever_subscriber or subscriber_after
    window = timedelta(minutes=settings.smart_classification_minutes)
    if settings.smart_classification_minutes > 0:
        for index, (movement, base_type) in enumerate(movements):
            if base_type not in {"expansion", "contraction"}:
                continue
            starts = [m for m, t in movements[:index]
                      if t in {"new_biz", "reactivation"} and movement.date - m.date <= window]
            churns = [m for m, t in movements[index + 1:] if t == "churn" and m.date - movement.date <= window]
            if starts:
                movement.type = starts[-1].type
            elif churns:
                movement.type = "churn"
    return [m for m, _ in movements], adjustments, sum(live.values(), Decimal("0.00"))


# ---------------------------------------------------------------------------------------------
# The whole computation
# ---------------------------------------------------------------------------------------------
def compute(sources: dict[str, Source], currency_rates: list[dict[str, str]], settings: Settings) -> Result:
    rates = Rates(currency_rates, settings.account_currency)
    as_of = settings.as_of
    subscriptions: dict[tuple[str, str], SubscriptionState] = {}
    customer_steps: dict[tuple[str, str], list[_Step]] = {}
    lead_status: dict[tuple[str, str], str] = {}
    for name, source in sources.items():
        for row in source.customers:
            lead_status[(name, row["external_id"])] = (row.get("lead_status") or "").strip() or "New Lead"
        plans = {row["external_id"]: (row["interval_unit"].strip(), int(row["interval_count"]))
                 for row in source.plans}
        invoices = {row["external_id"]: row for row in source.invoices}
        deduct_fees = settings.deduct_transaction_fees.get(name, False)
        items: dict[str, list[_Item]] = {}
        cancellations: dict[str, list[tuple[datetime, int]]] = {}
        for position, row in enumerate(source.line_items):
            if row["type"].strip() != "subscription":
                continue  # §1: one-time items never touch MRR
            invoice = invoices[row["invoice_external_id"]]
            subscription_id = row["subscription_external_id"]
            key = (name, subscription_id)
            if key not in subscriptions:
                subscriptions[key] = SubscriptionState(name, invoice["customer_external_id"], subscription_id,
                                                       invoice["currency"].strip())
            unit, count = plans[row["plan_external_id"]]
            net_of_tax = parse_money(row["amount"]) - parse_money(row.get("tax_amount"))
            base = net_of_tax - (parse_money(row.get("transaction_fees")) if deduct_fees else Decimal(0))
            start, end = parse_ts(row["service_period_start"]), parse_ts(row["service_period_end"])
            quantity = parse_int(row.get("quantity"))
            item = _Item(start, end, base, net_of_tax, unit, count, row["plan_external_id"],
                         parse_bool(row["prorated"]), (row.get("proration_type") or "").strip() or "differential",
                         1 if quantity is None else quantity, parse_int(row.get("event_order")), position)
            if start <= as_of:
                items.setdefault(subscription_id, []).append(item)
            if not blank(row, "cancelled_at"):
                cancellations.setdefault(subscription_id, []).append((parse_ts(row["cancelled_at"]), position))
        for position, row in enumerate(source.cancellations):
            cancellations.setdefault(row["subscription_external_id"], []).append(
                (parse_ts(row["cancelled_at"]), position))
        retracted = {row.get("retracted_event_id") for row in source.subscription_events
                     if row["event_type"] == "subscription_event_retracted"}
        for position, row in enumerate(source.subscription_events):
            if row["event_type"] == "subscription_cancelled" and row.get("external_id") not in retracted:
                cancellations.setdefault(row["subscription_external_id"], []).append(
                    (parse_ts(row["effective_date"]), position))
        for (source_name, subscription_id), state in subscriptions.items():
            if source_name != name:
                continue
            steps = _run_subscription(
                state, items.get(subscription_id, []),
                [(at, p) for at, p in cancellations.get(subscription_id, []) if at <= as_of], rates, settings)
            customer_steps.setdefault((name, state.customer_external_id), []).extend(steps)
            if state.live:
                state.status = "past_due" if state.last_period_end < as_of else "active"
            elif state.started:
                state.status = "cancelled"

    movements: list[Movement] = []
    adjustments: list[FxAdjustment] = []
    customers: dict[tuple[str, str], CustomerState] = {}
    for key, status in lead_status.items():
        customer_movements, customer_adjustments, mrr = _classify(customer_steps.get(key, []), settings)
        movements += customer_movements
        adjustments += customer_adjustments
        statuses = {s.status for s in subscriptions.values() if (s.data_source, s.customer_external_id) == key}
        if "past_due" in statuses:
            status = "Past Due"
        elif "active" in statuses:
            status = "Active"
        elif "cancelled" in statuses:
            status = "Cancelled"
        customers[key] = CustomerState(key[0], key[1], mrr, status)
    return Result(movements, adjustments, subscriptions, customers)
