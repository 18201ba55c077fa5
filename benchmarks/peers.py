"""OpenMRR against its peers on the same month-aligned history (issue 12, targets 1 and 2).

    python -m benchmarks.peers --customers 2000 20000 100000 --playbook PATH/TO/mrr-playbook

For each size, back to back on one machine, each in its own process and on a fresh warehouse:
  openmrr       `openmrr run --data D/openmrr --warehouse FRESH.duckdb` (a fresh DAGSTER_HOME too)
  playbook      dbt-labs/mrr-playbook's `dbt seed && dbt run` on dbt-duckdb (benchmarks/playbook.py says
                which edits it gets); skipped without --playbook
  saas-metrics  `saas-metrics report D/saas-metrics/billing.csv` in benchmarks/.peers-venv (made on first
                use, see benchmarks/saas_metrics_peer.py); skipped with --no-saas-metrics
Then every tool's MRR per customer and month, and the history's own (as the generator wrote it), is
compared with OpenMRR's (`analytics.customer_mrr_monthly`): they must be equal to the cent in every
customer-month (months with MRR, within the history), and the
command fails (exit 1) listing the first differences otherwise. Before the sizes, the fixed cost
(target 1): `openmrr run` on the two-customer scenario folder against the imports it cannot avoid.
A dated section with the commands, versions and which targets are met is appended to
benchmarks/results.md. Numbers are reported, never asserted by the test suite.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from benchmarks import playbook, saas_metrics_peer
from benchmarks.aligned import START, AlignedFolders, generate_aligned
from benchmarks.run import machine_facts
from openmrr.generate import GeneratorOptions, add_months

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TWO_CUSTOMERS = ROOT / "tests" / "scenarios" / "02-lifecycle" / "data"
IMPORTS = {"import openmrr": "import openmrr", "import dagster": "import dagster",
           "import dbt.cli.main": "import dbt.cli.main",
           "all three in one process": "import openmrr, dagster, dbt.cli.main"}
FIXED_COST_MARGIN_SECONDS = 3.0
# issue 12 target 2: OpenMRR faster than the playbook at every size; within these ratios of saas-metrics
SAAS_METRICS_RATIO = {20_000: 3.0, 100_000: 2.0}
SHOWN_DIFFERENCES = 10


class BenchmarkError(Exception):
    """A tool failed, or the tools disagree."""


@dataclass
class SizeResult:
    customers: int
    input_rows: int
    load_before: float
    seconds: dict[str, float] = field(default_factory=dict)
    compared: dict[str, int] = field(default_factory=dict)  # peer -> customer-months compared
    differences: dict[str, list[tuple]] = field(default_factory=dict)


def openmrr_command(data: Path, warehouse: Path) -> list[str]:
    return [str(BIN / "openmrr"), "run", "--data", str(data), "--warehouse", str(warehouse)]


def run_openmrr(data: Path, work: Path) -> tuple[float, Path]:
    """Seconds of the CLI run on a fresh warehouse and DAGSTER_HOME; the warehouse."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    warehouse = work / "openmrr.duckdb"
    env = {**os.environ, "DAGSTER_HOME": str(work / "dagster")}
    started = time.perf_counter()
    completed = subprocess.run(openmrr_command(data, warehouse), env=env, capture_output=True, text=True,
                               check=False)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise BenchmarkError(f"openmrr run failed on {data}:\n{completed.stdout[-3000:]}{completed.stderr[-3000:]}")
    return seconds, warehouse


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


# Each tool's MRR per (customer external id, first day of the month), non-zero months of the history only.
OPENMRR_MRR = """
    select customers.external_ids as customer_id, monthly.month, monthly.mrr
    from openmrr.analytics.customer_mrr_monthly as monthly
    inner join openmrr.analytics.customers as customers on customers.customer_id = monthly.customer_id"""
PLAYBOOK_MRR = """
    select customer_id, cast(date_month as date) as month, cast(mrr as decimal(18, 2)) as mrr
    from playbook.main.mrr"""
# the history itself: the saas-metrics tape is the generator's MRR per customer-month, as written
HISTORY_MRR = """
    select customer_id, cast(period as date) as month, cast(revenue as decimal(18, 2)) as mrr
    from read_csv({path}, header = true, all_varchar = true)"""
