"""The copy checksum: independent of row order, sensitive to every value and to duplicated rows."""

from __future__ import annotations

import datetime
from decimal import Decimal

import duckdb
import pytest

from openmrr.warehouses.checksum import CopyMismatch, checksum_rows, table_checksum, verify_copies

ROWS = [(1, "a", Decimal("1.50"), datetime.datetime(2024, 1, 1, 12)), (2, None, Decimal("0"), None)]


def test_row_order_does_not_matter_but_every_row_does():
    assert checksum_rows(ROWS) == checksum_rows(list(reversed(ROWS)))
    assert checksum_rows(ROWS).rows == 2
    assert checksum_rows([*ROWS, ROWS[0]]) != checksum_rows(ROWS)
    assert checksum_rows([ROWS[0], ROWS[0], ROWS[1], ROWS[1]]) != checksum_rows([ROWS[0], ROWS[1]])


def test_numbers_compare_by_value_and_kinds_stay_apart():
    assert checksum_rows([(Decimal("1.50"),)]) == checksum_rows([(Decimal("1.5"),)]) == checksum_rows([(1.5,)])
    assert checksum_rows([(1,)]) != checksum_rows([("1",)])
    assert checksum_rows([(None,)]) != checksum_rows([("",)])
    aware = datetime.datetime(2024, 1, 1, 13, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    assert checksum_rows([(aware,)]) == checksum_rows([(datetime.datetime(2024, 1, 1, 12, tzinfo=datetime.UTC),)])


def _table(rows: list[tuple]) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("create schema analytics; create table analytics.t (n int, s varchar, d decimal(18, 2),"
                       " at_time timestamp)")
    connection.executemany("insert into analytics.t values (?, ?, ?, ?)", [list(row) for row in rows])
    return connection


def test_a_table_reads_to_the_checksum_of_its_rows():
    connection = _table(ROWS)
    assert table_checksum(connection.cursor(), "analytics.t", ["n", "s", "d", "at_time"]) == checksum_rows(ROWS)


def test_verify_copies_names_the_table_that_differs():
    source, same, changed = _table(ROWS), _table(list(reversed(ROWS))), _table([ROWS[0], (2, None, 0.01, None)])
    assert verify_copies(source, same, "analytics", ["t"])["t"] == checksum_rows(ROWS)
    with pytest.raises(CopyMismatch, match=r"analytics\.t \(2 rows in DuckDB, 2 in the target\)"):
        verify_copies(source, changed, "analytics", ["t"])
