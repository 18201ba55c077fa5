"""Speed and memory of OpenMRR on generated data, against the bare read of the same files.

    python -m benchmarks.run --customers 100000 [--cache benchmarks/data] [--out benchmarks/results.md]
    python -m benchmarks.run --customers 10000 100000 1000000     # the scaling curve

Each stage runs in a fresh child process (`python -m benchmarks.run --stage NAME ...`), so its peak RSS is
its own:
  generate   `openmrr generate` (skipped when the cached folder exists)
  floor      DuckDB reading every input CSV into tables, nothing else
  refresh    `orchestration.refresh.refresh` on a fresh warehouse: the Dagster job `openmrr run` runs, in
             this process; its steps are timed too (ingest with validation, build) and dbt's slowest nodes
             are read from the build's run_results.json
  increment  `refresh` again after one more day of invoices is appended (unchanged files are skipped, the
             grown files load only their appended rows; validation and the models are incremental)
  run        the whole `openmrr run` (the command line) on a fresh warehouse
  rerun      `openmrr run` again after the appended day
Numbers are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGE_ORDER = ("floor", "refresh", "increment", "run", "rerun")


def generate_stage(data: Path, warehouse: Path, customers: int) -> dict:
    from openmrr.generate import GeneratorOptions, generate_data_folder

    counts = generate_data_folder(GeneratorOptions(customers=customers, seed=1), data)
    return {"rows": sum(counts.values())}


def floor_stage(data: Path, warehouse: Path, customers: int) -> dict:
    """The least any tool must do: read every file into a table of text columns."""
    import duckdb

    con = duckdb.connect(str(warehouse))
    rows = 0
    for number, path in enumerate(sorted(data.rglob("*.csv"))):
        con.execute(f"create table t{number} as select * from read_csv(?, all_varchar = true, header = true)",
                    [str(path)])
        rows += con.execute(f"select count(*) from t{number}").fetchone()[0]
    return {"rows": rows}


def refresh_stage(data: Path, warehouse: Path, customers: int) -> dict:
    """One refresh through the Dagster job, with the time of each of its steps and dbt's slowest nodes."""
    from openmrr.pipeline import Progress
    from openmrr.transform import build_target_path
    from orchestration.refresh import refresh

    started = time.perf_counter()
    step_started: dict[str, float] = {}
    result = refresh(data, warehouse, progress=Progress(
        on_step=lambda step: step_started.setdefault(step, time.perf_counter() - started)))
    finished = time.perf_counter() - started
    build_started = step_started.get("build", finished)
    nodes = json.loads((build_target_path(warehouse) / "run_results.json").read_text())["results"]
    timings = sorted(((node["execution_time"], node["unique_id"]) for node in nodes), reverse=True)
    return {"rows": sum(report.rows_read for report in result.reports),
            "steps": {"start": step_started.get("ingest", build_started),
                      "ingest and validation": build_started - step_started.get("ingest", build_started),
                      "build": finished - build_started},
            "slowest": [[round(seconds, 1), node] for seconds, node in timings[:8]],
            "models_seconds": sum(seconds for seconds, node in timings if node.startswith("model.")),
            "tests_seconds": sum(seconds for seconds, node in timings if node.startswith("test.")),
            "plan": result.summary.build if result.summary else None}


def run_stage_command(data: Path, warehouse: Path, customers: int) -> dict:
    """`openmrr run`, the command a user types; its peak RSS is this stage's."""
    import duckdb

    subprocess.run([str(Path(sys.executable).parent / "openmrr"), "run", "--data", str(data),
                    "--warehouse", str(warehouse)], check=True, stdout=subprocess.DEVNULL)
    con = duckdb.connect(str(warehouse), read_only=True)
    rows = con.execute("select sum(rows_read) from source.import_reports").fetchone()[0]
    con.close()
    return {"rows": int(rows), "child_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


STAGES: dict[str, Callable[[Path, Path, int], dict]] = {
    "generate": generate_stage, "floor": floor_stage, "refresh": refresh_stage, "increment": refresh_stage,
    "run": run_stage_command, "rerun": run_stage_command,
}


def run_stage(name: str, data: Path, warehouse: Path, customers: int = 0, label: str | None = None) -> dict:
    """Run one stage in a child process; its numbers, with the wall-clock seconds and rows per second."""
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-m", "benchmarks.run", "--stage", name, "--data", str(data),
                                "--warehouse", str(warehouse), "--customers", str(customers)],
                               cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"stage {name} failed:\n{completed.stderr[-3000:]}")
    numbers = json.loads(completed.stdout.strip().splitlines()[-1])
    numbers["seconds"] = seconds
    numbers["rows_per_second"] = numbers["rows"] / seconds if seconds else 0.0
    print(f"{label or name:>9}: {seconds:8.1f} s  {numbers['rows']:>12,} rows"
          f"  {numbers['rows_per_second']:>12,.0f} rows/s  peak {numbers['peak_rss_mb']:8.0f} MB", flush=True)
    return numbers


def stage_main(name: str, data: Path, warehouse: Path, customers: int) -> None:
    """In the child process: run the stage and print its numbers as one JSON line."""
    numbers = STAGES[name](data, warehouse, customers)
    own_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    numbers["peak_rss_mb"] = max(own_peak, numbers.pop("child_peak_mb", 0))
    print(json.dumps(numbers))


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
    for name in ("refresh", "increment"):
        numbers = results.get(name, {})
        if numbers.get("slowest"):
            steps = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in numbers["steps"].items())
            lines += ["", f"{name} ({numbers['plan']}): {steps}; dbt models {numbers['models_seconds']:.1f} s,"
                      f" data tests {numbers['tests_seconds']:.1f} s (summed over two threads). Slowest nodes: "
                      + ", ".join(f"`{node.split('.')[-1]}` {seconds} s" for seconds, node in numbers["slowest"])
                      + "."]
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
        results["generate"] = run_stage("generate", data, work / "unused.duckdb", customers)
    floor_db, refreshed, full = work / "floor.duckdb", work / "refreshed.duckdb", work / "full.duckdb"
    if "floor" in stages:
        results["floor"] = run_stage("floor", data, floor_db)
        floor_db.unlink()
    if "refresh" in stages or "increment" in stages:
        results["refresh"] = run_stage("refresh", data, refreshed)
    if "increment" in stages:
        results["increment"] = run_stage("increment", plus_one_day(data, work), refreshed)
    refreshed.unlink(missing_ok=True)
    if "run" in stages or "rerun" in stages:
        results["run"] = run_stage("run", data, full)
    if "rerun" in stages:
        shutil.copy(full, work / "rerun.duckdb")
        results["rerun"] = run_stage("rerun", plus_one_day(data, work), work / "rerun.duckdb")
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
    parser.add_argument("--stage", choices=tuple(STAGES), help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--warehouse", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.stage:
        stage_main(arguments.stage, arguments.data, arguments.warehouse, arguments.customers[0])
        return
    runs = {customers: run_all(customers, arguments.cache, arguments.work / str(customers), arguments.out,
                               arguments.stages)
            for customers in arguments.customers}
    if len(runs) > 1:
        write_scaling(arguments.out, runs)


if __name__ == "__main__":
    main()
