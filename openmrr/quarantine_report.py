"""The quarantined rows a person reads: the first few in a failure message or `openmrr validate`, all of
them in `validate --report FILE` (inputs.md, "Bad input": a failure "shows the first few of them
(file:line, column, value, rule, message)").

The quarantine tables keep the raw row, its first broken `rule` and every `message`; the column is the
one of the rule's expectation whose message the row's message starts with (the suites' templates name
their column), so the tables need no extra column.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb

from openmrr.contract import FILES_BY_NAME
from openmrr.quality import FileReport
from openmrr.spreadsheet import spreadsheet_safe
from openmrr.suites import load_suite

CSV_COLUMNS = ("file", "line", "column", "value", "rule", "message")
SHOWN_VALUE_LENGTH = 80


@dataclass(frozen=True)
class QuarantinedRow:
    file: str  # the import report's label: source/file.csv
    line: int
    column: str | None  # several columns of a compound key: "a, b"
    value: str | None
    rule: str
    message: str

    def describe(self) -> str:
        """`file:line, column C, value 'V', rule R: message`, the value shortened for a terminal."""
        where = f"{self.file}:{self.line}"
        shown = None
        if self.value is not None:
            shown = self.value if len(self.value) <= SHOWN_VALUE_LENGTH else self.value[:SHOWN_VALUE_LENGTH] + "…"
        if self.column is not None:
            where += f", column {self.column}" + (f", value '{shown}'" if shown is not None else "")
        elif shown is not None:
            where += f", record '{shown}'"
        return f"{where}, rule {self.rule}: {self.message}"


@cache
def _checks(entity: str) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(rule, message prefix, columns) of each check of a file's suite, in the order quality.py compiles
    them: the prefix is the message template up to its first `{value}`, with its column filled in."""
    checks = []
    for expectation in load_suite(entity)["expectations"]:
        kwargs, meta = expectation["kwargs"], expectation["meta"]
        columns = tuple(kwargs.get("column_list")
                        or [meta.get("reported_column") or kwargs.get("column") or kwargs.get("column_A")])
        template = meta["message"].replace("{column}", columns[0] or "")
        checks.append((meta["rule"], template.split("{value}")[0], columns))
        if "reference" in meta:
            target = meta["reference"]["file"]
            checks.append(("depends_on_quarantined", f"depends on quarantined {target} row '", columns))
    return tuple(checks)


def column_of(entity: str, rule: str, message: str) -> tuple[str, ...]:
    """The column(s) of the check that gave a quarantined row its rule; () when none matches (a rule
    given outside the suites)."""
    for check_rule, prefix, columns in _checks(entity):
        if check_rule == rule and message.startswith(prefix) and all(columns):
            return columns
    return ()


def _quarantined(con: duckdb.DuckDBPyConnection, report: FileReport, limit: int | None) -> Iterator[QuarantinedRow]:
    """The quarantined rows of one file's current content (its latest batch with those it appended to)."""
    found = con.execute("select entity, coalesce(first_batch_id, batch_id) from raw.import_batches"
                        " where batch_id = ?", [report.batch_id]).fetchone()
    if found is None or found[0] not in FILES_BY_NAME:  # the table name is spliced: only a contract name
        return
    entity, first_batch_id = found
    cursor = con.execute(
        f"select q.* from quarantine.{entity} as q inner join raw.import_batches as b on b.batch_id = q.batch_id"
        " where coalesce(b.first_batch_id, b.batch_id) = ? order by q.batch_seq, q.line"
        + ("" if limit is None else f" limit {int(limit)}"),
        [first_batch_id],
    )
    names = [d[0] for d in cursor.description]
    while chunk := cursor.fetchmany(10_000):
        for values in chunk:
            row = dict(zip(names, values, strict=True))
            columns = column_of(entity, row["rule"], row["message"] or "")
            raw = [row.get(column) for column in columns]
            if columns:
                value = None if all(v is None for v in raw) else ", ".join("" if v is None else str(v) for v in raw)
            else:  # a record the reader could not split into fields: its verbatim text (openmrr.ingest)
                value = row.get("raw_record")
            yield QuarantinedRow(report.label, int(row["line"]), ", ".join(columns) or None, value,
                                 row["rule"], row["message"] or "")


def quarantined_rows(con: duckdb.DuckDBPyConnection, reports: list[FileReport],
                     limit: int | None = None) -> Iterator[QuarantinedRow]:
    """The quarantined rows of the reported files, file by file in report order, each file by line; at
    most `limit` in all."""
    left = limit
    for report in reports:
        if report.rows_quarantined == 0 or left == 0:
            continue
        for row in _quarantined(con, report, left):
            yield row
            if left is not None:
                left -= 1


def write_quarantine_csv(rows: Iterator[QuarantinedRow], path: Path) -> int:
    """Write every row (file, line, column, value, rule, message) to a CSV file; return how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow([spreadsheet_safe("" if cell is None else str(cell)) for cell in
                             (row.file, row.line, row.column, row.value, row.rule, row.message)])
            written += 1
    return written
