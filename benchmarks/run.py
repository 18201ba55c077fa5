"""Speed and memory of OpenMRR on generated data, against the bare read of the same files.

    python -m benchmarks.run --customers 100000 [--cache benchmarks/data] [--out benchmarks/results.md]
    python -m benchmarks.run --customers 10000 100000 1000000     # the scaling curve

Each stage runs in a fresh child process, so its peak RSS is its own:
  generate   `openmrr generate` (skipped when the cached folder exists)
  floor      DuckDB reading every input CSV into tables, nothing else
  ingest     ingestion into raw tables and validation (quarantine), as `openmrr run` does it
  build      the dbt build on the ingested warehouse
  increment  one more day of invoices appended, then ingest, validation and the (incremental) dbt build
             on the built warehouse, in one process
  run        the whole `openmrr run` (the CLI, through Dagster) on a fresh warehouse
  rerun      `openmrr run` again after appending one more day of invoices (unchanged files are skipped
             and the grown files load only their appended rows; validation and the models are incremental)
Numbers are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each stage is a small program run with this interpreter; it prints one JSON line of its own numbers.
STAGES = {
    "generate": """
from pathlib import Path
from openmrr.generate import GeneratorOptions, generate_data_folder
counts = generate_data_folder(GeneratorOptions(customers={customers}, seed=1), Path({data!r}))
rows = sum(counts.values())
""",
    "floor": """
import duckdb
from pathlib import Path
con = duckdb.connect({warehouse!r})
rows = 0
for n, path in enumerate(sorted(Path({data!r}).rglob('*.csv'))):
    con.execute(f"create table t{{n}} as select * from read_csv('{{path}}', all_varchar = true, header = true)")
    rows += con.execute(f"select count(*) from t{{n}}").fetchone()[0]
""",
    "ingest": """
from pathlib import Path
from openmrr.pipeline import Progress, connect, load_and_check, resolve_settings
settings = resolve_settings(Path({data!r}), None)
con = connect({warehouse!r})
loaded, reports = load_and_check(con, Path({data!r}), settings, Progress())
rows = sum(r.rows_read for r in reports)
""",
    "build": """
from pathlib import Path
from openmrr.pipeline import build, resolve_settings
plan, result = build(Path({warehouse!r}), resolve_settings(Path({data!r}), None),
                     ["--target-path", str(Path({warehouse!r}).parent / "target")])
import duckdb
rows = duckdb.connect({warehouse!r}).execute("select count(*) from analytics.mrr_activities").fetchone()[0]
timings = sorted(((r.execution_time, r.node.unique_id) for r in result.results), reverse=True)
extra = {{"slowest": [[round(seconds, 1), node] for seconds, node in timings[:8]],
          "models_seconds": sum(t for t, n in timings if n.startswith("model.")),
          "tests_seconds": sum(t for t, n in timings if n.startswith("test.")),
          "plan": plan.describe()}}
""",
    "increment": """
import time
from pathlib import Path
from openmrr.pipeline import Progress, build, connect, load_and_check, resolve_settings
settings = resolve_settings(Path({data!r}), None)
started = time.perf_counter()
con = connect({warehouse!r})
loaded, reports = load_and_check(con, Path({data!r}), settings, Progress())
con.close()
loaded_at = time.perf_counter()
plan, result = build(Path({warehouse!r}), settings, ["--target-path", str(Path({warehouse!r}).parent / "target")])
built_at = time.perf_counter()
with connect({warehouse!r}) as con:  # dbt-duckdb still holds the file in this process
    rows = sum(r.rows_read for r in reports)
    touched = con.execute(
        "select count(distinct customer_id) from analytics_internal.int_touched_customers").fetchone()[0]
timings = sorted(((r.execution_time, r.node.unique_id) for r in result.results), reverse=True)
extra = {{"slowest": [[round(seconds, 1), node] for seconds, node in timings[:8]],
          "ingest_seconds": loaded_at - started, "build_seconds": built_at - loaded_at,
          "touched_customers": touched, "plan": plan.describe()}}
""",
    "run": """
import subprocess, sys
from pathlib import Path
import duckdb
# the command a user runs (through Dagster's in-process job); its peak RSS is reported as this stage's
subprocess.run([str(Path(sys.executable).parent / "openmrr"), "run", "--data", {data!r}, "--warehouse", {warehouse!r}],
               check=True, stdout=subprocess.DEVNULL)
