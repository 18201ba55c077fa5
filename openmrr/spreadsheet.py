"""CSV cells a spreadsheet opens as text, never as a formula (OWASP, "CSV Injection").

A spreadsheet runs a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return as a formula, so a
customer named `=HYPERLINK(...)` in a delivered file or a validation report could act on the reader's
machine. Such a text cell gets a single quote in front; numeric columns are never passed through here, so
`-5.00` stays a number. One rule, for Python-written files and for SQL-exported ones.
"""

from __future__ import annotations

FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """`text` as a cell a spreadsheet shows as text: a single quote before a formula lead."""
    return "'" + text if text.startswith(FORMULA_LEADS) else text


def spreadsheet_safe_sql(column: str) -> str:
    """The SQL of `spreadsheet_safe` over a text column (an already quoted identifier)."""
    leads = ", ".join("'" + lead.replace("'", "''") + "'" for lead in FORMULA_LEADS)
    return f"case when left({column}, 1) in ({leads}) then '''' || {column} else {column} end"
