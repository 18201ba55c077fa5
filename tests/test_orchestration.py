"""The Dagster code location: the asset graph reads files → checks → staging → marts."""

from __future__ import annotations

from pathlib import Path

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


def test_the_reference_list_files_feed_the_seed_tables_and_the_rules_that_read_them():
    graph = defs.resolve_asset_graph()
    for name in ("iso_currencies", "iso_countries", "us_states"):
        file = AssetKey(["seeds", "reference", name])
        assert graph.get(file).group_name == "reference"
        assert graph.get(AssetKey(["reference", name])).parent_keys == {file}  # the dbt seed loads the file
    children = lambda name: graph.get(AssetKey(["seeds", "reference", name])).child_keys  # noqa: E731
    assert AssetKey(["quarantine", "invoices"]) in children("iso_currencies")
    assert AssetKey(["quarantine", "currency_rates"]) in children("iso_currencies")
    assert {AssetKey(["quarantine", "customers"])} <= children("iso_countries") & children("us_states")
    assert AssetKey(["quarantine", "plans"]) not in children("iso_currencies")  # no rule of plans reads a list
    # validation reads the files, not the seed tables: nothing runs dbt before ingestion
    upstream_of_quarantine = set(graph.upstream_key_iterator(AssetKey(["quarantine", "invoices"])))
    assert not any(key.path[0] == "reference" for key in upstream_of_quarantine)


def test_the_refresh_job_builds_scenario_02_in_process(tmp_path, monkeypatch):
    import subprocess

    started = subprocess.Popen

    def no_dbt_process(command, *args, **kwargs):  # dbt runs in this process: no `dbt` process, no `dbt --version`
        program = command[0] if isinstance(command, list | tuple) else str(command).split()[0]
        assert Path(str(program)).name != "dbt", f"started {command}"
        return started(command, *args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", no_dbt_process)
    warehouse = tmp_path / "w.duckdb"
    resource = OpenMRRWarehouse(data_dir=str(SCENARIOS_DIR / "02-lifecycle" / "data"), warehouse=str(warehouse))
    result = defs.resolve_job_def("refresh").execute_in_process(resources={"openmrr": resource})
    assert result.success
    # one dbt invocation builds the seeds, models and tests, after ingestion
    assert [e.step_key for e in result.all_events if e.is_step_start] == ["ingest_and_validate", "openmrr_dbt_models"]
    seeded = {e.asset_key for e in result.get_asset_materialization_events() if e.asset_key.path[0] == "reference"}
    assert seeded == {AssetKey(["reference", name]) for name in ("iso_currencies", "iso_countries", "us_states")}
    checks = result.get_asset_check_evaluations()
    assert checks and all(check.passed for check in checks)
    con = duckdb.connect(str(warehouse))
    assert con.execute("select sum(mrr) from analytics.customers").fetchone()[0] == 400


def test_the_grain_tests_and_the_bridge_identities_are_the_asset_checks_of_the_models():
    checks = {(key.asset_key.to_user_string(), key.name) for key in defs.resolve_asset_graph().asset_check_keys}
    assert ("analytics/mrr_activities", "assert_movements_bridge_to_customer_mrr") in checks
    assert ("analytics/metrics_monthly", "assert_period_mrr_bridge") in checks
    assert any(name.startswith("unique_") for _, name in checks)
    assert not any(name.startswith(("not_null_", "accepted_values_", "relationships_")) for _, name in checks)
    assert ("raw/invoices", "expectations") in checks  # the input suites stay blocking checks