# customers.csv: one column per month end, the customer's MRR in it
SAAS_METRICS_MRR = """
    select customer_id, cast(date_trunc('month', cast(month_end as date)) as date) as month,
        cast(mrr as decimal(18, 2)) as mrr
    from (unpivot (select * from read_csv({path}, header = true, all_varchar = true))
          on columns(* exclude (customer_id)) into name month_end value mrr)"""


def compare(sources: dict[str, str], history: GeneratorOptions) -> tuple[dict[str, int], dict[str, list[tuple]]]:
    """Each peer's MRR per customer-month against OpenMRR's: customer-months compared, and the first
    differences (customer, month, openmrr, peer) per peer. `sources` maps a tool to an attach statement
    (or '') and its query."""
    con = duckdb.connect()
    first = date.fromisoformat(history.start)
    end = add_months(first, history.months)
    for tool, (attach, query) in sources.items():
        if attach:
            con.execute(attach)
        con.execute(f'create table "mrr_{tool}" as select customer_id, month, mrr from ({query})'
                    " where mrr <> 0 and month >= ? and month < ?", [first, end])
    compared, differences = {}, {}
    for tool in sources:
        if tool == "openmrr":
            continue
        joined = f"""
            from mrr_openmrr as ours full outer join "mrr_{tool}" as peer
                on ours.customer_id = peer.customer_id and ours.month = peer.month
            where ours.mrr is distinct from peer.mrr"""
        compared[tool] = con.execute(f'select count(*) from (select customer_id, month from mrr_openmrr union'
                                     f' select customer_id, month from "mrr_{tool}")').fetchone()[0]
        differences[tool] = con.execute(
            "select coalesce(ours.customer_id, peer.customer_id) as customer_id,"
            " coalesce(ours.month, peer.month) as month, ours.mrr, peer.mrr" + joined
            + f" order by 1, 2 limit {SHOWN_DIFFERENCES}").fetchall()
        count = con.execute("select count(*)" + joined).fetchone()[0]
        if count > SHOWN_DIFFERENCES:
            differences[tool].append((f"... {count - SHOWN_DIFFERENCES} more", None, None, None))
    return compared, differences


def measure_size(customers: int, seed: int, cache: Path, work: Path, checkout: Path | None,
                 saas_python: Path | None, materialized: str) -> SizeResult:
    folders = AlignedFolders(cache / f"aligned-{customers}-seed{seed}")
    if not folders.manifest.exists():
        print(f"generating {folders.root}", flush=True)
        shutil.rmtree(folders.root, ignore_errors=True)
        generate_aligned(GeneratorOptions(customers, seed, START), folders.root)
    history = folders.options()
    rows = folders.openmrr_rows()
    result = SizeResult(customers, rows, os.getloadavg()[0])
    seconds, warehouse = run_openmrr(folders.openmrr, work / "openmrr")
    result.seconds["openmrr"] = seconds
    sources = {"openmrr": (f"attach {_quoted(warehouse)} as openmrr (read_only)", OPENMRR_MRR),
               "history": ("", HISTORY_MRR.format(path=_quoted(folders.saas_metrics_tape)))}
    print(f"{customers:>9,} customers  openmrr      {seconds:7.1f} s", flush=True)
    if checkout is not None:
        pb_warehouse = work / "playbook.duckdb"
        pb_warehouse.unlink(missing_ok=True)
        spine = (history.start, add_months(date.fromisoformat(history.start), history.months).isoformat())
        project = playbook.prepare_playbook(checkout, work / "playbook", folders.playbook_seed, spine, pb_warehouse,
                                            materialized)
        result.seconds["playbook"] = playbook.run_playbook(project)
        sources["playbook"] = (f"attach {_quoted(pb_warehouse)} as playbook (read_only)", PLAYBOOK_MRR)
        print(f"{customers:>9,} customers  playbook     {result.seconds['playbook']:7.1f} s", flush=True)
    if saas_python is not None:
        out = work / "saas-metrics"
        result.seconds["saas-metrics"] = saas_metrics_peer.run_report(saas_python, folders.saas_metrics_tape, out)
        sources["saas-metrics"] = ("", SAAS_METRICS_MRR.format(path=_quoted(out / "customers.csv")))
        print(f"{customers:>9,} customers  saas-metrics {result.seconds['saas-metrics']:7.1f} s", flush=True)
    result.compared, result.differences = compare(sources, history)
    return result