rows = duckdb.connect({warehouse!r}, read_only=True).execute(
    "select sum(rows_read) from source.import_reports").fetchone()[0]
child_peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
""",
}
STAGE_ORDER = ("floor", "ingest", "build", "increment", "run", "rerun")
FOOTER = """
import json
peak_mb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, globals().get("child_peak_mb", 0))
print(json.dumps({"rows": int(rows), "peak_rss_mb": peak_mb,
                  **globals().get("extra", {})}))
"""


def run_stage(name: str, label: str | None = None, **values: object) -> dict[str, float]:
    program = "import resource\n" + STAGES[name].format(**values) + FOOTER
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True,
                               check=False)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"stage {name} failed:\n{completed.stderr[-3000:]}")
    numbers = json.loads(completed.stdout.strip().splitlines()[-1])
    numbers["seconds"] = seconds
    numbers["rows_per_second"] = numbers["rows"] / seconds if seconds else 0.0
    print(f"{label or name:>9}: {seconds:8.1f} s  {numbers['rows']:>12,} rows"
          f"  {numbers['rows_per_second']:>12,.0f} rows/s  peak {numbers['peak_rss_mb']:8.0f} MB", flush=True)
    return numbers


def _append_rows(con: object, query: str, path: Path) -> None:
    """Append a query's rows to a CSV file, without a header: the file's earlier bytes stay as they were."""
    part = path.with_name(path.name + ".part")
    con.execute(f"copy ({query}) to '{part}' (header false)")
    with path.open("ab") as target, part.open("rb") as source:
        shutil.copyfileobj(source, target)
    part.unlink()


def append_one_day(data: Path) -> None:
    """One more day of renewal invoices appended to the files: the last day's invoices and items with new
    ids, a day later (as a billing export that grows by a day)."""
    import duckdb

    con = duckdb.connect()
    for source in sorted(p for p in data.iterdir() if p.is_dir() and (p / "invoices.csv").exists()):
        invoices, items = source / "invoices.csv", source / "line_items.csv"
        con.execute(f"create or replace table inv as select * from read_csv('{invoices}', all_varchar = true)")
        con.execute(f"create or replace table li as select * from read_csv('{items}', all_varchar = true)")
        con.execute("create or replace table last_day as select max(date) as day from inv")
        con.execute("""create or replace table new_inv as select * replace (
            'next_' || external_id as external_id,
            strftime(cast(date as date) + 1, '%Y-%m-%d') as date,
            strftime(cast(due_date as date) + 1, '%Y-%m-%d') as due_date)
            from inv where date = (select day from last_day)""")
        _append_rows(con, "select * from new_inv", invoices)
        con.execute("""create or replace table new_li as select li.* replace (
            'next_' || li.invoice_external_id as invoice_external_id,
            'next_' || li.external_id as external_id)
            from li inner join new_inv on 'next_' || li.invoice_external_id = new_inv.external_id""")
        _append_rows(con, "select * from new_li", items)


def machine_facts() -> dict[str, str]:
    memory = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kb = int(meminfo.read_text().split()[1])
        memory = f"{total_kb / 1024 / 1024:.0f} GiB"
    return {"cores": str(os.cpu_count()), "memory": memory, "python": platform.python_version(),
            "platform": platform.platform()}


def write_results(path: Path, customers: int, results: dict[str, dict[str, float]],
                  stages: Sequence[str] = STAGE_ORDER) -> None:
    facts = machine_facts()
    floor = results["floor"]["seconds"] if "floor" in results else None
    stage_flag = "" if tuple(stages) == STAGE_ORDER else f" --stages {' '.join(stages)}"
    lines = [
        f"## {customers:,} customers — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {facts['cores']} cores, {facts['memory']}, Python {facts['python']}, {facts['platform']}.",
        f"Command: `python -m benchmarks.run --customers {customers}{stage_flag}`",
        "",
        "| stage | seconds | rows | rows/s | peak RSS (MB) | ÷ floor |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, numbers in results.items():
        ratio = f"{numbers['seconds'] / floor:.1f}" if floor else ""
        lines.append(
            f"| {name} | {numbers['seconds']:.1f} | {numbers['rows']:,} | {numbers['rows_per_second']:,.0f} |"
            f" {numbers['peak_rss_mb']:.0f} | {ratio} |"
        )
    build = results.get("build", {})
    if build.get("slowest"):
        lines += ["", f"dbt build: models {build['models_seconds']:.1f} s, data tests {build['tests_seconds']:.1f} s"
                  " (summed over two threads). Slowest nodes: "
                  + ", ".join(f"`{node.split('.')[-1]}` {seconds} s" for seconds, node in build["slowest"]) + "."]
    increment = results.get("increment", {})
    if increment.get("slowest"):
        lines += ["", f"increment ({increment['plan']}, {increment['touched_customers']:,} customers touched):"
                  f" ingest and validation {increment['ingest_seconds']:.1f} s,"
                  f" dbt build {increment['build_seconds']:.1f} s."
                  " Slowest nodes: "
                  + ", ".join(f"`{node.split('.')[-1]}` {seconds} s" for seconds, node in increment["slowest"]) + "."]
    lines.append("")
    existing = path.read_text() if path.exists() else "# Benchmark results\n\n"
    path.write_text(existing.rstrip() + "\n\n" + "\n".join(lines) + "\n")


def write_scaling(path: Path, runs: dict[int, dict[str, dict[str, float]]]) -> None:
    """The scaling curve: each stage's seconds per size and per thousand customers (flat = linear)."""
    stages = [name for name in STAGE_ORDER if all(name in r for r in runs.values())]
    lines = [f"## Scaling curve — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "",
             f"Command: `python -m benchmarks.run --customers {' '.join(map(str, runs))}`. Seconds, and in"
             " brackets seconds per 1,000 customers: equal brackets mean linear growth.", "",
             "| customers | " + " | ".join(stages) + " |", "|---:|" + "---:|" * len(stages)]
    for customers, results in runs.items():
        cells = [f"{results[name]['seconds']:.1f} ({results[name]['seconds'] * 1000 / customers:.2f})"
                 for name in stages]
        lines.append(f"| {customers:,} | " + " | ".join(cells) + " |")
    path.write_text(path.read_text().rstrip() + "\n\n" + "\n".join(lines) + "\n")


