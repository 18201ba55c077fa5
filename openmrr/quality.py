"""Run the Great Expectations suites over the raw tables as SQL, and quarantine failing rows.

Each suite in `expectations/` is compiled to one set-based DuckDB statement per input file:
every expectation becomes a predicate that is true on a failing row, so a single scan finds
every bad row with its first broken rule and all its messages. (GE's own SQL engine runs one
query per expectation and returns only a sample of failing rows, which cannot quarantine
10M-row files; see docs/reference.md, "Validation".) Files are checked in dependency order so a row that
points at a quarantined row follows it ("depends on quarantined ...").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb

from openmrr.contract import BOOL_FALSE, BOOL_TRUE, INPUT_FILES, InputFile
from openmrr.errors import DataRejected
from openmrr.paths import REFERENCE_SEEDS_DIR
from openmrr.suites import load_suite

REPORT_TABLE = "source.import_reports"
# every rule count of every file report as a row; import_reports.top_rules is the same, rendered as text
REPORT_RULES_TABLE = "source.import_report_rules"


@dataclass
class FileReport:
    data_source: str | None
    file: str
    batch_id: str
    rows_read: int
    rows_quarantined: int
    top_rules: list[tuple[str, int]] = field(default_factory=list)  # every rule with its count, most first

    @property
    def rows_loaded(self) -> int:
        return self.rows_read - self.rows_quarantined

    @property
    def bad_share(self) -> float:
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0

    @property
    def label(self) -> str:
        return f"{self.data_source}/{self.file}" if self.data_source else self.file

    def rules_text(self, limit: int) -> str:
        """The `limit` most frequent rules as `rule (count), ...`: the one way reports show them as text."""
        return ", ".join(f"{rule} ({count})" for rule, count in self.top_rules[:limit])


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    return '"' + name + '"'


def normalised_value(spec: InputFile, column: str) -> str:
    """A raw value trimmed, empty as null; booleans spelled 'true'/'false' when valid."""
    value = f"nullif(trim(r.{quote_ident(column)}), '')"
    if spec.column(column).type == "bool":
        return (
            f"case when lower({value}) in ({', '.join(map(_literal, BOOL_TRUE))}) then 'true'"
            f" when lower({value}) in ({', '.join(map(_literal, BOOL_FALSE))}) then 'false'"
            f" else {value} end"
        )
    return value


def _col(name: str) -> str:
    return f"checked_rows.{quote_ident(name)}"


def _condition(kwargs: dict[str, Any]) -> str:
    condition = kwargs.get("row_condition")
    if not condition:
        return "true"
    if condition.get("type") != "comparison" or condition.get("operator") != "==":
        raise ValueError(f"unsupported row_condition {condition!r}")
    return f"{_col(condition['column']['name'])} = {_literal(str(condition['parameter']))}"


def _message(template: str, column: str | None) -> str:
    """A SQL expression rendering a message template; {value} becomes the offending value."""
    text = template.replace("{column}", column or "")
    parts = text.split("{value}")
    pieces = [_literal(parts[0])]
    for part in parts[1:]:
        pieces += [f"coalesce({_col(column or '')}, '')", _literal(part)]
    return " || ".join(pieces)


@dataclass
class _Compiled:
    joins: list[str] = field(default_factory=list)
    windows: list[str] = field(default_factory=list)
    checks: list[tuple[str, str, str]] = field(default_factory=list)  # (predicate, rule, message)


def _compile_expectation(expectation: dict[str, Any], index: int, compiled: _Compiled,
                         self_name: str) -> None:
    kind, kwargs, meta = expectation["type"], expectation["kwargs"], expectation["meta"]
    column = kwargs.get("column")
    value = _col(column) if column else ""
    when = _condition(kwargs)
    # a derived value's rule speaks of the input column it comes from (InputFile.limits)
    rule, message = meta["rule"], _message(meta["message"], meta.get("reported_column", column))
    fails: str
    if kind == "expect_column_values_to_not_be_null":
        fails = f"{value} is null"
    elif kind == "expect_column_values_to_match_regex" and "only_if_matches" in meta:
        # a range rule: checked only on values of the right type (their type rule reports the others)
        fails = (f"{value} is not null and regexp_full_match({value}, {_literal(meta['only_if_matches'])})"
                 f" and not regexp_full_match({value}, {_literal(kwargs['regex'])})")
    elif kind == "expect_column_values_to_match_regex":
        fails = f"{value} is not null and (not regexp_full_match({value}, {_literal(kwargs['regex'])})"
        if meta.get("parse_as") == "timestamp":
            fails += f" or try_cast({value} as timestamptz) is null"
        fails += ")"
    elif kind == "expect_column_value_lengths_to_be_between":
        fails = f"length({value}) > {int(kwargs['max_value'])}"
    elif kind == "expect_column_values_to_be_between" and "only_if_matches" in meta:
        # integer bounds, exact at any length (a value too long for hugeint is out of range too)
        fails = (f"{value} is not null and regexp_full_match({value}, {_literal(meta['only_if_matches'])})"
                 f" and coalesce(try_cast({value} as hugeint) not between {int(kwargs['min_value'])}"
                 f" and {int(kwargs['max_value'])}, true)")
    elif kind == "expect_column_values_to_be_between":
        bounds = []
        if "min_value" in kwargs:
            bounds.append(f"try_cast({value} as double) {'<=' if kwargs.get('strict_min') else '<'}"
                          f" {float(kwargs['min_value'])}")
        if "max_value" in kwargs:  # integer limits of derived values (InputFile.limits), compared exactly
            bounds.append(f"try_cast({value} as hugeint) {'>=' if kwargs.get('strict_max') else '>'}"
                          f" {int(kwargs['max_value'])}")
        fails = " or ".join(bounds)
    elif kind == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = _col(kwargs["column_A"]), _col(kwargs["column_B"])
        fails = f"try_cast({a} as timestamptz) <= try_cast({b} as timestamptz)"
        message = _literal(meta["message"])
    elif kind in ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"):
        key = kwargs.get("column_list") or [column]
        key_sql = ", ".join(quote_ident(k) for k in key)
        not_null = " and ".join(f"{quote_ident(k)} is not null" for k in key)
        compiled.windows.append(
            f"case when {not_null} then row_number() over (partition by file_batch_id, {key_sql} order by line)"
            f" end as _duplicate_{index}"
        )
        fails = f"checked_rows._duplicate_{index} > 1"
        message = _literal(meta["message"])
    elif kind == "expect_column_values_to_be_in_set" and "reference" in meta:
        reference = meta["reference"]
        target = reference["file"]
        alias = f"_ref_{index}"
        source_match = (
            f"{alias}.ref_source is not distinct from checked_rows.data_source"
            if reference["same_source"] else f"{alias}.ref_source = {_col(reference['source_column'])}"
        )
        keys_table = f"_keys_{target}" if target != self_name else f"_self_keys_{target}"
        compiled.joins.append(
            f"left join {keys_table}_{reference['column']} as {alias}"
            f" on {source_match} and {alias}.ref_key = {value}"
        )
        if reference.get("on_or_before"):
            _compile_dated_reference(alias, reference, target, column, when, rule, message, compiled)
            return
        compiled.checks.append((
            f"({when}) and {value} is not null and {alias}.ref_key is null", rule, message,
        ))
        compiled.checks.append((
            f"({when}) and {value} is not null and not {alias}.has_valid",
            "depends_on_quarantined",
            _message(f"depends on quarantined {target} row '{{value}}'", column),
        ))
        return
    elif kind == "expect_column_values_to_be_in_set" and "convertible_on" in meta:
        alias = f"_fx_{index}"
        day = _col(meta["convertible_on"])
        compiled.joins.append(f"left join _convertible_currencies as {alias} on {alias}.currency = {value}")
        fails = (
            f"{value} is not null and {value} <> (select currency from _account_currency)"
            f" and ({alias}.first_rate_day is null or {alias}.first_rate_day > cast(try_cast({day} as timestamptz)"
            " as date))"
        )
    elif kind == "expect_column_values_to_not_be_in_set" and "cycle_columns" in meta:
        from_source = _col(meta["cycle_columns"][0])
        fails = f"({from_source}, {value}) in (select (data_source, external_id) from _merge_cycle_members)"
    elif kind == "expect_column_values_to_be_in_set":
        value_set = kwargs["value_set"]
        if isinstance(value_set, dict):
            seed = value_set["$PARAMETER"].removeprefix("seed:")
            fails = f"{value} is not null and {value} not in (select code from _seed_{seed})"
        elif meta.get("case_insensitive"):
            accepted = ", ".join(_literal(v.lower()) for v in value_set)
            fails = f"{value} is not null and lower({value}) not in ({accepted})"
        else:
            fails = f"{value} is not null and {value} not in ({', '.join(_literal(str(v)) for v in value_set)})"
    else:
        raise ValueError(f"expectation type {kind} has no SQL compilation")
    compiled.checks.append((f"({when}) and ({fails})", rule, message))


def _compile_dated_reference(alias: str, reference: dict[str, Any], target: str, column: str, when: str,
                             rule: str, message: str, compiled: _Compiled) -> None:
    """A reference whose target must hold a row dated on or before this row's date: failing when no row
    is (`rule`), or when only quarantined rows are ("depends on quarantined")."""
    value, mine = _col(column), f"try_cast({_col(reference['on_or_before'][0])} as timestamptz)"
    compiled.checks.append((
        f"({when}) and {value} is not null and {mine} is not null"
        f" and ({alias}.ref_key is null or {alias}.first_at is null or {alias}.first_at > {mine})",
        rule, message,
    ))
    compiled.checks.append((
        f"({when}) and {value} is not null and {alias}.first_at <= {mine}"
        f" and ({alias}.first_valid_at is null or {alias}.first_valid_at > {mine})",
        "depends_on_quarantined",
        _message(f"depends on quarantined {target} row '{{value}}'", column),
    ))


def dated_reference_columns(spec: InputFile) -> dict[str, str]:
    """Columns of `spec` that a dated reference (Reference.on_or_before) targets -> the date column."""
    return {r.target_column: r.on_or_before[1] for other in INPUT_FILES for r in other.references
            if r.file == spec.name and r.on_or_before}


def compile_quarantine_sql(spec: InputFile, suite: dict[str, Any], rechecked_only: bool = False) -> str:
    """The statement that (re)builds `quarantine.<file>` from `raw.<file>`; with `rechecked_only`, the
    one that adds the failing rows among `_candidates` marked `rechecked` (see openmrr.revalidate)."""
    compiled = _Compiled()
    for index, expectation in enumerate(suite["expectations"]):
        _compile_expectation(expectation, index, compiled, spec.name)
    normalised = ", ".join(f"{normalised_value(spec, c)} as {quote_ident(c)}" for c in spec.column_names)
    derived = "".join(f", ({sql}) as {quote_ident(name)}" for name, sql in spec.derived.items())
    windows = "".join(f", {w}" for w in compiled.windows)
    rule = "coalesce(" + ", ".join(f"case when {p} then {_literal(r)} end" for p, r, _ in compiled.checks) + ")"
    message = "concat_ws('; ', " + ", ".join(f"case when {p} then {m} end" for p, _, m in compiled.checks) + ")"
    # a record the reader could not split into fields (openmrr.ingest) has only that reason: its columns are empty
    rule = f"coalesce(checked_rows._parse_rule, {rule})"
    message = f"case when checked_rows._parse_rule is null then {message} else checked_rows._parse_message end"
    head = (f"insert into quarantine.{spec.name}" if rechecked_only
            else f"create or replace table quarantine.{spec.name} as")
    candidates = (
        "inner join _candidates as c on c.batch_id = r.batch_id and c.line = r.line" if rechecked_only else ""
    )
    rechecked = "c.rechecked" if rechecked_only else "true"
    return f"""
    {head}
    with normalised as (
        select r.data_source, r.batch_id, coalesce(b.first_batch_id, r.batch_id) as file_batch_id, r.line,
               {rechecked} as _rechecked, r.parse_rule as _parse_rule, r.parse_message as _parse_message, {normalised}
        from raw.{spec.name} as r left join raw.import_batches as b on b.batch_id = r.batch_id {candidates}
    ),
    checked_rows as (
        select normalised.*{derived}{windows} from normalised
    ),
    verdicts as (
        select checked_rows.batch_id, checked_rows.line, checked_rows._rechecked, {rule} as rule,
               {message} as message
        from checked_rows {' '.join(compiled.joins)}
    )
    select raw_rows.*, verdicts.rule, verdicts.message
    from raw.{spec.name} as raw_rows
    inner join verdicts on raw_rows.batch_id = verdicts.batch_id and raw_rows.line = verdicts.line
    where verdicts.rule is not null and verdicts._rechecked
    order by raw_rows.batch_seq, raw_rows.line
    """


def _load_reference_seeds(con: duckdb.DuckDBPyConnection) -> None:
    for seed in ("iso_currencies", "iso_countries", "us_states"):
        con.execute(
            f"create or replace temp table _seed_{seed} as select code from read_csv(?, header = true,"
            " all_varchar = true)",
            [str(REFERENCE_SEEDS_DIR / f"{seed}.csv")],
        )


def _load_account_tables(con: duckdb.DuckDBPyConnection, account_currency: str) -> None:
    """Parameters of the cross-file rules: convertible currencies and merge cycles."""
    con.execute("create or replace temp table _account_currency as select ? as currency", [account_currency])
    # the first day each currency has a rate to or from the account currency (direct or inverse pair)
    con.execute(
        """create or replace temp table _convertible_currencies as
        select currency, min(rate_day) as first_rate_day from (
            select case when upper(trim(from_currency)) = $1 then upper(trim(to_currency))
                        else upper(trim(from_currency)) end as currency,
                   cast(try_cast(trim(date) as timestamptz) as date) as rate_day
            from raw.currency_rates
            where $1 in (upper(trim(from_currency)), upper(trim(to_currency)))
              and try_cast(trim(rate) as double) > 0
        ) as rates
        where rate_day is not null
        group by currency""",
        [account_currency],
    )
    con.execute(
        """create or replace temp table _merge_cycle_members as
        with recursive edges as (
            select distinct trim(from_source) as from_source, trim(from_external_id) as from_id,
                   trim(into_source) as into_source, trim(into_external_id) as into_id
            from raw.customer_merges
        ),
        walk as (
            select from_source as start_source, from_id as start_id, into_source as source, into_id as id, 1 as steps
            from edges
            union all
            select walk.start_source, walk.start_id, edges.into_source, edges.into_id, walk.steps + 1
            from walk inner join edges on edges.from_source = walk.source and edges.from_id = walk.id
            where walk.steps < 100 and not (walk.source = walk.start_source and walk.id = walk.start_id)
        )
        select distinct start_source as data_source, start_id as external_id from walk
        where source = start_source and id = start_id"""
    )


def referenced_columns(spec: InputFile, by: tuple[InputFile, ...] = INPUT_FILES) -> list[str]:
    """The columns of `spec` that rows of the files `by` reference."""
    return sorted({r.target_column for other in by for r in other.references if r.file == spec.name})


def build_key_tables(con: duckdb.DuckDBPyConnection, spec: InputFile, quarantined: bool,
                     wanted: dict[str, str] | None = None) -> None:
    """Keys of a file that others reference, with whether any row holding the key is valid;
    with `wanted` (column -> a query of keys), only those keys."""
    for column in referenced_columns(spec, INPUT_FILES if quarantined else (spec,)):
        if wanted is not None and column not in wanted:
            continue
        only = (
            f" where nullif(trim(r.{quote_ident(column)}), '') in ({wanted[column]})" if wanted is not None else ""
        )
        prefix = "_keys" if quarantined else "_self_keys"
        valid = ("bool_or(q.batch_id is null)" if quarantined else "true") + " as has_valid"
        dated = dated_reference_columns(spec).get(column)
        if dated is not None:  # the earliest date of any row, and of a valid row, holding the key
            moment = f"try_cast(nullif(trim(r.{quote_ident(dated)}), '') as timestamptz)"
            kept = "q.batch_id is null" if quarantined else "true"
            valid += f", min({moment}) as first_at, min({moment}) filter (where {kept}) as first_valid_at"
        quarantine_join = (
            f"left join quarantine.{spec.name} q on q.batch_id = r.batch_id and q.line = r.line"
            if quarantined else ""
        )
        con.execute(
            f"create or replace temp table {prefix}_{spec.name}_{column} as"
            f" select r.data_source as ref_source, nullif(trim(r.{quote_ident(column)}), '') as ref_key,"
            f" {valid}"
            f" from raw.{spec.name} r {quarantine_join}{only} group by all"
        )


def validate(con: duckdb.DuckDBPyConnection, account_currency: str = "USD") -> list[FileReport]:
    """Bring every quarantine table up to date with the raw tables and report on each file's latest batch.

    Only rows of batches loaded since the last validation, and rows whose references changed, are
    checked again when that provably gives the full rebuild's result (openmrr.revalidate); otherwise
    every table is rebuilt."""
    from openmrr import revalidate  # it builds on this module's compiler

    con.execute("create schema if not exists quarantine")
    con.execute("create schema if not exists source")
    _load_reference_seeds(con)
    _load_account_tables(con, account_currency)
    state = revalidate.current_state(con, account_currency)
    since = revalidate.take_previous_state(con, state)
    validated_at = revalidate.begin_changes(con)
    if since is None:
        revalidate.record_everything_changed(con, validated_at)
        for spec in INPUT_FILES:
            build_key_tables(con, spec, quarantined=False)
            con.execute(compile_quarantine_sql(spec, load_suite(spec.name)))
            build_key_tables(con, spec, quarantined=True)
    else:
        revalidate.recheck_since(con, since, validated_at)
    revalidate.store_state(con, state)
    reports = _reports(con)
    _store_reports(con, reports)
    return reports


def _reports(con: duckdb.DuckDBPyConnection) -> list[FileReport]:
    """One report per file on its current content: its latest batch with the batches it appended to."""
    reports = []
    latest = con.execute(
        """select b.data_source, b.file, b.entity, b.batch_id, coalesce(b.first_batch_id, b.batch_id),
                  (select sum(part.rows) from raw.import_batches part
                   where coalesce(part.first_batch_id, part.batch_id) = coalesce(b.first_batch_id, b.batch_id)
                     and part.entity = b.entity)
        from raw.import_batches b
        where b.batch_seq = (select max(l.batch_seq) from raw.import_batches l
                             where l.data_source is not distinct from b.data_source and l.file = b.file)
        order by b.batch_seq"""
    ).fetchall()
    for data_source, file, entity, batch_id, first_batch_id, rows in latest:
        rules = con.execute(
            f"select rule, count(*) from quarantine.{entity} q inner join raw.import_batches b"
            " on b.batch_id = q.batch_id where coalesce(b.first_batch_id, b.batch_id) = ? group by rule"
            " order by count(*) desc, rule",
            [first_batch_id],
        ).fetchall()
        label = file if entity + ".csv" == file else f"{file}#{entity}"
        reports.append(FileReport(data_source, label, batch_id, rows, sum(n for _, n in rules), rules))
    return reports


def _store_reports(con: duckdb.DuckDBPyConnection, reports: list[FileReport]) -> None:
    con.execute(
        f"create or replace table {REPORT_TABLE} (data_source varchar, file varchar, batch_id varchar,"
        " rows_read bigint, rows_loaded bigint, rows_quarantined bigint, top_rules varchar,"
        " checked_at timestamp)"
    )
    con.execute(
        f"create or replace table {REPORT_RULES_TABLE} (data_source varchar, file varchar, batch_id varchar,"
        " rule varchar, rows_quarantined bigint)"
    )
    for report in reports:
        con.execute(
            f"insert into {REPORT_TABLE} values (?, ?, ?, ?, ?, ?, ?, now()::timestamp)",
            [report.data_source, report.file, report.batch_id, report.rows_read, report.rows_loaded,
             report.rows_quarantined, report.rules_text(5)],
        )
        if report.top_rules:
            con.executemany(f"insert into {REPORT_RULES_TABLE} values (?, ?, ?, ?, ?)",
                            [[report.data_source, report.file, report.batch_id, rule, count]
                             for rule, count in report.top_rules])


def stored_reports(con: duckdb.DuckDBPyConnection) -> list[FileReport]:
    """The reports the latest validation stored, every rule count read back from its rows."""
    rules: dict[tuple[str | None, str], list[tuple[str, int]]] = {}
    for data_source, file, rule, count in con.execute(
        f"select data_source, file, rule, rows_quarantined from {REPORT_RULES_TABLE}"
        " order by rows_quarantined desc, rule"
    ).fetchall():
        rules.setdefault((data_source, file), []).append((rule, count))
    return [FileReport(data_source, file, batch_id, read, bad, rules.get((data_source, file), []))
            for data_source, file, batch_id, read, bad in con.execute(
                f"select data_source, file, batch_id, rows_read, rows_quarantined from {REPORT_TABLE}").fetchall()]


SHOWN_ROWS = 5  # quarantined rows a threshold failure quotes (inputs.md: "the first few of them")


def enforce_threshold(reports: list[FileReport], max_bad_row_share: float,
                      con: duckdb.DuckDBPyConnection | None = None) -> None:
    """Fail, naming files and rules, when a file's quarantined share passes the threshold; with the
    warehouse `con`, quote the first quarantined rows of those files (file:line, column, value, rule,
    message), so the person sees what is wrong without querying the quarantine tables."""
    rejected = [r for r in reports if r.bad_share > max_bad_row_share]
    if not rejected:
        return
    lines = [
        f"{r.label}: {r.rows_quarantined} of {r.rows_read} rows quarantined ({r.bad_share:.1%}),"
        f" top rules: {r.rules_text(3)}"
        for r in rejected
    ]
    examples = ""
    if con is not None:
        from openmrr.quarantine_report import quarantined_rows

        shown = [row.describe() for row in quarantined_rows(con, rejected, limit=SHOWN_ROWS)]
        examples = "\nFirst quarantined rows:\n  " + "\n  ".join(shown) if shown else ""
    raise DataRejected(
        f"too many bad rows (max_bad_row_share = {max_bad_row_share:.1%}):\n  " + "\n  ".join(lines) + examples
        + "\nSee the quarantine tables (or `openmrr validate --report FILE`) for every row and its reason."
    )