def _median_seconds(run: Callable[[], None], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def fixed_cost(work: Path, repeats: int) -> dict[str, float]:
    """Median seconds of each import (a fresh interpreter each) and of `openmrr run` on two customers."""
    numbers = {label: _median_seconds(lambda code=code: subprocess.run([sys.executable, "-c", code], check=True),
                                      repeats)
               for label, code in IMPORTS.items()}

    def two_customer_run() -> None:
        run_openmrr(TWO_CUSTOMERS, work / "fixed-cost")

    numbers["openmrr run"] = _median_seconds(two_customer_run, repeats)
    return numbers


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _openmrr_commit() -> str:
    completed = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                               text=True, check=False)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=False).stdout.strip()
    commit = completed.stdout.strip() or "unknown commit"
    return f"at {commit}{' with uncommitted changes' if dirty else ''}"


def verdict(met: bool) -> str:
    return "**met**" if met else "**not met**"


def results_section(sizes: list[SizeResult], fixed: dict[str, float] | None, arguments: argparse.Namespace,
                    peers: dict[str, str]) -> str:
    facts = machine_facts()
    sizes_flag = " ".join(str(size.customers) for size in sizes)
    lines = [f"## Peers: OpenMRR, mrr-playbook and saas-metrics — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "",
             f"Machine: {facts['cores']} cores, {facts['memory']}, Python {facts['python']}, {facts['platform']}."
             " Shared with other agents' work while measured (the 1-minute load average before each size is"
             " in the table): timings are noisy, ratios measured back to back are the figures to read.",
             "", "Commands:",
             f"- `python -m benchmarks.peers --customers {sizes_flag}"
             + (" --playbook PATH" if arguments.playbook else "") + "` (this section)",
             f"- history: `python -m benchmarks.aligned --customers N --seed {arguments.seed} --out DIR` (24 months"
             " from 2023-01, month-aligned, USD; written once, cached)",
             "- openmrr: `openmrr run --data DIR/openmrr --warehouse FRESH.duckdb`, fresh DAGSTER_HOME",
             "- playbook: `dbt seed && dbt run` in a copy of the checkout with the edits of benchmarks/playbook.py"
             f" (models materialised as {arguments.playbook_materialized}s, dbt-duckdb, 2 threads, fresh file)",
             "- saas-metrics: `saas-metrics report DIR/saas-metrics/billing.csv --allow-warnings --out OUT`",
             "",
             f"Versions: OpenMRR {_openmrr_commit()} on Python {facts['python']}, dagster {_version('dagster')},"
             f" dbt-core {_version('dbt-core')}, dbt-duckdb {_version('dbt-duckdb')}, duckdb {_version('duckdb')}; "
             + "; ".join(f"{name} {description}" for name, description in peers.items()) + ".", ""]
    if fixed is not None:
        floor, run = fixed["all three in one process"], fixed["openmrr run"]
        lines += [f"### Target 1, fixed cost (median of {arguments.repeats} runs each)", "",
                  "| command | seconds |", "|---|---:|"]
        lines += [f"| `python -c \"{IMPORTS[label]}\"` | {seconds:.2f} |" for label, seconds in fixed.items()
                  if label in IMPORTS]
        lines += [f"| `openmrr run` on tests/scenarios/02-lifecycle/data (2 customers) | {run:.2f} |", "",
                  f"`openmrr run` − the three imports in one process = **{run - floor:.1f} s** (target ≤"
                  f" {FIXED_COST_MARGIN_SECONDS:.0f} s): {verdict(run - floor <= FIXED_COST_MARGIN_SECONDS)}.", ""]
    tools = ["openmrr", *(tool for tool in ("playbook", "saas-metrics") if tool in peers)]
    compared = ["history", *tools[1:]]
    lines += ["### Target 2, against the peers (seconds, each tool end to end in its own process)", "",
              "| customers | input rows | load | " + " | ".join(tools) + " | "
              + " | ".join(f"openmrr ÷ {tool}" for tool in tools[1:]) + " | customer-months equal |",
              "|---:|---:|---:|" + "---:|" * (2 * len(tools) - 1) + "---|"]
    for size in sizes:
        ratios = [f"{size.seconds['openmrr'] / size.seconds[tool]:.1f}×" for tool in tools[1:]]
        agreement = ", ".join(f"{tool}: {'all' if not size.differences[tool] else 'NO'} {size.compared[tool]:,}"
                              for tool in compared)
        lines.append(f"| {size.customers:,} | {size.input_rows:,} | {size.load_before:.1f} | "
                     + " | ".join(f"{size.seconds[tool]:.1f}" for tool in tools) + " | " + " | ".join(ratios)
                     + f" | {agreement} |")
    lines += ["", "Targets (issue 12): " + "; ".join(_target_lines(sizes, tools)) + ".", ""]
    for size in sizes:
        for tool, rows in size.differences.items():
            if rows:
                lines += [f"Differences at {size.customers:,} customers, openmrr vs {tool}"
                          " (customer, month, openmrr, peer): " + "; ".join(map(str, rows)), ""]
    return "\n".join(lines)


