"""A row-order-independent checksum of a table, computed in Python the same way from any warehouse.

Load mode copies finished datasets out of DuckDB; to prove a copy is complete and unchanged, both
sides are read through their Python clients and every row is reduced to one canonical text (values
tagged by kind, numbers by exact value so `1.50` numeric equals `1.5` decimal, timestamps in ISO
form, aware ones in UTC). The checksum is the sum of the rows' SHA-256 digests modulo 2^128: the
row order does not matter, while a missing, extra or duplicated row does (unlike XOR).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from openmrr.errors import OpenMRRError

MODULUS = 1 << 128


@dataclass(frozen=True)
class TableChecksum:
    """Rows and the order-independent digest of a table (or of any rows)."""

    rows: int
    digest: str


def canonical_value(value: object) -> list[str]:
    """[kind, text] of one value, equal for equal values whatever client read them."""
    if value is None:
        return ["null", ""]
    if isinstance(value, bool):
        return ["bool", "true" if value else "false"]
    if isinstance(value, int | Decimal | float):
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        return ["number", format(number.normalize(), "f")]
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return ["timestamptz", value.astimezone(UTC).replace(tzinfo=None).isoformat()]
        return ["timestamp", value.isoformat()]
    if isinstance(value, date):
        return ["date", value.isoformat()]
    if isinstance(value, time):
        return ["time", value.isoformat()]
    if isinstance(value, bytes | bytearray | memoryview):
        return ["bytes", bytes(value).hex()]
    return ["text", str(value)]


def row_digest(row: Sequence[object]) -> int:
    """The SHA-256 of a row's canonical text, as an integer."""
    text = json.dumps([canonical_value(value) for value in row], ensure_ascii=False, separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "big")


def checksum_rows(rows: Iterable[Sequence[object]]) -> TableChecksum:
    """The checksum of any iterable of rows (each a sequence of values in a fixed column order)."""
    total = count = 0
    for row in rows:
        total = (total + row_digest(row)) % MODULUS
        count += 1
    return TableChecksum(count, f"{total:032x}")


def _fetched(cursor: Any, batch_rows: int) -> Iterable[Sequence[object]]:
    while rows := cursor.fetchmany(batch_rows):
        yield from rows


def table_checksum(cursor: Any, relation: str, columns: Sequence[str], batch_rows: int = 10_000) -> TableChecksum:
    """The checksum of `relation` (already quoted as the warehouse needs) read through any DB-API
    cursor (DuckDB, psycopg2, redshift_connector, ...); `columns` fixes the column order on every side."""
    column_list = ", ".join('"' + column.replace('"', '""') + '"' for column in columns)
    cursor.execute(f"select {column_list} from {relation}")
    return checksum_rows(_fetched(cursor, batch_rows))


class CopyMismatch(OpenMRRError):
    """A table in the target differs from the DuckDB table it was copied from (exit 1)."""

    exit_code = 1


def verify_copies(duck: Any, server: Any, schema: str, tables: Sequence[str]) -> dict[str, TableChecksum]:
    """Compare `schema.<table>` in DuckDB and in the target (a DB-API connection) for every table, in
    DuckDB's column order; the checksums per table, or CopyMismatch naming the tables that differ."""
    checksums, differing = {}, []
    for table in tables:
        columns = [name for (name,) in duck.execute(
            "select column_name from information_schema.columns where table_catalog = current_database()"
            " and table_schema = ? and table_name = ? order by ordinal_position", [schema, table]).fetchall()]
        relation = f'"{schema}"."{table}"'
        expected = table_checksum(duck.cursor(), relation, columns)
        actual = table_checksum(server.cursor(), relation, columns)
        if actual != expected:
            differing.append(f"{schema}.{table} ({expected.rows} rows in DuckDB, {actual.rows} in the target)")
        checksums[table] = expected
    if differing:
        raise CopyMismatch(f"copied table(s) differ from DuckDB: {', '.join(differing)}")
    return checksums
