"""The dbt project as assets: every model its own asset; its grain tests and the bridge identities as checks."""

import json
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetObservation,
    AssetSpec,
    MetadataValue,
    Output,
    ResourceParam,
)
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, dbt_assets
from dagster_dbt.asset_utils import get_subset_selection_for_context
from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage

from openmrr.pipeline import Progress, plan_for, record
from openmrr.transform import NodeEvent, build_target_path, flush_to_disk, stream_build
from orchestration.assets.ingest import REPORTS_KEY, quarantine_asset_key, raw_asset_key
from orchestration.assets.reference import reference_file_key
from orchestration.failures import reported_as_failure
from orchestration.project import MANIFEST_PATH
from orchestration.resources import OpenMRRWarehouse

# The dbt tests that are Dagster asset checks: each table's grain, and the singular tests
# (dbt_project/tests: the bridge identities). The others (not_null, accepted_values, relationships)
# run in the same build and fail it just the same, named in the error, without a check each in the
# run's event log: about 90 checks there cost some 270 events, several seconds a run (docs/scale.md).
CHECKED_TESTS = frozenset({"unique", "unique_combination"})


def is_asset_check(test: Mapping[str, Any]) -> bool:
    """A singular test, or a generic test of CHECKED_TESTS."""
    generic = (test.get("test_metadata") or {}).get("name")
    return generic is None or generic in CHECKED_TESTS


class OpenMRRTranslator(DagsterDbtTranslator):
    """Keys read schema/table; sources link to the ingest assets; seeds to their CSV files; groups are
    dbt's layers."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: Any) -> AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "seed":
            return spec.merge_attributes(deps=[reference_file_key(props["name"])])
        return spec

    def get_asset_check_spec(self, asset_spec: AssetSpec, manifest: Mapping[str, Any], unique_id: str,
                             project: Any) -> AssetCheckSpec | None:
        """Only the grain tests and the bridge identities are asset checks (see CHECKED_TESTS)."""
        if not is_asset_check(manifest["nodes"].get(unique_id, {})):
            return None
        return super().get_asset_check_spec(asset_spec, manifest, unique_id, project)

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            name = dbt_resource_props["name"]
            return {
                "raw": raw_asset_key(name),
                "quarantine": quarantine_asset_key(name),
                "reports": REPORTS_KEY,
            }[dbt_resource_props["source_name"]]
        return AssetKey([dbt_resource_props["schema"], dbt_resource_props.get("alias") or dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        folders = dbt_resource_props.get("fqn", [])[1:-1]
        return folders[0] if folders else "dbt"


translator = OpenMRRTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


@cache
def manifest() -> Mapping[str, Any]:
    """The manifest the assets were defined from (read when a build first asks, not when the code location loads)."""
    return json.loads(MANIFEST_PATH.read_text())


@cache
def model_keys() -> frozenset[AssetKey]:
    """Every model's asset: only a build of all of them may be incremental and record its state."""
    return frozenset(translator.get_asset_key(node) for node in manifest()["nodes"].values()
                     if node["resource_type"] == "model")


@dbt_assets(manifest=MANIFEST_PATH, dagster_dbt_translator=translator)
def openmrr_dbt_models(context: AssetExecutionContext, openmrr: OpenMRRWarehouse,
                       progress: ResourceParam[Progress]) -> Iterator:
    """dbt build of the selected models with the account settings as vars, in this process
    (openmrr.transform.stream_build): incremental when every model builds and the last build allows it; a
    selection of some models rebuilds them in full."""
    with reported_as_failure(openmrr.warehouse_path):
        yield from _build(context, openmrr, progress)


def _build(context: AssetExecutionContext, openmrr: OpenMRRWarehouse, progress: Progress) -> Iterator:
    settings = openmrr.settings()
    plan = plan_for(openmrr.warehouse_path, settings) if context.selected_asset_keys >= model_keys() else None
    if plan is not None:
        context.log.info(plan.describe())
    dbt_vars = {**settings.dbt_vars(), **(plan.dbt_vars() if plan else {})}
    progress.on_step("build")
    built: set[AssetKey] = set()
    nodes = manifest()["nodes"]
    for raw_event in stream_build(openmrr.warehouse_path, dbt_vars,
                                  [*(plan.dbt_flags() if plan else []), *_selection(context)]):
        node = nodes.get(raw_event["data"].get("node_info", {}).get("unique_id"), {})
        if node.get("resource_type") == "test" and not is_asset_check(node):
            continue  # its failure fails the build, which names it
        for event in DbtCoreCliEventMessage(raw_event=raw_event, event_history_metadata={}).to_default_asset_events(
                manifest=manifest(), dagster_dbt_translator=translator, context=context,
                target_path=build_target_path(openmrr.warehouse_path)):
            key = _event_asset_key(context, event)
            if key is not None:
                built.add(key)
                progress.on_node(NodeEvent("finished", key.to_user_string()))
            yield event
    if plan is not None:
        record(openmrr.warehouse_path, plan)
    flush_to_disk(openmrr.warehouse_path)
    # the charts, on metrics_monthly
    if METRICS_MONTHLY in built:
        yield AssetObservation(asset_key=METRICS_MONTHLY, metadata=chart_metadata(openmrr))


def _selection(context: AssetExecutionContext) -> list[str]:
    """dbt's --select for the assets and checks this run selected (every node when all are)."""
    selection, indirect_selection = get_subset_selection_for_context(
        context=context, manifest=manifest(), select="fqn:*", exclude=None, selector=None,
        dagster_dbt_translator=translator, current_dbt_indirect_selection_env=None)
    return [*selection, *(["--indirect-selection", indirect_selection] if indirect_selection else [])]


METRICS_MONTHLY = AssetKey(["analytics", "metrics_monthly"])


def _event_asset_key(context: AssetExecutionContext, event: object) -> AssetKey | None:
    """The asset an event of the dbt stream is about: a model's or seed's Output names it only through its
    output; test results (checks, observations) carry it."""
    if isinstance(event, Output):
        return context.asset_key_for_output(event.output_name)
    return getattr(event, "asset_key", None)


def chart_metadata(openmrr: OpenMRRWarehouse) -> dict[str, MetadataValue]:
    """The report's charts as markdown images, so the UI shows them on metrics_monthly."""
    import base64

    from openmrr.report import render_charts

    charts, _ = render_charts(openmrr.warehouse_path, openmrr.warehouse_path.parent / "report")
    return {
        chart.name: MetadataValue.md(
            f"![{chart.title}](data:image/png;base64,{base64.b64encode(chart.path.read_bytes()).decode()})"
        )
        for chart in charts
    }
