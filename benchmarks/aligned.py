"""Month-aligned subscription history, written for OpenMRR and for the peers it is measured against.

    python -m benchmarks.aligned --customers 20000 --seed 42 --out benchmarks/data/aligned-20000

One in-memory history per customer (every service period starts on the 1st, monthly or annual
plans, upgrades, downgrades, churn, reactivation, one currency USD) is streamed to three inputs at
once, so the three tools are given the same business:

  openmrr/                      an OpenMRR data folder (docs/spec/inputs.md): source `billing`
  playbook/subscription_periods.csv
                                dbt-labs/mrr-playbook's seed: one row per stretch of constant MRR, one
                                stretch per customer at a time, end date empty while still open
  saas-metrics/billing.csv      saas-metrics' `customer_id, period, revenue` tape: one row per
                                customer-month with the month's MRR (its own daily spreading of an
                                annual invoice is revenue recognition, not MRR, so annual plans are
                                given as their monthly MRR)

Why the alignment: the peers only know calendar months. With every change on the 1st, OpenMRR's
month-end MRR (`analytics.customer_mrr_monthly`) and the peers' monthly MRR describe the same moments.
The MRR of a line item follows mrr-rules §2: round_cents(amount / 12) for an annual plan.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TextIO

import yaml

from openmrr.generate import GeneratorOptions, _Writers, add_months

SOURCE = "billing"
CURRENCY = "USD"
# (plan id, name, interval_count, interval_unit, price per seat per interval, tier)
PLANS = (
    ("basic_monthly", "Basic Monthly", 1, "month", Decimal("29"), 0),
    ("pro_monthly", "Pro Monthly", 1, "month", Decimal("79"), 1),
    ("business_monthly", "Business Monthly", 1, "month", Decimal("199"), 2),
    ("basic_annual", "Basic Annual", 1, "year", Decimal("290"), 0),
    ("pro_annual", "Pro Annual", 1, "year", Decimal("790"), 1),
    ("business_annual", "Business Annual", 1, "year", Decimal("1990"), 2),
)
PLAN_MONTHS = {"month": 1, "year": 12}
CENT = Decimal("0.01")


START = "2023-01-01"  # the first month of every aligned history the benchmarks write


@dataclass(frozen=True)
class AlignedFolders:
    """Where each tool's input lies inside the output folder."""

    root: Path

    @property
    def openmrr(self) -> Path:
        return self.root / "openmrr"

    @property
    def playbook_seed(self) -> Path:
        return self.root / "playbook" / "subscription_periods.csv"

    @property
    def saas_metrics_tape(self) -> Path:
        return self.root / "saas-metrics" / "billing.csv"

    @property
    def manifest(self) -> Path:
        return self.root / "history.json"

    def options(self) -> GeneratorOptions:
        return GeneratorOptions(**json.loads(self.manifest.read_text())["options"])

    def openmrr_rows(self) -> int:
        """Rows of the OpenMRR data folder's files, from the manifest."""
        rows = json.loads(self.manifest.read_text())["rows"]
        return sum(count for name, count in rows.items() if name.startswith(f"{SOURCE}/"))


def monthly_mrr(plan: tuple, seats: int) -> Decimal:
    """mrr-rules §2 for a plan billed `seats` times its price: round_cents(amount / months), half away from 0."""
    amount = plan[4] * seats
    return (amount / PLAN_MONTHS[plan[3]]).quantize(CENT, rounding=ROUND_HALF_UP)


def _neighbour(plan: tuple, step: int) -> tuple:
    """The plan `step` tiers away with the same interval, or the same plan at the end of the range."""
    same_interval = [p for p in PLANS if p[3] == plan[3]]
    position = min(max(plan[5] + step, 0), len(same_interval) - 1)
    return same_interval[position]


def _switched_interval(plan: tuple) -> tuple:
    """The same tier billed at the other interval (monthly <-> annual)."""
    return next(p for p in PLANS if p[5] == plan[5] and p[3] != plan[3])


class _PeerFiles:
    """The playbook seed and the saas-metrics tape, written row by row."""

    def __init__(self, folders: AlignedFolders) -> None:
        self.handles: list[TextIO] = []
        self.periods = self._writer(folders.playbook_seed,
                                    ("subscription_id", "customer_id", "start_date", "end_date", "monthly_amount"))
        self.tape = self._writer(folders.saas_metrics_tape, ("customer_id", "period", "revenue", "segment"))
        self.stretches = 0

    def _writer(self, path: Path, header: tuple[str, ...]) -> csv.writer:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("w", newline="", encoding="utf-8")
        self.handles.append(handle)
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        return writer

    def stretch(self, customer: str, start: date, end: date | None, mrr: Decimal) -> None:
        self.stretches += 1
        self.periods.writerow((self.stretches, customer, start.isoformat(), end.isoformat() if end else "", mrr))

    def month(self, customer: str, month: date, mrr: Decimal, plan: tuple) -> None:
        self.tape.writerow((customer, month.isoformat(), mrr, plan[1].split()[0]))

    def close(self) -> None:
        for handle in self.handles:
            handle.close()


