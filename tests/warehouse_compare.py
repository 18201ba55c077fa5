"""Row-by-row comparison of the marts a server warehouse built with those DuckDB built (same data)."""

from __future__ import annotations

import datetime
import json
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

REQUIRED_TABLES = ("mrr_activities", "customers", "fx_adjustments", "metrics_monthly")
JSON_COLUMNS = {"custom_attributes"}  # JSON text: DuckDB's key order is the aggregation's, not sorted


def canonical(value: object, column: str) -> tuple[str, object]:
    """A value tagged with its kind; numbers compare by value (Decimal scale and int vs Decimal aside)."""
    if value is None:
        return ("null", "")
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | Decimal | float):
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        return ("number", format(number.normalize(), "f"))
    if isinstance(value, datetime.datetime):  # an aware value keeps its offset and so differs from a naive one
        return ("timestamp", value.isoformat())
    if isinstance(value, datetime.date):
        return ("date", value.isoformat())
    if column in JSON_COLUMNS:
        return ("json", json.dumps(json.loads(value), sort_keys=True))
    return (type(value).__name__, value)


def table_rows(cursor: Any, name: str) -> tuple[list[str], list[tuple]]:
    """Column names and the sorted canonical rows of a table, through any DB-API cursor."""
    cursor.execute(f"select * from {name}")
    columns = [d[0] for d in cursor.description]
    return columns, sorted(tuple(canonical(v, c) for v, c in zip(row, columns, strict=True))
                           for row in cursor.fetchall())


def assert_same_table(name: str, duck_table: tuple[list[str], list[tuple]],
                      server_table: tuple[list[str], list[tuple]], label: str) -> None:
    """The same columns and rows (canonical, sorted) on both sides; a required mart must not be empty."""
    (duck_columns, duck_rows), (server_columns, server_rows) = duck_table, server_table
    assert server_columns == duck_columns, name
    only_duck = list((Counter(duck_rows) - Counter(server_rows)).elements())[:5]
    only_server = list((Counter(server_rows) - Counter(duck_rows)).elements())[:5]
    assert server_rows == duck_rows, (
        f"{name} differs ({len(duck_rows)} DuckDB rows, {len(server_rows)} {label} rows)\n"
        f"columns {duck_columns}\nonly in DuckDB {only_duck}\nonly in {label} {only_server}"
    )
    if name.split(".")[-1] in REQUIRED_TABLES:
        assert duck_rows, f"{name} is empty: nothing was compared"


def assert_same_marts(warehouse: Path, connect: Callable[[], Any], skip: Sequence[str] = (),
                      label: str = "server") -> list[str]:
    """Every `analytics` table but `skip` has the same columns and rows on the server as in DuckDB;
    the required marts are non-empty. Returns the marts compared."""
    duck = duckdb.connect(str(warehouse))
    server = connect()
    try:
        marts = [t for (t,) in duck.execute(
            "select table_name from information_schema.tables where table_schema = 'analytics' order by 1"
        ).fetchall() if t not in skip]
        assert set(REQUIRED_TABLES) - set(skip) <= set(marts)
        server_cursor = server.cursor()
        for mart in marts:
            assert_same_table(f"analytics.{mart}", table_rows(duck.cursor(), f"analytics.{mart}"),
                              table_rows(server_cursor, f"analytics.{mart}"), label)
        return marts
    finally:
        duck.close()
        server.close()


def assert_loaded_datasets_match(warehouse: Path, connect: Callable[[], Any], loaded: dict[str, int]) -> None:
    """Load mode: every dataset arrived with DuckDB's row count and the same order-independent checksum."""
    from openmrr.warehouses.checksum import verify_copies

    duck = duckdb.connect(str(warehouse))
    server = connect()
    try:
        datasets = [t for (t,) in duck.execute(
            "select table_name from information_schema.tables where table_schema = 'analytics' order by 1"
        ).fetchall()]
        assert sorted(loaded) == datasets
        checksums = verify_copies(duck, server, "analytics", datasets)
        assert {name: checksum.rows for name, checksum in checksums.items()} == loaded
        assert checksums["mrr_activities"].rows > 0
    finally:
        duck.close()
        server.close()


def assert_docs_catalog_lists_the_marts(target: str, environment: dict[str, str], dbt_vars: dict[str, Any],
                                        work_dir: Path, marts: Sequence[str]) -> None:
    """`dbt docs generate --target <target>` reads the server's catalog: each mart with its columns."""
    from openmrr.transform import run_dbt

    run_dbt("docs generate", work_dir / "docs.duckdb", dbt_vars, ["--target-path", str(work_dir / "docs")],
            target=target, environment=environment)
    catalog = json.loads((work_dir / "docs" / "catalog.json").read_text())
    for mart in marts:
        node = catalog["nodes"][f"model.openmrr.{mart}"]
        assert node["metadata"]["schema"] == "analytics", mart
        assert node["columns"], f"{mart}: no columns in the {target} catalog"
    assert "activity_id" in catalog["nodes"]["model.openmrr.mrr_activities"]["columns"]
