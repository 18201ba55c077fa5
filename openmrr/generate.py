"""Synthetic billing data: a realistic data folder for demos, tests and benchmarks.

Customers are simulated one at a time and their rows streamed straight to CSV writers, so
memory stays flat at any size. The same options and seed always give the same bytes.
"""

from __future__ import annotations

import calendar
import csv
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TextIO

import yaml

from openmrr.contract import FILES_BY_NAME
from openmrr.errors import ConfigError


@dataclass(frozen=True)
class GeneratorOptions:
    customers: int
    seed: int = 0
    start: str = "2022-01-01"
    months: int = 24


@dataclass(frozen=True)
class SourceProfile:
    name: str
    currency: str
    weight: float
    tax_rate: float  # tax included in amounts
    cancellation_style: str  # how this billing system reports cancellations


SOURCES = (
    SourceProfile("stripe_us", "USD", 0.55, 0.0, "cancellations_file"),
    SourceProfile("stripe_eu", "EUR", 0.30, 0.20, "line_item"),
    SourceProfile("chargebee_uk", "GBP", 0.15, 0.20, "subscription_event"),
)
# (plan key, name, interval_count, interval_unit, price per seat per interval)
PLANS = (
    ("starter_weekly", "Starter Weekly", 7, "day", 9),
    ("bronze_monthly", "Bronze Monthly", 1, "month", 29),
    ("silver_monthly", "Silver Monthly", 1, "month", 59),
    ("gold_monthly", "Gold Monthly", 1, "month", 99),
    ("silver_quarterly", "Silver Quarterly", 3, "month", 159),
    ("gold_quarterly", "Gold Quarterly", 3, "month", 269),
    ("silver_annual", "Silver Annual", 1, "year", 590),
    ("gold_annual", "Gold Annual", 12, "month", 990),
)
TIERS = {"starter": 0, "bronze": 1, "silver": 2, "gold": 3}
COUNTRIES = {"USD": ("US", "CA"), "EUR": ("DE", "FR", "NL", "ES"), "GBP": ("GB", "IE")}
US_STATES = ("CA", "NY", "TX", "WA", "MA", "IL")
TAGS = ("enterprise", "smb", "partner", "vip", "trial-converted")
CHANNELS = ("organic", "paid", "referral", "partner")
WORDS = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Tyrell", "Cyberdyne",
         "Soylent", "Aperture", "Massive", "Dynamic", "Oscorp", "Wonka")
SUFFIXES = ("Inc", "GmbH", "Ltd", "LLC", "SA", "BV", "Labs", "Group")


def add_months(day: date, months: int) -> date:
    """Calendar month arithmetic, clamping to the month's last day (as the spec's full period does)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def period_end(start: date, count: int, unit: str) -> date:
    if unit == "day":
        return start + timedelta(days=count)
    return add_months(start, count * (12 if unit == "year" else 1))


def _neighbour_plan(plan: tuple, up: bool) -> tuple:
    """The next plan up (or down) in tier with the same billing interval, or the same plan."""
    same_interval = sorted((p for p in PLANS if p[2:4] == plan[2:4]), key=lambda p: TIERS[p[0].split("_")[0]])
    position = same_interval.index(plan) + (1 if up else -1)
    return same_interval[position] if 0 <= position < len(same_interval) else plan


def money(value: float) -> str:
    return f"{value:.2f}"


class _Writers:
    """One CSV writer per (source, file), opened on first use, with the contract's columns."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.handles: dict[tuple[str, str], tuple[TextIO, Any]] = {}
        self.counts: dict[str, int] = {}

    def row(self, source: str, file: str, values: dict[str, Any]) -> None:
        key = (source, file)
        if key not in self.handles:
            folder = self.out_dir / source if source else self.out_dir
            folder.mkdir(parents=True, exist_ok=True)
            handle = (folder / f"{file}.csv").open("w", newline="", encoding="utf-8")
            columns = FILES_BY_NAME[file].column_names
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="raise", lineterminator="\n")
            writer.writeheader()
            self.handles[key] = (handle, writer)
        self.handles[key][1].writerow(values)
        label = f"{source}/{file}.csv" if source else f"{file}.csv"
        self.counts[label] = self.counts.get(label, 0) + 1

    def close(self) -> None:
        for handle, _ in self.handles.values():
            handle.close()