class _AlignedSimulator:
    """One customer at a time: one subscription live at a time, every change on the 1st of a month."""

    def __init__(self, options: GeneratorOptions, writers: _Writers, peers: _PeerFiles) -> None:
        self.random = random.Random(options.seed)
        self.first = date.fromisoformat(options.start)
        self.months = options.months
        self.writers = writers
        self.peers = peers
        self.invoices = 0

    def month_start(self, index: int) -> date:
        return add_months(self.first, index)

    def simulate(self, number: int) -> None:
        rng = self.random
        customer = f"cus_{number:08d}"
        signup = min(int(self.months * rng.random() ** 1.5), self.months - 1)
        self.writers.row(SOURCE, "customers", {
            "external_id": customer, "company": f"Company {number}", "email": f"billing+{number}@example.com",
            "country": "US", "lead_created_at": (self.month_start(signup) - timedelta(days=10)).isoformat(),
        })
        if rng.random() < 0.05:
            return  # a lead who never subscribed
        subscription, month = 1, signup
        while month is not None:
            month = self._subscription(customer, f"sub_{number:08d}_{subscription}", month)
            subscription += 1

    def _subscription(self, customer: str, subscription: str, month: int) -> int | None:
        """Bill one subscription from `month` until it churns or the history ends; the month it comes back
        in as a new subscription, or None."""
        rng = self.random
        plan = rng.choice(PLANS)
        seats = rng.choice((1, 1, 1, 2, 3, 5))
        stretch_start, stretch_mrr = month, monthly_mrr(plan, seats)
        while True:
            mrr = monthly_mrr(plan, seats)
            if mrr != stretch_mrr:
                self.peers.stretch(customer, self.month_start(stretch_start), self.month_start(month), stretch_mrr)
                stretch_start, stretch_mrr = month, mrr
            renewal = month + PLAN_MONTHS[plan[3]]
            self._invoice(customer, subscription, plan, seats, month, renewal)
            for covered in range(month, min(renewal, self.months)):
                self.peers.month(customer, self.month_start(covered), mrr, plan)
            if renewal >= self.months:  # still live when the history ends: an open stretch
                self.peers.stretch(customer, self.month_start(stretch_start), None, stretch_mrr)
                return None
            month = renewal
            if rng.random() < (0.03 if plan[3] == "month" else 0.15):
                self.peers.stretch(customer, self.month_start(stretch_start), self.month_start(month), stretch_mrr)
                self.writers.row(SOURCE, "cancellations", {
                    "subscription_external_id": subscription, "customer_external_id": customer,
                    "cancelled_at": self.month_start(month).isoformat(),
                })
                comeback = month + rng.randint(1, 6)
                return comeback if rng.random() < 0.3 and comeback < self.months else None
            roll = rng.random()
            if roll < 0.04:
                plan = _neighbour(plan, 1)
            elif roll < 0.07:
                seats += rng.randint(1, 3)
            elif roll < 0.09:
                plan = _neighbour(plan, -1)
            elif roll < 0.11:
                seats = max(1, seats - 1)
            elif roll < 0.12:
                plan = _switched_interval(plan)

    def _invoice(self, customer: str, subscription: str, plan: tuple, seats: int, month: int, renewal: int) -> None:
        self.invoices += 1
        invoice, day = f"inv_{self.invoices:09d}", self.month_start(month)
        self.writers.row(SOURCE, "invoices", {
            "external_id": invoice, "customer_external_id": customer, "date": day.isoformat(),
            "due_date": day.isoformat(), "currency": CURRENCY, "status": "paid",
        })
        self.writers.row(SOURCE, "line_items", {
            "invoice_external_id": invoice, "type": "subscription", "amount": plan[4] * seats,
            "external_id": f"li_{self.invoices:09d}", "subscription_external_id": subscription,
            "plan_external_id": plan[0], "service_period_start": day.isoformat(),
            "service_period_end": self.month_start(renewal).isoformat(), "prorated": "false", "quantity": seats,
        })


def generate_aligned(options: GeneratorOptions, out: Path) -> AlignedFolders:
    """Write the three inputs of one history into `out` (the same options and seed give the same bytes)."""
    folders = AlignedFolders(out)
    folders.openmrr.mkdir(parents=True, exist_ok=True)
    writers, peers = _Writers(folders.openmrr), _PeerFiles(folders)
    try:
        for plan_id, name, count, unit, _, _ in PLANS:
            writers.row(SOURCE, "plans", {"external_id": plan_id, "name": name, "interval_count": count,
                                          "interval_unit": unit})
        simulator = _AlignedSimulator(options, writers, peers)
        for number in range(1, options.customers + 1):
            simulator.simulate(number)
    finally:
        writers.close()
        peers.close()
    as_of = f"{simulator.month_start(options.months) - timedelta(days=1)}T23:59:59Z"
    (folders.openmrr / "openmrr.yml").write_text(yaml.safe_dump({"account_currency": CURRENCY, "as_of": as_of},
                                                                sort_keys=False))
    folders.manifest.write_text(json.dumps({"options": asdict(options), "as_of": as_of,
                                            "rows": writers.counts | {"playbook/subscription_periods.csv":
                                                                      peers.stretches}}, indent=1) + "\n")
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, required=True)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--start", default=START, help="first month (a 1st of the month)")
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--out", type=Path, required=True)
    arguments = parser.parse_args()
    if date.fromisoformat(arguments.start).day != 1:
        parser.error("--start must be the 1st of a month")
    folders = generate_aligned(GeneratorOptions(arguments.customers, arguments.seed, arguments.start, arguments.months),
                               arguments.out)
    print(f"wrote {folders.root}")


if __name__ == "__main__":
    main()
