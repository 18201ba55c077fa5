"""Validation of only what new batches can change, with the full rebuild's result.

A row's verdict depends on the row, on the earlier rows of its file with the same unique key, on the
keys of the files it references (whether a row holds the key, and whether one such row is valid), and
on account-wide tables: the rules themselves, the account currency, the convertible currencies and
the merge cycles. Raw tables only grow, so after new batches:

- the rows of the new batches need a verdict;
- an older row's verdict can change only when a key it references changed: a key held by a new row,
  or by a row whose verdict was just checked again (files are checked in dependency order);
- an older row's duplicate verdict cannot change (new rows come later in their file).

Those rows are checked again with the same compiled statement, over only the rows of their file that
share a unique key with them. When anything account-wide changed, or no state of the last validation
is recorded, `openmrr.quality.validate` rebuilds every table instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import duckdb

from openmrr.contract import INPUT_FILES, InputFile
from openmrr.paths import REFERENCE_SEEDS_DIR
from openmrr.quality import (
    build_key_tables,
    compile_quarantine_sql,
    normalised_value,
    quote_ident,
    referenced_columns,
)
from openmrr.suites import load_suite

STATE_TABLE = "quarantine._validation_state"
# Rows of earlier batches whose verdict was checked again, for the incremental dbt build (openmrr.incremental):
# `file` '*' means every file was checked again, `batch_id` '*' every row of `file`.
CHANGES_TABLE = "quarantine._verdict_changes"


@dataclass(frozen=True)
class ValidationState:
    """What a validation's verdicts depended on, besides the raw rows up to `last_batch_seq`."""

    rules_sha: str
    account_currency: str
    fx_sha: str
    cycles_sha: str
    last_batch_seq: int


def current_state(con: duckdb.DuckDBPyConnection, account_currency: str) -> ValidationState:
    """The state this validation runs with (after the account tables are loaded)."""
    rules = hashlib.sha256()
    for spec in INPUT_FILES:
        rules.update(compile_quarantine_sql(spec, load_suite(spec.name)).encode())
    for seed in sorted(REFERENCE_SEEDS_DIR.glob("*.csv")):
        rules.update(seed.read_bytes())
    fx = con.execute(
        "select md5(coalesce(string_agg(currency || '@' || first_rate_day, ',' order by currency), ''))"
        " from _convertible_currencies"
    ).fetchone()[0]
    cycles = con.execute(
        "select md5(coalesce(string_agg(data_source || '/' || external_id, ',' order by all), ''))"
        " from _merge_cycle_members"
    ).fetchone()[0]
    last = con.execute("select coalesce(max(batch_seq), 0) from raw.import_batches").fetchone()[0]
    return ValidationState(rules.hexdigest(), account_currency, fx, cycles, int(last))


def take_previous_state(con: duckdb.DuckDBPyConnection, state: ValidationState) -> int | None:
    """The last validated batch_seq when only newer batches need checking, else None (rebuild).

    The recorded state is removed first: a validation stopped half-way leaves none, so the next one
    rebuilds everything."""
    con.execute(
        f"create table if not exists {STATE_TABLE} (rules_sha varchar, account_currency varchar, fx_sha varchar,"
        " cycles_sha varchar, last_batch_seq integer)"
    )
    rows = con.execute(f"select * from {STATE_TABLE}").fetchall()
    con.execute(f"delete from {STATE_TABLE}")
    if len(rows) != 1:
        return None
    previous = ValidationState(*rows[0])
    existing = {name for (name,) in con.execute(
        "select table_name from information_schema.tables where table_schema = 'quarantine'"
        " and table_catalog = current_database()").fetchall()}
    same = (previous.rules_sha, previous.account_currency, previous.fx_sha, previous.cycles_sha) == (
        state.rules_sha, state.account_currency, state.fx_sha, state.cycles_sha)
    if not same or previous.last_batch_seq > state.last_batch_seq or any(
            spec.name not in existing for spec in INPUT_FILES):
        return None
    return previous.last_batch_seq


def store_state(con: duckdb.DuckDBPyConnection, state: ValidationState) -> None:
    con.execute(f"delete from {STATE_TABLE}")
    con.execute(f"insert into {STATE_TABLE} values (?, ?, ?, ?, ?)",
                [state.rules_sha, state.account_currency, state.fx_sha, state.cycles_sha, state.last_batch_seq])


def begin_changes(con: duckdb.DuckDBPyConnection) -> datetime:
    """The moment this validation's re-checked rows are recorded under."""
    con.execute(f"create table if not exists {CHANGES_TABLE} (validated_at timestamp, file varchar,"
                " batch_id varchar, line bigint)")
    return con.execute("select cast(now() as timestamp)").fetchone()[0]


def record_everything_changed(con: duckdb.DuckDBPyConnection, validated_at: datetime) -> None:
    con.execute(f"insert into {CHANGES_TABLE} values (?, '*', null, null)", [validated_at])


def _changed_keys_table(spec_name: str, column: str) -> str:
    return f"_changed_keys_{spec_name}_{column}"


def _unique_keys(spec: InputFile) -> list[list[str]]:
    """The column lists of the file's uniqueness rules (duplicates are ranked within a file by line)."""
    keys = []
    for expectation in load_suite(spec.name)["expectations"]:
        if expectation["type"] in ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"):
            kwargs = expectation["kwargs"]
            keys.append(kwargs.get("column_list") or [kwargs["column"]])
    return keys


