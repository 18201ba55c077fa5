"""spec/scenarios: every worked scenario reproduces its expected files exactly."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pytest

from openmrr import pipeline
from orchestration.refresh import refresh
from tests.helpers import SCENARIOS_DIR

SCENARIOS = sorted(p.name for p in SCENARIOS_DIR.iterdir() if (p / "expected").is_dir())

# How each expected file is read from the warehouse, in the expected file's column order.
QUERIES = {
    "mrr_activities.csv": """
        select strftime(date, '%Y-%m-%dT%H:%M:%SZ') as date, data_source, customer_external_id,
               subscription_external_id, type, mrr_movement, mrr
        from analytics.mrr_activities""",
    "customers.csv": """
        select data_source, customer_external_id, status, mrr, arr from analytics.customers""",
    "fx_adjustments.csv": """
        select strftime(date, '%Y-%m-%dT%H:%M:%SZ') as date, data_source, customer_external_id,
               subscription_external_id, amount
        from analytics.fx_adjustments""",
}


@pytest.fixture(scope="module", params=SCENARIOS)
def scenario(request, tmp_path_factory) -> tuple[Path, duckdb.DuckDBPyConnection]:
    folder = SCENARIOS_DIR / request.param
    warehouse = tmp_path_factory.mktemp(request.param) / "warehouse.duckdb"
    refresh(folder / "data", warehouse)
    con = duckdb.connect(str(warehouse))
    yield folder, con
    con.close()


def _text(value: object) -> str:
    return "" if value is None else str(value)


def test_every_expected_file_is_reproduced_exactly(scenario):
    folder, con = scenario
    expected_files = sorted((folder / "expected").glob("*.csv"))
    assert expected_files
    for path in expected_files:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            expected = [tuple(row[c] for c in reader.fieldnames) for row in reader]
            columns = reader.fieldnames
        relation = con.execute(QUERIES[path.name])
        names = [d[0] for d in relation.description]
        assert names == columns, path.name
        actual = [tuple(_text(v) for v in row) for row in relation.fetchall()]
        assert sorted(actual) == sorted(expected), path.name


def test_movements_and_fx_adjustments_add_up_to_each_customers_mrr(scenario):
    _, con = scenario
    mismatches = con.execute("""
        with bridged as (
            select customer_id, sum(mrr_movement) as total from analytics.mrr_activities group by customer_id
            union all
            select customer_id, sum(amount) from analytics.fx_adjustments group by customer_id
        )
        select customers.customer_id, customers.mrr, coalesce(sum(bridged.total), 0)
        from analytics.customers
        left join bridged on customers.customer_id = bridged.customer_id
        group by customers.customer_id, customers.mrr
        having customers.mrr <> coalesce(sum(bridged.total), 0)
    """).fetchall()
    assert mismatches == []


def test_the_build_records_the_settings_it_ran_with(scenario):
    folder, con = scenario
    recorded, built_for, checked_at = con.execute(
        "select dbt_vars, checked_at, (select max(checked_at) from source.import_reports)"
        " from analytics_internal.int_build_settings").fetchone()
    assert built_for == checked_at
    settings = pipeline.resolve_settings(folder / "data", None)
    expected = settings.dbt_vars()
    assert json.loads(recorded) == {**expected, "as_of": json.loads(recorded)["as_of"]}
    if settings.as_of is not None:
        assert json.loads(recorded)["as_of"] == expected["as_of"]


def test_no_dataset_column_is_hugeint(scenario):
    """Counts and quantities are BIGINT: pandas turns HUGEINT into floats and BI drivers reject it."""
    _, con = scenario
    hugeint = con.execute(
        "select table_schema || '.' || table_name || '.' || column_name from information_schema.columns"
        " where table_schema in ('analytics', 'source') and data_type in ('HUGEINT', 'UHUGEINT')"
    ).fetchall()
    assert hugeint == []