def _target_lines(sizes: list[SizeResult], tools: list[str]) -> list[str]:
    out = []
    for size in sizes:
        seconds = size.seconds
        if "playbook" in tools:
            faster = seconds["openmrr"] < seconds["playbook"]
            out.append(f"{size.customers:,}: faster than the playbook {verdict(faster)}"
                       f" ({seconds['openmrr'] / seconds['playbook']:.1f}×)")
        limit = SAAS_METRICS_RATIO.get(size.customers)
        if "saas-metrics" in tools and limit:
            ratio = seconds["openmrr"] / seconds["saas-metrics"]
            out.append(f"{size.customers:,}: within {limit:.0f}× of saas-metrics {verdict(ratio <= limit)}"
                       f" ({ratio:.1f}×)")
    return out or ["no peer measured"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--playbook", type=Path, help="a checkout of dbt-labs/mrr-playbook (not modified)")
    parser.add_argument("--playbook-materialized", choices=("table", "view"), default="table",
                        help="the playbook's models as tables (default: dbt run computes them) or as its views")
    parser.add_argument("--saas-metrics-venv", type=Path, default=saas_metrics_peer.DEFAULT_VENV)
    parser.add_argument("--no-saas-metrics", action="store_true")
    parser.add_argument("--no-fixed-cost", action="store_true", help="skip target 1")
    parser.add_argument("--repeats", type=int, default=3, help="runs per fixed-cost command (the median counts)")
    parser.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / "data")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "peers")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results.md")
    arguments = parser.parse_args()
    try:
        peers: dict[str, str] = {}
        if arguments.playbook:
            peers["playbook"] = f"(dbt-labs/mrr-playbook) commit {playbook.commit_of(arguments.playbook)}"
        saas_python = None
        if not arguments.no_saas_metrics:
            saas_python = saas_metrics_peer.ensure_environment(arguments.saas_metrics_venv)
            peers["saas-metrics"] = saas_metrics_peer.describe(saas_python)
        fixed = None if arguments.no_fixed_cost else fixed_cost(arguments.work, arguments.repeats)
        if fixed:
            print(*(f"{label:>26}: {seconds:6.2f} s" for label, seconds in fixed.items()), sep="\n", flush=True)
        sizes = [measure_size(customers, arguments.seed, arguments.cache, arguments.work / str(customers),
                              arguments.playbook, saas_python, arguments.playbook_materialized)
                 for customers in arguments.customers]
    except (BenchmarkError, playbook.PlaybookError, saas_metrics_peer.SaasMetricsError) as error:
        raise SystemExit(f"error: {error}") from None
    section = results_section(sizes, fixed, arguments, peers)
    existing = arguments.out.read_text() if arguments.out.exists() else "# Benchmark results\n"
    arguments.out.write_text(existing.rstrip() + "\n\n" + section + "\n")
    print(section)
    if any(rows for size in sizes for rows in size.differences.values()):
        raise SystemExit("error: the tools disagree on monthly MRR (differences above)")


if __name__ == "__main__":
    main()