def plus_one_day(data: Path, work: Path) -> Path:
    """A copy of the data folder with one more day appended (made once per size)."""
    copy = work / "data-plus-one-day"
    if not copy.exists():
        shutil.copytree(data, copy)
        append_one_day(copy)
    return copy


def run_all(customers: int, cache: Path, work: Path, out: Path,
            stages: Sequence[str] = STAGE_ORDER) -> dict[str, dict[str, float]]:
    """The chosen stages at one size (each needs the ones before it that build its input); results appended to `out`."""
    data = cache / f"customers-{customers}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    results: dict[str, dict[str, float]] = {}
    if not data.exists():
        results["generate"] = run_stage("generate", customers=customers, data=str(data))
    floor_db, staged, full = work / "floor.duckdb", work / "staged.duckdb", work / "full.duckdb"
    if "floor" in stages:
        results["floor"] = run_stage("floor", data=str(data), warehouse=str(floor_db))
        floor_db.unlink()
    if "ingest" in stages or "build" in stages:
        results["ingest"] = run_stage("ingest", data=str(data), warehouse=str(staged))
    if "build" in stages or "increment" in stages:
        results["build"] = run_stage("build", data=str(data), warehouse=str(staged))
    if "increment" in stages:
        results["increment"] = run_stage("increment", data=str(plus_one_day(data, work)), warehouse=str(staged))
    staged.unlink(missing_ok=True)
    if "run" in stages or "rerun" in stages:
        results["run"] = run_stage("run", data=str(data), warehouse=str(full))
    if "rerun" in stages:
        shutil.copy(full, work / "rerun.duckdb")
        results["rerun"] = run_stage("run", label="rerun", data=str(plus_one_day(data, work)),
                                     warehouse=str(work / "rerun.duckdb"))
    shutil.rmtree(work / "data-plus-one-day", ignore_errors=True)
    write_results(out, customers, results, stages)
    if "run" in results and "floor" in results:
        print(f"(d)/(a) = {results['run']['seconds'] / results['floor']['seconds']:.1f}; written to {out}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, nargs="+", default=[10000],
                        help="one size, or several for a scaling curve")
    parser.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results.md")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "benchmarks")
    parser.add_argument("--stages", nargs="+", choices=STAGE_ORDER, default=list(STAGE_ORDER),
                        help="a subset of the stages (default: all)")
    arguments = parser.parse_args()
    runs = {customers: run_all(customers, arguments.cache, arguments.work / str(customers), arguments.out,
                               arguments.stages)
            for customers in arguments.customers}
    if len(runs) > 1:
        write_scaling(arguments.out, runs)


if __name__ == "__main__":
    main()
