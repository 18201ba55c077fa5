"""The Dagster code location: the asset graph reads files → checks → staging → marts."""

from __future__ import annotations

import duckdb
from dagster import AssetKey

from orchestration.definitions import defs
from orchestration.resources import OpenMRRWarehouse
from tests.helpers import SCENARIOS_DIR


def test_every_raw_file_flows_through_checks_and_staging_into_the_marts():
    graph = defs.resolve_asset_graph()
    keys = set(graph.get_all_asset_keys())
    for file in ("customers", "invoices", "line_items", "plans"):
        raw = AssetKey(["raw", file])
        assert raw in keys
        assert any(check.asset_key == raw and check.name == "expectations" for check in graph.asset_check_keys)
        assert AssetKey(["source", file]) in graph.get(raw).child_keys
    upstream_of_movements = graph.upstream_key_iterator(AssetKey(["analytics", "mrr_activities"]))
    assert AssetKey(["raw", "line_items"]) in set(upstream_of_movements)
    groups = {graph.get(k).group_name for k in keys}
    assert {"ingest", "quality", "staging", "intermediate", "marts"} <= groups
    orphans = [k for k in keys if not graph.get(k).parent_keys and not graph.get(k).child_keys]
    assert orphans == []


def test_the_refresh_job_builds_scenario_02_in_process(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    resource = OpenMRRWarehouse(data_dir=str(SCENARIOS_DIR / "02-lifecycle" / "data"), warehouse=str(warehouse))
    result = defs.resolve_job_def("refresh").execute_in_process(resources={"openmrr": resource})
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert checks and all(check.passed for check in checks)
    con = duckdb.connect(str(warehouse))
    assert con.execute("select sum(mrr) from analytics.customers").fetchone()[0] == 400