class _CustomerSimulator:
    """Simulates one customer's billing life and streams its rows."""

    def __init__(self, options: GeneratorOptions, writers: _Writers) -> None:
        self.random = random.Random(options.seed)
        self.writers = writers
        self.first_day = date.fromisoformat(options.start)
        self.end = add_months(self.first_day, options.months)
        self.invoice_number = 0
        self.line_number = 0
        self.event_number = 0

    def _invoice(self, source: SourceProfile, customer: str, day: date) -> str:
        self.invoice_number += 1
        invoice = f"inv_{self.invoice_number:09d}"
        self.writers.row(source.name, "invoices", {
            "external_id": invoice, "customer_external_id": customer, "date": day.isoformat(),
            "due_date": (day + timedelta(days=14)).isoformat(), "currency": source.currency,
            "status": "paid", "collection_method": "automatic",
        })
        return invoice

    def _payments(self, source: SourceProfile, invoice: str, day: date, total: float) -> None:
        rng = self.random
        if total <= 0:
            return
        if rng.random() < 0.04:
            self.writers.row(source.name, "transactions", {
                "invoice_external_id": invoice, "type": "payment", "result": "failed", "date": day.isoformat(),
                "amount": money(total), "external_id": f"{invoice}_f",
            })
            day += timedelta(days=1)
        self.writers.row(source.name, "transactions", {
            "invoice_external_id": invoice, "type": "payment", "result": "successful", "date": day.isoformat(),
            "amount": money(total), "external_id": f"{invoice}_p", "transaction_fees": money(total * 0.029 + 0.3),
        })
        if rng.random() < 0.01:
            self.writers.row(source.name, "transactions", {
                "invoice_external_id": invoice, "type": "refund", "result": "successful",
                "date": (day + timedelta(days=3)).isoformat(), "amount": money(total / 2),
                "external_id": f"{invoice}_r",
            })

    def _item(self, source: SourceProfile, invoice: str, subscription: str, plan: tuple, start: date, end: date,
              amount: float, quantity: int, **extra: Any) -> float:
        self.line_number += 1
        tax = round(amount * source.tax_rate / (1 + source.tax_rate), 2) if source.tax_rate and amount > 0 else 0.0
        row = {
            "invoice_external_id": invoice, "type": "subscription", "amount": money(amount),
            "external_id": f"li_{self.line_number:010d}", "subscription_external_id": subscription,
            "plan_external_id": plan[0], "service_period_start": start.isoformat(),
            "service_period_end": end.isoformat(), "prorated": "false", "quantity": quantity,
            "tax_amount": money(tax) if tax else "",
        }
        row.update(extra)
        self.writers.row(source.name, "line_items", row)
        return amount

    def simulate(self, number: int) -> None:
        rng = self.random
        source = rng.choices(SOURCES, weights=[s.weight for s in SOURCES])[0]
        customer = f"cus_{number:08d}"
        country = rng.choice(COUNTRIES[source.currency])
        company = f"{rng.choice(WORDS)} {rng.choice(WORDS)} {rng.choice(SUFFIXES)}"
        email = f"billing+{number}@{company.split()[0].lower()}{number % 997}.example.com"
        span_days = (self.end - self.first_day).days
        signup = self.first_day + timedelta(days=int(span_days * rng.random() ** 1.3))
        self.writers.row(source.name, "customers", {
            "external_id": customer, "company": company, "name": company, "email": email, "country": country,
            "state": rng.choice(US_STATES) if country == "US" else "", "city": "", "zip": "",
            "lead_created_at": (signup - timedelta(days=rng.randint(3, 60))).isoformat(),
            "free_trial_started_at": (signup - timedelta(days=14)).isoformat() if rng.random() < 0.4 else "",
            "lead_status": "",
        })
        self._extras(source, customer, email, number)
        if rng.random() < 0.08:
            return  # a lead who never subscribed
        self._subscription_life(source, customer, signup, f"sub_{number:08d}_a")
        if rng.random() < 0.1:  # a second subscription bought later
            second = signup + timedelta(days=rng.randint(10, 200))
            if second < self.end:
                self._subscription_life(source, customer, second, f"sub_{number:08d}_b")

    def _extras(self, source: SourceProfile, customer: str, email: str, number: int) -> None:
        rng = self.random
        if rng.random() < 0.5:
            self.writers.row(source.name, "contacts", {
                "customer_external_id": customer, "first_name": "Alex", "last_name": f"Doe{number}",
                "title": rng.choice(("CFO", "CEO", "Head of Finance", "")), "email": email,
                "linkedin": f"https://linkedin.com/in/alex-doe-{number}" if rng.random() < 0.3 else "",
            })
        if rng.random() < 0.3:
            for tag in rng.sample(TAGS, rng.randint(1, 2)):
                self.writers.row("", "tags", {"source": source.name, "customer_external_id": customer, "tag": tag})
        if rng.random() < 0.3:
            self.writers.row("", "custom_attributes", {
                "source": source.name, "customer_external_id": customer, "key": "channel", "type": "String",
                "value": rng.choice(CHANNELS),
            })
            self.writers.row("", "custom_attributes", {
                "source": source.name, "customer_external_id": customer, "key": "employees", "type": "Integer",
                "value": rng.randint(1, 5000),
            })
        if rng.random() < 0.005:
            # The same company also bought through another billing system: merged into this one.
            other = next(s for s in SOURCES if s.name != source.name)
            duplicate = f"dup_{number:08d}"
            self.writers.row(other.name, "customers", {
                "external_id": duplicate, "company": "(duplicate)", "name": "", "email": email, "country": "",
                "state": "", "city": "", "zip": "", "lead_created_at": "", "free_trial_started_at": "",
                "lead_status": "",
            })
            invoice = self._invoice(other, duplicate, self.first_day + timedelta(days=rng.randint(0, 300)))
            self.line_number += 1
            self.writers.row(other.name, "line_items", {
                "invoice_external_id": invoice, "type": "one_time", "amount": "49.00",
                "external_id": f"li_{self.line_number:010d}", "description": "Onboarding",
            })
            self.writers.row("", "customer_merges", {
                "from_source": other.name, "from_external_id": duplicate, "into_source": source.name,
                "into_external_id": customer,
            })

    def _subscription_life(self, source: SourceProfile, customer: str, start: date, subscription: str) -> None:
        rng = self.random
        plan = rng.choice(PLANS)
        seats = rng.choice((1, 1, 1, 2, 3, 5, 10))
        discount = rng.random() < 0.1
        day = start
        revived = False
        while day < self.end:
            count, unit = plan[2], plan[3]
            end = period_end(day, count, unit)
            amount = plan[4] * seats * (0.8 if discount else 1.0)
            invoice = self._invoice(source, customer, day)
            extra: dict[str, Any] = {"transaction_fees": money(amount * 0.029 + 0.3)}
            if discount:
                extra |= {"discount_amount": money(plan[4] * seats * 0.2), "discount_code": "LAUNCH20"}
            total = self._item(source, invoice, subscription, plan, day, end, amount, seats, **extra)
            if rng.random() < 0.05:  # a one-time fee on the same invoice
                self.line_number += 1
                self.writers.row(source.name, "line_items", {
                    "invoice_external_id": invoice, "type": "one_time", "amount": "25.00",
                    "external_id": f"li_{self.line_number:010d}", "description": "Extra support hours",
                })
                total += 25.0
            self._payments(source, invoice, day, total)
            # a mid-period seat change, prorated for the rest of the period
            if unit != "day" and rng.random() < 0.06:
                middle = day + timedelta(days=max(1, (end - day).days // 2))
                if middle < min(end, self.end):
                    added = rng.choice((1, 2, -1)) if seats > 1 else 1
                    style = rng.choice(("differential", "differential", "full", "differential_mrr"))
                    share = (end - middle).days / (end - day).days
                    if style == "full":
                        change_amount, change_quantity = plan[4] * (seats + added) * share, seats + added
                    else:
                        change_amount = plan[4] * added * share
                        change_quantity = added if style == "differential" else seats + added
                    change_invoice = self._invoice(source, customer, middle)
                    self._item(source, change_invoice, subscription, plan, middle, end, round(change_amount, 2),
                               change_quantity, prorated="true", proration_type=style)
                    self._payments(source, change_invoice, middle, max(change_amount, 0))
                    seats = max(1, seats + added)
            # cancellation, with an occasional comeback
            churn_chance = 0.04 if unit != "year" and count < 12 else 0.2
            if rng.random() < churn_chance:
                # a customer cancels in the days before the renewal it does not want; one whose period runs
                # past the history's end cancels after it, so is still a subscriber at as_of (clamping that
                # date to the last day piled every such cancellation into the history's last days)
                cancelled = max(end - timedelta(days=rng.randint(0, 5)), day + timedelta(days=1))
                if cancelled < self.end:
                    self._cancel(source, customer, subscription, plan, cancelled, invoice, end)
                if revived or rng.random() > 0.2:
                    return
                revived = True
                day = end + timedelta(days=rng.randint(30, 180))
                plan = rng.choice(PLANS)
                continue
            # upgrades and downgrades at renewal
            roll = rng.random()
            if roll < 0.09:
                plan = _neighbour_plan(plan, up=roll < 0.06)
            day = end

    def _cancel(self, source: SourceProfile, customer: str, subscription: str, plan: tuple, cancelled: date,
                invoice: str, end: date) -> None:
        if source.cancellation_style == "cancellations_file":
            self.writers.row(source.name, "cancellations", {
                "subscription_external_id": subscription, "customer_external_id": customer,
                "cancelled_at": cancelled.isoformat(),
            })
        elif source.cancellation_style == "subscription_event":
            self.event_number += 1
            self.writers.row(source.name, "subscription_events", {
                "customer_external_id": customer, "subscription_external_id": subscription,
                "external_id": f"ev_{self.event_number:09d}", "event_type": "subscription_cancelled",
                "event_date": cancelled.isoformat(), "effective_date": cancelled.isoformat(),
            })
        else:
            self.line_number += 1
            self.writers.row(source.name, "line_items", {
                "invoice_external_id": invoice, "type": "subscription", "amount": "0",
                "external_id": f"li_{self.line_number:010d}", "subscription_external_id": subscription,
                "plan_external_id": plan[0], "service_period_start": cancelled.isoformat(),
                "service_period_end": max(end, cancelled + timedelta(days=1)).isoformat(),
                "prorated": "true", "quantity": 1, "cancelled_at": cancelled.isoformat(),
            })


def _write_reference_files(options: GeneratorOptions, writers: _Writers) -> None:
    rng = random.Random(options.seed + 1)
    for source in SOURCES:
        for key, name, count, unit, _ in PLANS:
            writers.row(source.name, "plans", {
                "external_id": key, "name": name, "interval_count": count, "interval_unit": unit,
            })
    first = date.fromisoformat(options.start)
    last = add_months(first, options.months)
    rates = {"EUR": 1.08, "GBP": 1.27}
    day = first - timedelta(days=400)  # rates for reactivations and leads before the window too
    while day <= last:
        for currency in rates:
            rates[currency] *= 1 + rng.gauss(0, 0.003)
            writers.row("", "currency_rates", {
                "date": day.isoformat(), "from_currency": currency, "to_currency": "USD",
                "rate": f"{rates[currency]:.6f}",
            })
        day += timedelta(days=1)


# inputs.md: dates lie in the years 1970-2199; the generator writes exchange rates from 400 days and leads
# from 74 days before --start, so a history from FIRST_START up to LAST_DAY stays valid
FIRST_START = date(1972, 1, 1)
LAST_DAY = date(2199, 12, 31)


def check_history_fits(start: str, months: int) -> None:
    """ConfigError (exit 2) naming the flags when the history would hold dates validation rejects."""
    first = date.fromisoformat(start)
    if not FIRST_START <= first <= LAST_DAY or add_months(first, months) - timedelta(days=1) > LAST_DAY:
        raise ConfigError(f"--start {start} --months {months}: the generated history must lie between"
                          f" {FIRST_START} and {LAST_DAY} (inputs.md accepts the years 1970-2199)")


def check_out_folder(out_dir: Path, force: bool) -> None:
    """ConfigError (exit 2) when --out holds anything and --force was not given: generating writes over
    same-named files and leaves the others, which would mix two data sets into one folder."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: --out is a file, not a folder")
    if not force and out_dir.is_dir() and any(out_dir.iterdir()):
        raise ConfigError(f"{out_dir}: --out folder is not empty (add --force to write into it anyway)")


def generate_data_folder(options: GeneratorOptions, out_dir: Path,
                         on_progress: Callable[[int], None] = lambda n: None) -> dict[str, int]:
    """Write the data folder; return rows written per file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    writers = _Writers(out_dir)
    try:
        _write_reference_files(options, writers)
        simulator = _CustomerSimulator(options, writers)
        for number in range(1, options.customers + 1):
            simulator.simulate(number)
            if number % 1000 == 0:
                on_progress(1000)
        on_progress(options.customers % 1000)
    finally:
        writers.close()
    last_day = simulator.end - timedelta(days=1)
    settings = {"account_currency": "USD", "as_of": f"{last_day.isoformat()}T23:59:59Z"}
    (out_dir / "openmrr.yml").write_text(yaml.safe_dump(settings, sort_keys=False))
    return writers.counts
