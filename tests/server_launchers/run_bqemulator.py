"""Start bqemulator (run with the Python of its own virtualenv, `tests/server_requirements/bqemulator.txt`).

Two things happen before the emulator's own CLI runs:

- DuckDB's `spatial` and `avro` extensions are installed from their PyPI wheels, so the emulator's
  `INSTALL spatial` / `INSTALL avro` find them and never download anything.
- An emulator bug is corrected: its type-annotation schema keys tables by bare name, so
  `raw.customers` and `quarantine.customers` in one query collide, and when a translation rule
  rewrites the query (UPPER, for one) sqlglot expands `raw_rows.*` with the other table's columns
  ("Table raw_rows does not have a column named rule"). Keyed by project, dataset and table, each
  reference resolves to its own table; a bare name that is ambiguous is left unannotated.
- A second one: sqlglot reads BigQuery's NUMERIC as a DECIMAL without precision, which DuckDB takes
  as DECIMAL(18, 3), and the emulator's division rewrite prints NUMERIC(18, 2) back as NUMERIC, so
  casts kept 3 decimals. NUMERIC is DECIMAL(38, 9) in BigQuery and in the emulator's own type map.
  (BIGNUMERIC stays sqlglot's DECIMAL(38, 5): DuckDB has no 76-digit decimal.)
"""

from __future__ import annotations

import sys

import sqlglot
from duckdb_extensions import import_extension
from sqlglot import exp


def _install_extensions() -> None:
    for name in ("spatial", "avro"):
        import_extension(name)


def _qualified_catalog_schema(bq_sql: str, *, project_id: str, catalog: object) -> dict:
    """The emulator's catalog snapshot, keyed {project: {dataset: {table: {column: type}}}}."""
    from bqemulator.domain.errors import NotFoundError
    from bqemulator.sql import catalog_schema

    try:
        tree = sqlglot.parse_one(bq_sql, read="bigquery")
    except sqlglot.errors.ParseError:
        return {}
    schema: dict = {}
    for table in tree.find_all(exp.Table):
        resolved = catalog_schema._resolve_table_ref(table, project_id=project_id)
        if resolved is None:
            continue
        project, dataset, name = resolved
        try:
            meta = catalog.get_table(project, dataset, name)
        except NotFoundError:
            continue
        if meta is None:
            continue
        columns = {field.name: kind for field in meta.schema_.fields
                   if (kind := catalog_schema._safe_bq_to_duckdb(field.type)) is not None}
        if columns:
            schema.setdefault(project, {}).setdefault(dataset, {})[name] = columns
    return schema


def _numeric_is_decimal_38_9() -> None:
    """Give every bare NUMERIC that sqlglot's BigQuery parser reads BigQuery's precision and scale."""
    from sqlglot.dialects.bigquery import BigQuery

    parse_types = BigQuery.Parser._parse_types

    def parse_types_with_numeric_scale(self, *args, **kwargs):
        node = parse_types(self, *args, **kwargs)
        if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.DECIMAL and not node.expressions:
            node.set("expressions", [exp.DataTypeParam(this=exp.Literal.number(38)),
                                     exp.DataTypeParam(this=exp.Literal.number(9))])
        return node

    BigQuery.Parser._parse_types = parse_types_with_numeric_scale


def main() -> None:
    _install_extensions()
    _numeric_is_decimal_38_9()
    from bqemulator import cli
    from bqemulator.sql import inner_query

    inner_query.build_catalog_schema = _qualified_catalog_schema
    sys.argv[0] = "bqemulator"
    cli.main()


if __name__ == "__main__":
    main()
