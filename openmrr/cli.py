"""The `openmrr` command. User mistakes end with a one-paragraph message and an exit code:
0 success, 1 data rejected, 2 usage or configuration error. `--verbose` shows tracebacks.

Everything is printed through `openmrr.terminal`'s consoles: names, paths, values and other systems'
answers are data there, never markup or terminal control (our own colours come from `styled`)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TimeElapsedColumn
from rich.table import Table

from openmrr.errors import OpenMRRError, storage_error
from openmrr.quality import FileReport
from openmrr.terminal import DataColumn, DataConsole, styled

app = typer.Typer(
    help="OpenMRR: subscription analytics (MRR, movements, customers, metrics) from billing exports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = DataConsole(stderr=True)
out = DataConsole()
state = {"verbose": False}


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks and dbt details.")) -> None:
    state["verbose"] = verbose


def _guarded(action: Callable[[], Any], writes: Path | None = None) -> Any:
    """Run a command body; turn our errors into a message and exit code, never a traceback.

    A failure of the machine rather than of our code (no permission, a read-only file system, a full disk;
    an OSError or DuckDB's IOException anywhere in the cause chain) is mapped here, once for every command,
    to a StorageError naming the path; `writes` is the path the command writes, named when the system
    did not say which file failed."""
    try:
        return action()
    except OpenMRRError as error:
        _fail(error)
    except Exception as error:
        known = storage_error(error, writes)
        if known is not None:
            _fail(known)
        if state["verbose"]:  # a bug of ours, not the user's: short by default
            console.print_exception()
        else:
            console.print(styled(("internal error:", "bold red"), f" {type(error).__name__}: {error}\n"
                                 "Run again with --verbose for the traceback, and please report it."))
        raise typer.Exit(70) from None
    except KeyboardInterrupt:
        console.print(styled(("interrupted", "yellow"),
                             ": the warehouse keeps every batch already committed; run again to resume"))
        raise typer.Exit(130) from None


def _fail(error: OpenMRRError) -> NoReturn:
    """Print a user's or the machine's error (its text as plain text: it may quote input values) and exit
    with its code."""
    if state["verbose"]:
        console.print_exception()
    console.print(styled(("error:", "bold red"), f" {error}"), soft_wrap=True)
    raise typer.Exit(error.exit_code) from None


def _progress() -> tuple[Any, Any]:
    """A progress display and the pipeline callbacks that drive it: bars on a terminal, else a few plain
    lines (steps, their counts and durations), which a log file can show."""
    if not console.is_terminal:
        from openmrr.progress_lines import ProgressLines

        lines = ProgressLines(write=lambda text: console.print(text, soft_wrap=True))
        return _Closing(lines, lines.finish), lines.callbacks()
    return _progress_bars()


class _Closing:
    """`with` support for a progress display, and `finish` (the last step's closing line, or its bar
    completed) once the run returns."""

    def __init__(self, display: Any, finish: Callable[[], None]) -> None:
        self.display, self.finish = display, finish

    def __enter__(self) -> Any:
        if hasattr(self.display, "__enter__"):
            self.display.__enter__()
        return self.display

    def __exit__(self, *exc_info: Any) -> None:
        if exc_info[0] is None:
            self.finish()
        if hasattr(self.display, "__exit__"):
            self.display.__exit__(*exc_info)


def _progress_bars() -> tuple[_Closing, Any]:
    """A rich progress display and the pipeline callbacks that drive it."""
    from openmrr.pipeline import Progress as Callbacks

    display = Progress(
        SpinnerColumn(), DataColumn("{task.description}", style="bold"), BarColumn(), MofNCompleteColumn(),
        DataColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=console, transient=False,
    )
    tasks: dict[str, Any] = {}

    def finish() -> None:
        """Steps whose successor started are done: their count becomes their total, their clock stops."""
        for task in tasks.values():
            display.update(task, total=display.tasks[task].completed)

    def on_step(step: str) -> None:
        finish()
        tasks[step] = display.add_task(step, total=None, detail="")

    def on_file(document: Any) -> None:
        display.update(tasks["ingest"], advance=1, detail=document.label)

    def on_node(event: Any) -> None:
        if event.kind == "started":
            display.update(tasks["build"], detail=event.unique_id.split(".")[-1])
        else:
            display.update(tasks["build"], advance=1, detail=event.unique_id.split(".")[-1])

    return _Closing(display, finish), Callbacks(on_step=on_step, on_file=on_file, on_node=on_node)


def print_reports(reports: list[FileReport]) -> None:
    table = Table(title="Import report", title_justify="left")
    for column in ("file", "rows read", "loaded", "quarantined", "top rules"):
        table.add_column(column, justify="right" if column in ("rows read", "loaded", "quarantined") else "left")
    for report in reports:
        rules = report.rules_text(3)
        style = "red" if report.rows_quarantined else None
        table.add_row(report.label, f"{report.rows_read:,}", f"{report.rows_loaded:,}",
                      f"{report.rows_quarantined:,}", rules, style=style)
    out.print(table)


def print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        console.print(styled(("warning:", "yellow"), f" {warning}"), soft_wrap=True)


@app.command()
def run(
    data: Path = typer.Option(..., "--data", help="Data folder: one sub-folder per data source."),
    warehouse: Path = typer.Option(..., "--warehouse", help="DuckDB file to build (created if missing)."),
    config: Path | None = typer.Option(None, "--config", help="Settings file (default: DATA/openmrr.yml)."),
) -> None:
    """Ingest and validate the data folder, then build every dataset into the warehouse."""
    def body() -> None:
        from orchestration.refresh import refresh

        display, callbacks = _progress()
        with display:
            result = refresh(data, warehouse, config, callbacks, verbose=state["verbose"])
        print_warnings(result.warnings)
        print_reports(result.reports)
        summary = result.summary
        assert summary is not None
        table = Table(title=f"MRR summary at {result.settings.effective_as_of():%Y-%m-%d %H:%M} UTC",
                      title_justify="left")
        table.add_column("measure")
        table.add_column("value", justify="right")
        table.add_row("MRR", f"{summary.mrr:,.2f} {summary.account_currency}")
        table.add_row("ARR", f"{summary.mrr * 12:,.2f} {summary.account_currency}")
        table.add_row("subscribers", f"{summary.customers:,}")
        for kind, (count, total) in summary.movements.items():
            table.add_row(f"{kind} movements", f"{count:,} ({total:,.2f})")
        table.add_row("quarantined rows", f"{summary.quarantined_rows:,}")
        out.print(table)
        if summary.build:
            out.print(f"Build: {summary.build}", soft_wrap=True)
        out.print(f"Warehouse: {warehouse}  (Dagster run {result.run_id})", soft_wrap=True)

    _guarded(body, writes=warehouse)


@app.command()
def validate(
    data: Path = typer.Option(..., "--data", help="Data folder to check."),
    config: Path | None = typer.Option(None, "--config", help="Settings file (default: DATA/openmrr.yml)."),
    report_file: Path | None = typer.Option(None, "--report", help="Write every quarantined row to this CSV"
                                            " file (file, line, column, value, rule, message)."),
) -> None:
    """Check the data folder and print the report and the first quarantined rows; writes nothing but
    --report."""
    from openmrr import pipeline
    from openmrr.quality import enforce_threshold

    def body() -> None:
        result = pipeline.validate_only(data, config, report_file=report_file)
        print_warnings(result.warnings)
        print_reports(result.reports)
        print_quarantined(result.quarantined, sum(r.rows_quarantined for r in result.reports), report_file)
        enforce_threshold(result.reports, result.settings.max_bad_row_share)
        out.print(styled(("valid", "green"), ": every file is within max_bad_row_share"), soft_wrap=True)

    _guarded(body, writes=report_file)


def print_quarantined(rows: list[Any], total: int, report_file: Path | None) -> None:
    """The first quarantined rows, one a line (plain text: they quote input values), and where the rest are."""
    if not rows:
        return
    where = f"all {total:,} in {report_file}" if report_file else "all of them: --report FILE"
    out.print(f"First quarantined rows ({len(rows)} of {total:,}; {where}):", soft_wrap=True)
    for row in rows:
        out.print(f"  {row.describe()}", soft_wrap=True)


def _start_day(value: str) -> str:
    """--start as a calendar day YYYY-MM-DD; anything else is a usage error naming the flag (exit 2)."""
    import re
    from datetime import date

    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            date.fromisoformat(value)
            return value
    except ValueError:
        pass
    raise typer.BadParameter(f"'{value}' is not a calendar day in the form YYYY-MM-DD (for example 2022-01-01)")


@app.command()
def generate(
    customers: int = typer.Option(..., "--customers", min=1, help="Number of customers."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same files."),
    out_dir: Path = typer.Option(..., "--out", help="Folder to write (a data folder)."),
    start: str = typer.Option("2022-01-01", "--start", callback=_start_day,
                              help="First day of the generated history (YYYY-MM-DD)."),
    months: int = typer.Option(24, "--months", min=1, max=240, help="Months of history."),
    force: bool = typer.Option(False, "--force", help="Write into a folder that already holds files."),
) -> None:
    """Write a realistic synthetic data folder (several sources, currencies and every input file)."""
    from openmrr.generate import GeneratorOptions, check_history_fits, check_out_folder, generate_data_folder

    def body() -> None:
        check_history_fits(start, months)
        check_out_folder(out_dir, force)
        display = Progress(DataColumn("generate", style="bold"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                           console=console, disable=not console.is_terminal)
        with display:
            task = display.add_task("customers", total=customers)
            counts = generate_data_folder(
                GeneratorOptions(customers=customers, seed=seed, start=start, months=months), out_dir,
                on_progress=lambda n: display.update(task, advance=n),
            )
        table = Table(title=f"Generated {out_dir}", title_justify="left")
        table.add_column("file")
        table.add_column("rows", justify="right")
        for name, rows in sorted(counts.items()):
            table.add_row(name, f"{rows:,}")
        out.print(table)

    _guarded(body, writes=out_dir)


@app.command()
def explain(
    customer: str = typer.Option(..., "--customer", help="External id of the customer (any merged member)."),
    source: str | None = typer.Option(None, "--source", help="Data source, when the id exists in several."),
    warehouse: Path = typer.Option(..., "--warehouse", envvar="OPENMRR_WAREHOUSE", help="The built warehouse."),
) -> None:
    """A customer's MRR movements in order, each with the input rows and arithmetic behind it."""
    from openmrr.explain import explain_customer

    def body() -> None:
        movements = explain_customer(warehouse, customer, source)
        if not movements:
            out.print(f"customer {customer} has no MRR movements")
        for movement in movements:
            out.print(styled(
                (movement.date, "bold"),
                f"  {movement.type:<12} {movement.mrr_movement:>+12,.2f} {movement.account_currency}"
                f"  → MRR {movement.mrr_after:,.2f}  ",
                (f"{movement.subscription}: {movement.description}", "dim"),
            ), soft_wrap=True)
            out.print(f"    from {movement.source}", soft_wrap=True)
            for line in movement.arithmetic:
                out.print(f"    {line}", soft_wrap=True)

    _guarded(body)


@app.command()
def report(
    warehouse: Path = typer.Option(..., "--warehouse", envvar="OPENMRR_WAREHOUSE", help="The built warehouse."),
    out_dir: Path = typer.Option(Path("build/report"), "--out", help="Folder for index.html and the PNGs."),
) -> None:
    """Charts: MRR and ARR, movements by type, customers and churn, top movers, FX impact."""
    from openmrr.report import write_report

    def body() -> None:
        page = write_report(warehouse, out_dir)
        out.print(f"Report: {page}", soft_wrap=True)

    _guarded(body, writes=out_dir)


@app.command()
def ui(
    data: Path = typer.Option(Path("seeds/demo"), "--data", help="Data folder the refresh job reads."),
    warehouse: Path = typer.Option(Path("build/demo.duckdb"), "--warehouse", help="Warehouse it builds."),
    port: int = typer.Option(3000, "--port", help="Port on 127.0.0.1."),
    dagster_home: Path = typer.Option(Path("build/dagster"), "--dagster-home", envvar="DAGSTER_HOME",
                                      help="Where Dagster keeps run history."),
    destinations: Path | None = typer.Option(None, "--destinations", envvar="OPENMRR_DESTINATIONS",
                                             help="destinations.yml: an asset and schedule per destination"
                                                  " (default: ./destinations.yml when it exists)."),
) -> None:
    """Start the Dagster UI (lineage, runs, checks, deliveries) on 127.0.0.1; Ctrl-C stops it and everything
    it started."""
    import os

    from openmrr.paths import PROJECT_ROOT
    from openmrr.serving import run_process_group

    dagster_home = _guarded(lambda: _prepared_dagster_home(dagster_home.resolve()))
    environment = {**os.environ, "OPENMRR_DATA_DIR": str(data.resolve()),
                   "OPENMRR_WAREHOUSE": str(warehouse.resolve()), "DAGSTER_HOME": str(dagster_home)}
    if destinations is None and Path("destinations.yml").exists():
        destinations = Path("destinations.yml")
    if destinations is not None:
        environment["OPENMRR_DESTINATIONS"] = str(destinations.resolve())
    command = [str(Path(sys.executable).parent / "dagster"), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"),
               "-h", "127.0.0.1", "-p", str(port)]
    out.print(f"Dagster UI on http://127.0.0.1:{port} (Ctrl-C to stop)")
    returncode = _guarded(lambda: run_process_group(command, cwd=PROJECT_ROOT, env=environment))
    if returncode is None:
        out.print("Dagster UI stopped")
    raise typer.Exit(returncode or 0)


def _prepared_dagster_home(home: Path) -> Path:
    """DAGSTER_HOME with our dagster.yaml (telemetry off) and no run a killed process left STARTED."""
    from dagster import DagsterInstance

    from orchestration.instance import fail_orphaned_runs, prepare_dagster_home

    prepare_dagster_home(home)
    with DagsterInstance.from_config(str(home)) as instance:
        for run_id in fail_orphaned_runs(instance):
            console.print(f"run {run_id}: its process is gone; marked failed")
    return home


@app.command()
def docs(
    warehouse: Path = typer.Option(Path("build/demo.duckdb"), "--warehouse", help="A built warehouse."),
    serve: bool = typer.Option(False, "--serve", help="Serve the site on 127.0.0.1 after building it."),
    port: int = typer.Option(8080, "--port", help="Port for --serve."),
) -> None:
    """Build the dbt docs site (models, columns, tests, lineage) from the warehouse."""
    from openmrr.paths import DBT_PROJECT_DIR
    from openmrr.settings import Settings
    from openmrr.transform import run_dbt

    def body() -> None:
        if not warehouse.exists():
            from openmrr.errors import ConfigError

            raise ConfigError(f"{warehouse}: warehouse not found (run `openmrr run` first)")
        run_dbt("docs generate", warehouse, Settings().dbt_vars())
        out.print(f"dbt docs: {DBT_PROJECT_DIR / 'target' / 'index.html'}", soft_wrap=True)
        if serve:
            from openmrr.serving import serve_directory

            out.print(f"Serving dbt docs on http://127.0.0.1:{port} (Ctrl-C to stop)")
            serve_directory(DBT_PROJECT_DIR / "target", port)
            out.print("dbt docs server stopped")

    _guarded(body, writes=warehouse)


def entry() -> None:  # pragma: no cover - console script shim
    sys.exit(app())


destinations_app = typer.Typer(
    help="Send datasets to the destinations declared in destinations.yml (object storage, e-mail, ...).",
    no_args_is_help=True,
)
app.add_typer(destinations_app, name="destinations")
DESTINATIONS_FILE_HELP = "The destinations file (default: ./destinations.yml, or $OPENMRR_DESTINATIONS)."


def _destinations_file(file: Path, check_env: bool = False):
    from openmrr.destinations.config import load_destinations

    return load_destinations(file, check_env=check_env)


@destinations_app.command("list")
def destinations_list(
    file: Path = typer.Option(Path("destinations.yml"), "--file", envvar="OPENMRR_DESTINATIONS",
                              help=DESTINATIONS_FILE_HELP),
) -> None:
    """Every destination: type, datasets, schedule, and whether its environment variables are set."""
    import os

    def body() -> None:
        destinations = _destinations_file(file)
        table = Table(title=f"Destinations in {file}", title_justify="left")
        for column in ("name", "type", "datasets", "schedule (UTC)", "ready"):
            table.add_column(column)
        for destination in destinations.destinations:
            missing = [name for name in destination.env_names().values() if not os.environ.get(name)]
            table.add_row(destination.name, destination.type, ", ".join(destination.datasets),
                          destination.schedule or "-",
                          styled((f"unset: {', '.join(missing)}", "red")) if missing else "yes")
        out.print(table)

    _guarded(body)


@destinations_app.command("validate")
def destinations_validate(
    file: Path = typer.Option(Path("destinations.yml"), "--file", envvar="OPENMRR_DESTINATIONS",
                              help=DESTINATIONS_FILE_HELP),
) -> None:
    """Check the file: types, settings, datasets, cron schedules and the environment variables named."""
    def body() -> None:
        destinations = _destinations_file(file, check_env=True)
        out.print(styled(("valid", "green"), f": {len(destinations.destinations)} destination(s) in {file}"),
                  soft_wrap=True)

    _guarded(body)


@destinations_app.command("test")
def destinations_test(
    name: str = typer.Argument(..., help="The destination's name in destinations.yml."),
    file: Path = typer.Option(Path("destinations.yml"), "--file", envvar="OPENMRR_DESTINATIONS",
                              help=DESTINATIONS_FILE_HELP),
) -> None:
    """Reach the destination with its settings and credentials, delivering nothing."""
    from openmrr.destinations.service import check_connection

    def body() -> None:
        out.print(styled(("ok", "green"), f": {name}: {check_connection(_destinations_file(file).get(name))}"),
                  soft_wrap=True)

    _guarded(body)


@destinations_app.command("send")
def destinations_send(
    name: str = typer.Argument(..., help="The destination's name in destinations.yml."),
    warehouse: Path = typer.Option(..., "--warehouse", envvar="OPENMRR_WAREHOUSE", help="The built warehouse."),
    dataset: list[str] = typer.Option([], "--dataset", help="Only this dataset (repeatable)."),
    force: bool = typer.Option(False, "--force", help="Send again what was already delivered for this run."),
    file: Path = typer.Option(Path("destinations.yml"), "--file", envvar="OPENMRR_DESTINATIONS",
                              help=DESTINATIONS_FILE_HELP),
) -> None:
    """Deliver the warehouse's latest run to one destination and record it in delivery.deliveries."""
    from openmrr.destinations.service import send

    def body() -> None:
        run, deliveries = send(_destinations_file(file).get(name), warehouse, datasets=dataset, force=force)
        table = Table(title=f"{name}: run {run.run_id}", title_justify="left")
        for column in ("dataset", "status", "rows", "bytes", "where"):
            table.add_column(column, justify="right" if column in ("rows", "bytes") else "left", overflow="fold")
        for delivery in deliveries:
            where = delivery.location or delivery.error or ""
            table.add_row(delivery.dataset, delivery.status, f"{delivery.rows:,}", f"{delivery.bytes:,}", where)
        out.print(table)

    _guarded(body, writes=warehouse)


@destinations_app.command("log")
def destinations_log(
    warehouse: Path = typer.Option(..., "--warehouse", envvar="OPENMRR_WAREHOUSE", help="The built warehouse."),
    destination: str | None = typer.Option(None, "--destination", help="Only this destination."),
    limit: int = typer.Option(20, "--limit", min=1, help="Newest rows to show."),
) -> None:
    """The latest deliveries (table delivery.deliveries): what went where, when, and how it ended."""
    from openmrr.destinations import log
    from openmrr.destinations.service import open_warehouse

    def body() -> None:
        con = open_warehouse(warehouse)
        try:
            rows = log.history(con, destination, limit)
        finally:
            con.close()
        table = Table(title=f"Deliveries in {warehouse}", title_justify="left")
        for column in ("finished (UTC)", "destination", "dataset", "run", "status", "rows", "bytes", "sha256 / error"):
            table.add_column(column, justify="right" if column in ("rows", "bytes") else "left", overflow="fold")
        for row in rows:
            table.add_row(f"{row['finished_at']:%Y-%m-%d %H:%M:%S}", row["destination"], row["dataset"],
                          row["run_id"], row["status"], f"{row['rows']:,}", f"{row['bytes']:,}",
                          (row["checksum"] or "")[:16] if row["status"] != "failed" else row["error"] or "")
        out.print(table)

    _guarded(body)