def recheck_since(con: duckdb.DuckDBPyConnection, since: int, validated_at: datetime) -> None:
    """Update every quarantine table for the batches after `since` (see the module docstring); the
    re-checked rows of earlier batches are recorded under `validated_at`."""
    for spec in INPUT_FILES:
        for column in referenced_columns(spec):
            con.execute(f"create or replace temp table {_changed_keys_table(spec.name, column)}"
                        " (ref_source varchar, ref_key varchar)")
    for spec in INPUT_FILES:
        _recheck_file(con, spec, since, validated_at)


def _recheck_file(con: duckdb.DuckDBPyConnection, spec: InputFile, since: int, validated_at: datetime) -> None:
    name = spec.name
    # a file's references to itself need only that the key exists: new rows are its changed keys
    for column in referenced_columns(spec, (spec,)):
        con.execute(
            f"insert into {_changed_keys_table(name, column)} select distinct data_source,"
            f" nullif(trim({quote_ident(column)}), '') from raw.{name} where batch_seq > ?", [since])
    parts = [f"select batch_id, line from raw.{name} where batch_seq > {int(since)}"]
    for reference in spec.references:
        source = (f"nullif(trim(r.{quote_ident(reference.source_column)}), '')" if reference.source_column
                  else "r.data_source")
        parts.append(
            f"select r.batch_id, r.line from raw.{name} r"
            f" inner join {_changed_keys_table(reference.file, reference.target_column)} k"
            f" on k.ref_source = {source} and k.ref_key = nullif(trim(r.{quote_ident(reference.column)}), '')"
        )
    con.execute("create or replace temp table _recheck as select distinct batch_id, line from ("
                + " union all ".join(parts) + ")")
    rechecked = con.execute("select count(*) from _recheck").fetchone()[0]
    if rechecked == 0:
        return
    if rechecked * 2 >= con.execute(f"select count(*) from raw.{name}").fetchone()[0]:
        _rebuild_file(con, spec)  # e.g. a whole file re-sent: checking row by row would cost more
        con.execute(f"insert into {CHANGES_TABLE} values (?, ?, '*', null)", [validated_at, name])
    else:
        con.execute(f"insert into {CHANGES_TABLE} select ?, ?, c.batch_id, c.line from _recheck c"
                    " where c.batch_id in (select batch_id from raw.import_batches where batch_seq <= ?)",
                    [validated_at, name, since])
        _build_candidates(con, spec)
        _build_wanted_key_tables(con, spec)
        con.execute("begin transaction")
        try:
            con.execute(f"delete from quarantine.{name} q where exists (select 1 from _recheck c"
                        " where c.batch_id = q.batch_id and c.line = q.line)")
            con.execute(compile_quarantine_sql(spec, load_suite(name), rechecked_only=True))
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    # the keys held by rows checked again may have changed validity: their referrers are next
    for column in referenced_columns(spec):
        con.execute(
            f"insert into {_changed_keys_table(name, column)} select distinct r.data_source,"
            f" nullif(trim(r.{quote_ident(column)}), '') from raw.{name} r"
            " inner join _recheck c on c.batch_id = r.batch_id and c.line = r.line")


def _rebuild_file(con: duckdb.DuckDBPyConnection, spec: InputFile) -> None:
    """Rebuild one quarantine table in full; every row counts as checked again."""
    by_name = {other.name: other for other in INPUT_FILES}
    for target in sorted({reference.file for reference in spec.references}):
        build_key_tables(con, by_name[target], quarantined=target != spec.name)
    con.execute(compile_quarantine_sql(spec, load_suite(spec.name)))
    con.execute(f"create or replace temp table _recheck as select batch_id, line from raw.{spec.name}")


def _build_candidates(con: duckdb.DuckDBPyConnection, spec: InputFile) -> None:
    """`_candidates`: the rows to check again, plus the rows of their file that share a unique key with
    them (the duplicate ranking needs them, their verdicts stay)."""
    chain = "coalesce(b.first_batch_id, r.batch_id)"
    from_raw = (f"from raw.{spec.name} r left join raw.import_batches b on b.batch_id = r.batch_id")
    parts = ["select batch_id, line, true as rechecked from _recheck"]
    for index, key in enumerate(_unique_keys(spec)):
        values = ", ".join(f"{normalised_value(spec, column)} as k{i}" for i, column in enumerate(key))
        con.execute(
            f"create or replace temp table _recheck_keys_{index} as select distinct {chain} as chain, {values}"
            f" {from_raw} inner join _recheck c on c.batch_id = r.batch_id and c.line = r.line"
        )
        match = " and ".join(f"w.k{i} = {normalised_value(spec, column)}" for i, column in enumerate(key))
        parts.append(
            f"select r.batch_id, r.line, false as rechecked {from_raw}"
            f" inner join _recheck_keys_{index} w on w.chain = {chain} and {match}"
        )
    con.execute("create or replace temp table _candidates as select batch_id, line, bool_or(rechecked) as rechecked"
                " from (" + " union all ".join(parts) + ") group by batch_id, line")


def _build_wanted_key_tables(con: duckdb.DuckDBPyConnection, spec: InputFile) -> None:
    """The key tables the file's references join, restricted to the keys its candidate rows name."""
    wanted: dict[tuple[str, str], list[str]] = {}
    for reference in spec.references:
        wanted.setdefault((reference.file, reference.target_column), []).append(
            f"select nullif(trim(r.{quote_ident(reference.column)}), '') from raw.{spec.name} r"
            " inner join _candidates c on c.batch_id = r.batch_id and c.line = r.line"
        )
    by_name = {other.name: other for other in INPUT_FILES}
    for (target, column), queries in wanted.items():
        build_key_tables(con, by_name[target], quarantined=target != spec.name,
                          wanted={column: " union ".join(queries)})
