"""One raw asset per input file, with its Great Expectations suite as a blocking check."""

from collections.abc import Iterator

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    ResourceParam,
    multi_asset,
)

from openmrr.contract import INPUT_FILES
from openmrr.errors import DataRejected
from openmrr.pipeline import Progress, connect, load_and_check
from openmrr.quality import enforce_threshold
from openmrr.transform import flush_to_disk
from orchestration.assets.reference import reference_file_key, reference_lists_checked_by
from orchestration.failures import reported_as_failure
from orchestration.resources import OpenMRRWarehouse


def raw_asset_key(file: str) -> AssetKey:
    return AssetKey(["raw", file])


def quarantine_asset_key(file: str) -> AssetKey:
    return AssetKey(["quarantine", file])


REPORTS_KEY = AssetKey(["source", "import_reports"])


def _reference_file_keys(file: str) -> list[AssetKey]:
    """The reference-list files (seeds/reference/*.csv) a file's rules read: the files themselves, not the
    dbt seed tables, so the seeds build in the same dbt invocation as the models."""
    return [reference_file_key(name) for name in reference_lists_checked_by(file)]


_SPECS = [
    *(AssetSpec(raw_asset_key(f.name), group_name="ingest", description=f"{f.filename}, every row verbatim.",
                skippable=True) for f in INPUT_FILES),
    *(AssetSpec(quarantine_asset_key(f.name), group_name="quality",
                deps=[raw_asset_key(f.name), *_reference_file_keys(f.name)],
                description=f"Rows of {f.filename} that broke a rule, with the rule and message.", skippable=True)
      for f in INPUT_FILES),
    AssetSpec(REPORTS_KEY, group_name="quality", description="Per-file import report.", skippable=True,
              deps=[quarantine_asset_key(f.name) for f in INPUT_FILES]),
]
_CHECKS = [
    AssetCheckSpec("expectations", asset=raw_asset_key(f.name), blocking=True,
                   description=f"expectations/{f.name}.json: quarantined share within max_bad_row_share")
    for f in INPUT_FILES
]


def _threshold_failure(reports: list, max_bad_row_share: float, con) -> DataRejected | None:
    """enforce_threshold's error (quoting the first quarantined rows, read while `con` is open), raised
    only after the step has reported every asset and check."""
    try:
        enforce_threshold(reports, max_bad_row_share, con)
    except DataRejected as error:
        return error
    return None


@multi_asset(specs=_SPECS, check_specs=_CHECKS, name="ingest_and_validate", can_subset=False)
def ingest_and_validate(context: AssetExecutionContext, openmrr: OpenMRRWarehouse,
                        progress: ResourceParam[Progress]) -> Iterator:
    """Load changed files as new batches and rebuild the quarantine tables."""
    with reported_as_failure(openmrr.warehouse_path):
        yield from _ingest_and_validate(context, openmrr, progress)


def _ingest_and_validate(context: AssetExecutionContext, openmrr: OpenMRRWarehouse, progress: Progress) -> Iterator:
    settings = openmrr.settings()
    openmrr.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    con = connect(openmrr.warehouse_path)

    def on_step(step: str) -> None:
        context.log.info(f"step: {step}")
        progress.on_step(step)

    def on_file(document) -> None:
        context.log.info(f"loading {document.label}")
        progress.on_file(document)

    def on_warning(warning: str) -> None:
        context.log.warning(warning)
        progress.on_warning(warning)

    try:
        _, reports = load_and_check(con, openmrr.data_path, settings, Progress(on_step, on_file, on_warning=on_warning))
        rejected = _threshold_failure(reports, settings.max_bad_row_share, con)
    finally:
        con.close()
    flush_to_disk(openmrr.warehouse_path)
    for spec in INPUT_FILES:
        mine = [r for r in reports if r.file.split("#")[-1] in (spec.filename, spec.name)]
        rows = sum(r.rows_read for r in mine)
        bad = sum(r.rows_quarantined for r in mine)
        yield MaterializeResult(asset_key=raw_asset_key(spec.name), metadata={"rows": rows})
        yield MaterializeResult(asset_key=quarantine_asset_key(spec.name), metadata={"rows": bad})
        worst = max((r.bad_share for r in mine), default=0.0)
        yield AssetCheckResult(
            asset_key=raw_asset_key(spec.name), check_name="expectations",
            passed=worst <= settings.max_bad_row_share, severity=AssetCheckSeverity.ERROR,
            metadata={"rows_read": rows, "rows_quarantined": bad, "worst_bad_share": worst,
                      "top_rules": ", ".join(r.rules_text(3) for r in mine if r.top_rules)},
        )
    yield MaterializeResult(asset_key=REPORTS_KEY, metadata={"files": len(reports)})
    # the failed checks block the models; this names the files, rules and first rows for the person reading
    if rejected is not None:
        raise rejected
