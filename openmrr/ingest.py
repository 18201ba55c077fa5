"""Load every input file verbatim into `raw.<file>` tables with DuckDB's own readers.

Each file becomes one batch (`raw.import_batches`): its rows keep every value as text, plus
`data_source`, `batch_id`, `batch_seq`, `file`, `line`, `loaded_at` and unknown columns as
`extra` JSON. A file whose content is unchanged since its latest batch is skipped, and each
batch is written in one transaction, so a run killed half-way and started again ends exactly
where a clean run would.

A CSV file that only grew (its previously loaded bytes are a prefix of it, ending on a line break)
is loaded as an *appended* batch: only the new rows, with line numbers continuing the file's, and
`first_batch_id` naming the batch the file's content started with. Validation and staging treat the
batches sharing a `first_batch_id` as one file, so the result equals loading the whole file again.
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import io
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from openmrr.contract import (
    ACCOUNT_FILES,
    FILES_BY_NAME,
    INPUT_FILES,
    SOURCE_FILES,
    InputFile,
)
from openmrr.csv_records import BAD_QUOTE, MAX_RECORD_BYTES, NOT_UTF8, Rejected, Split, physical_lines, split_records
from openmrr.errors import ConfigError, FileFormatError
from openmrr.settings import SETTINGS_FILE

# Entities of the bulk-import JSON document: (entity path, target file, parent entity).
JSON_ENTITIES: tuple[tuple[str, str, str | None], ...] = (
    ("customers", "customers", None),
    ("contacts", "contacts", None),
    ("plans", "plans", None),
    ("invoices", "invoices", None),
    ("line_items", "line_items", "invoices"),
    ("transactions", "transactions", "invoices"),
    ("subscription_events", "subscription_events", None),
    ("cancellations", "cancellations", None),
)
CSV_ERROR_LINE = re.compile(r"CSV Error on Line: (\d+)")
# Files an operating system leaves in folders: named in one warning, not one each.
SYSTEM_LITTER = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", ".Spotlight-V100", ".Trashes", ".fseventsd",
                           ".localized", ".directory"})
# A header that splits into one name but holds one of these was written with another delimiter.
OTHER_DELIMITERS = ((";", "semicolons (';')"), ("\t", "tabs"), ("|", "pipes ('|')"))
# Columns of every raw table after the contract's: a record that could not be split into the header's
# fields keeps its verbatim text in raw_record, and why in parse_rule / parse_message (validation
# quarantines it under that rule before any other).
PARSE_COLUMNS = ("raw_record", "parse_rule", "parse_message")


@dataclass(frozen=True)
class InputDocument:
    """One file found in the data folder."""

    path: Path
    data_source: str | None  # None for account-level files
    spec: InputFile | None  # None for a bulk-import JSON document

    @property
    def label(self) -> str:
        return f"{self.data_source}/{self.path.name}" if self.data_source else self.path.name


@dataclass
class Batch:
    batch_id: str
    batch_seq: int
    data_source: str | None
    file: str
    entity: str
    rows: int
    first_batch_id: str = ""  # the batch this file's content started with; itself unless appended
    size: int | None = None  # bytes of the file this batch (with those before it) covers

    @property
    def appended(self) -> bool:
        return self.first_batch_id not in ("", self.batch_id)


@dataclass(frozen=True)
class PreviousLoad:
    """What the latest batch of a file recorded: enough to recognise an appended file."""

    sha256: str
    size: int | None
    first_batch_id: str
    rows_so_far: int  # records of the file loaded by its batches since first_batch_id


@dataclass
class IngestResult:
    loaded: list[Batch] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def discover(data_dir: Path) -> tuple[list[InputDocument], list[str]]:
    """The input files of a data folder, in load order, and warnings naming every entry not read.

    Files are read only inside the data folder: a symbolic link whose target leaves it is refused
    (and never opened), hidden entries are skipped with a warning, and operating-system litter such
    as `.DS_Store` is named once, in one warning, so it does not drown the others."""
    if not data_dir.is_dir():
        raise ConfigError(f"{data_dir}: data folder not found")
    root = data_dir.resolve()
    documents: list[InputDocument] = []
    warnings: list[str] = []
    litter: list[str] = []
    account_names = {f.filename: f for f in ACCOUNT_FILES}
    source_names = {f.filename: f for f in SOURCE_FILES}
    for path in sorted(data_dir.iterdir()):
        if path.name == SETTINGS_FILE or _skipped(path, path.name, root, warnings, litter):
            continue
        if path.is_dir():
            documents += _discover_source(path, source_names, root, warnings, litter)
        elif path.name in account_names and path.is_file():
            documents.append(InputDocument(path, None, account_names[path.name]))
        else:
            warnings.append(f"{path.name}: not an account-level input file; ignored")
    if litter:
        warnings.append(f"system files ignored: {', '.join(litter)}")
    documents.sort(key=lambda d: (_load_order(d), d.data_source or "", d.path.name))
    if not documents:
        raise ConfigError(f"{data_dir}: no input files found (expected source folders with CSV files)")
    return documents, warnings


def _skipped(path: Path, label: str, root: Path, warnings: list[str], litter: list[str]) -> bool:
    """Whether an entry is left unread; every such entry is named in `warnings` (or `litter`)."""
    if path.is_symlink():
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            warnings.append(f"{label}: a symbolic link to nothing (broken); ignored")
            return True
        if not target.is_relative_to(root):
            warnings.append(f"{label}: a symbolic link to a place outside the data folder; refused")
            return True
    if path.name in SYSTEM_LITTER or path.name.startswith("._"):
        litter.append(label)
        return True
    if path.name.startswith("."):
        warnings.append(f"{label}: a hidden entry (its name starts with '.'); ignored")
        return True
    return False


def _discover_source(folder: Path, source_names: dict[str, InputFile], root: Path, warnings: list[str],
                     litter: list[str]) -> list[InputDocument]:
    """The input files of one source folder; warnings name every other entry."""
    found = []
    for path in sorted(folder.iterdir()):
        label = f"{folder.name}/{path.name}"
        if _skipped(path, label, root, warnings, litter):
            continue
        if path.name in source_names and path.is_file():
            found.append(InputDocument(path, folder.name, source_names[path.name]))
        elif path.suffix == ".json" and path.is_file():
            found.append(InputDocument(path, folder.name, None))
        else:
            warnings.append(f"{label}: not an input file; ignored")
    return found


def _load_order(document: InputDocument) -> int:
    return -1 if document.spec is None else INPUT_FILES.index(document.spec)


def create_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Every raw table exists, even for files nobody sent, so models always have a source."""
    con.execute("create schema if not exists raw")
    con.execute(
        "create table if not exists raw.import_batches (batch_id varchar primary key, batch_seq integer,"
        " data_source varchar, file varchar, entity varchar, sha256 varchar, rows bigint,"
        " loaded_at timestamp)"
    )
    # added for appended files; warehouses created before them get the columns empty
    con.execute("alter table raw.import_batches add column if not exists bytes bigint")
    con.execute("alter table raw.import_batches add column if not exists first_batch_id varchar")
    for spec in INPUT_FILES:
        columns = ", ".join(f'"{c}" varchar' for c in spec.column_names)
        con.execute(
            f"create table if not exists raw.{spec.name} (data_source varchar, batch_id varchar,"
            f" batch_seq integer, file varchar, line bigint, loaded_at timestamp, {columns}, extra varchar)"
        )
        for column in PARSE_COLUMNS:  # after extra, in warehouses created before them too
            con.execute(f"alter table raw.{spec.name} add column if not exists {column} varchar")


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def hash_with_prefix(path: Path, prefix_size: int | None) -> tuple[str, str | None, bool]:
    """In one pass: the file's sha256, the sha256 of its first `prefix_size` bytes, and whether
    that prefix ends with a line break (so the bytes after it start a new record)."""
    whole = hashlib.sha256()
    prefix_digest: str | None = None
    done = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            if prefix_size is not None and prefix_digest is None and done + len(chunk) >= prefix_size:
                cut = prefix_size - done
                whole.update(chunk[:cut])
                prefix_digest = whole.copy().hexdigest()
                whole.update(chunk[cut:])
            else:
                whole.update(chunk)
            done += len(chunk)
        ends_line = False
        if prefix_digest is not None and prefix_size:
            handle.seek(prefix_size - 1)
            ends_line = handle.read(1) == b"\n"
    return whole.hexdigest(), prefix_digest, ends_line


def ingest(con: duckdb.DuckDBPyConnection, data_dir: Path,
           on_file: Callable[[InputDocument], None] | None = None) -> IngestResult:
    """Load every changed file of `data_dir` as a new batch; unchanged files are skipped."""
    documents, warnings = discover(data_dir)
    result = IngestResult(warnings=warnings)
    create_raw_tables(con)
    for document in documents:
        if on_file:
            on_file(document)
        previous = _previous_load(con, document)
        size = document.path.stat().st_size
        sha, prefix_sha, prefix_ends_line = hash_with_prefix(
            document.path, previous.size if previous and previous.size and previous.size < size else None)
        if previous and previous.sha256 == sha:
            result.unchanged.append(document.label)
            continue
        appending = (
            previous is not None and document.spec is not None and prefix_ends_line
            and prefix_sha == previous.sha256 and not _sibling_reloaded(document, result)
        )
        after = previous if appending else None
        try:
            batches = _in_transaction(con, document, sha, result.warnings, after, by_record=False)
        except _StrictReadStopped:  # a failed statement ends DuckDB's transaction: start the file again
            batches = _in_transaction(con, document, sha, result.warnings, after, by_record=True)
        result.loaded += batches
    return result


def _in_transaction(con: duckdb.DuckDBPyConnection, document: InputDocument, sha: str, warnings: list[str],
                    previous: PreviousLoad | None, by_record: bool) -> list[Batch]:
    """The file's batches, loaded in one transaction: a file is loaded whole or not at all."""
    con.execute("begin transaction")
    try:
        batches = _load_document(con, document, sha, warnings, previous, by_record)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return batches


def _load_document(con: duckdb.DuckDBPyConnection, document: InputDocument, sha: str, warnings: list[str],
                   previous: PreviousLoad | None, by_record: bool) -> list[Batch]:
    """The batches of one file: a JSON document's entities, or a CSV file (appended after `previous`)."""
    if document.spec is None:
        return list(_load_json_document(con, document, sha, warnings))
    return [_load_csv(con, document, document.spec, sha, warnings, previous, by_record)]


def _previous_load(con: duckdb.DuckDBPyConnection, document: InputDocument) -> PreviousLoad | None:
    row = con.execute(
        """select latest.sha256, latest.bytes, coalesce(latest.first_batch_id, latest.batch_id),
                  (select sum(part.rows) from raw.import_batches part
                   where coalesce(part.first_batch_id, part.batch_id)
                         = coalesce(latest.first_batch_id, latest.batch_id))
        from raw.import_batches latest where latest.data_source is not distinct from ? and latest.file = ?
        order by latest.batch_seq desc limit 1""",
        [document.data_source, document.path.name],
    ).fetchone()
    return PreviousLoad(row[0], row[1], row[2], int(row[3] or 0)) if row else None


def _sibling_reloaded(document: InputDocument, result: IngestResult) -> bool:
    """Whether another file of the same source and entity got a new batch in this run (a JSON
    document loads before the CSV files): a whole-file batch then keeps their order as a fresh load."""
    return any(
        batch.data_source == document.data_source and batch.entity == (document.spec.name if document.spec else "")
        and batch.file != document.path.name
        for batch in result.loaded
    )


def _new_batch(con: duckdb.DuckDBPyConnection, document: InputDocument, entity: str, sha: str) -> Batch:
    seq = con.execute("select coalesce(max(batch_seq), 0) + 1 from raw.import_batches").fetchone()[0]
    digest = hashlib.sha256(f"{document.data_source}/{document.path.name}/{entity}/{sha}".encode()).hexdigest()
    batch_id = f"{seq:06d}-{digest[:10]}"
    return Batch(batch_id, seq, document.data_source, document.path.name, entity, 0, batch_id,
                 document.path.stat().st_size)


def _record_batch(con: duckdb.DuckDBPyConnection, batch: Batch, sha: str) -> None:
    con.execute(
        "insert into raw.import_batches (batch_id, batch_seq, data_source, file, entity, sha256, rows, loaded_at,"
        " bytes, first_batch_id) values (?, ?, ?, ?, ?, ?, ?, now()::timestamp, ?, ?)",
        [batch.batch_id, batch.batch_seq, batch.data_source, batch.file, batch.entity, sha, batch.rows,
         batch.size, batch.first_batch_id],
    )


def read_header(path: Path) -> list[str]:
    """The header row's column names, normalised to lower case; clear errors for unusable headers."""
    with path.open("rb") as handle:
        first = next(physical_lines(handle), b"").rstrip(b"\r\n")  # a header may end in LF, CRLF or CR
    if not first.strip():
        raise FileFormatError(path, 1, "empty file: expected a header row with column names")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise FileFormatError(path, 1, f"not UTF-8 text (byte {error.start + 1} of the line)") from error
    names = [name.strip().lower() for name in next(csv.reader(io.StringIO(text)))]
    if len(names) == 1:
        _check_delimiter(path, names[0])
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        if not name:
            raise FileFormatError(path, 1, f"header column {position} has no name")
        if name in seen:
            raise FileFormatError(path, 1, "column appears twice in the header", column=name)
        seen.add(name)
    return names


def _check_delimiter(path: Path, header: str) -> None:
    """Refuse a file written with another delimiter, naming it: its header is one comma-less name."""
    counts = [(header.count(mark), mark, name) for mark, name in OTHER_DELIMITERS]
    found, _, name = max(counts)
    if found:
        raise FileFormatError(
            path, 1, f"not comma-separated: the header seems to use {name} as the delimiter;"
            " save the file as CSV with commas")


def _check_header(path: Path, spec: InputFile, names: list[str]) -> None:
    required = [c.name for c in spec.columns if c.required]
    missing = [name for name in required if name not in names]
    if missing:
        raise FileFormatError(
            path, 1,
            f"the header has no {', '.join(missing)} column (required). Found: {', '.join(names)}."
            " Is the header row missing?",
        )


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class _StrictReadStopped(Exception):
    """DuckDB's strict pass over a CSV file stopped at a row: the file is read again record by record."""


def _load_csv(con: duckdb.DuckDBPyConnection, document: InputDocument, spec: InputFile, sha: str,
              warnings: list[str], previous: PreviousLoad | None = None, by_record: bool = False) -> Batch:
    """Load a CSV file as one batch, or with `previous`, only the bytes after its previous load.

    First in one strict DuckDB pass (fast; raises _StrictReadStopped at a bad row), or `by_record`:
    split into records in Python first (openmrr.csv_records), so bad rows are kept with their reason
    and the others load as usual."""
    path = document.path
    names = read_header(path)
    _check_header(path, spec, names)
    unknown = [n for n in names if n not in spec.column_names]
    position = {name: i for i, name in enumerate(names)}
    reader_columns = ", ".join(f"'c{i}': 'varchar'" for i in range(len(names)))
    known = ", ".join(
        f"c{position[c]}" if c in position else "null" for c in spec.column_names
    )
    extra = (
        # merging into {} drops the null members: a row with no unknown values has no extra
        "nullif(json_merge_patch('{}', json_object("
        + ", ".join(f"{_sql_literal(n)}, c{position[n]}" for n in unknown) + "))::varchar, '{}')"
        if unknown else "null"
    )
    batch = _new_batch(con, document, spec.name, sha)
    first_line = 1
    with tempfile.TemporaryDirectory(prefix="openmrr-read-") as scratch:
        read_path = path
        if previous is not None:
            batch.first_batch_id = previous.first_batch_id
            first_line += previous.rows_so_far
            read_path = _appended_part(path, previous.size or 0, Path(scratch))
        values = [document.data_source, batch.batch_id, batch.batch_seq, path.name]
        if by_record:
            _insert_by_record(con, spec, read_path, Path(scratch), first_line, len(names), f"{known}, {extra}",
                              values, path)
        else:
            try:
                con.execute(
                    f"""insert into raw.{spec.name}
                    select ?, ?, ?, ?, row_number() over () + ?, now()::timestamp, {known}, {extra}, null, null, null
                    from read_csv(?, header = true, auto_detect = false, delim = ',', quote = '"', escape = '"',
                                  strict_mode = true, encoding = 'utf-8', columns = {{{reader_columns}}})""",
                    [*values, first_line, str(read_path)],
                )
            except duckdb.Error as error:  # the record-by-record pass names the row, or the byte not UTF-8
                raise _StrictReadStopped(str(error)) from error
    if unknown:
        warnings.append(f"{document.label}: unknown columns kept as extra: {', '.join(unknown)}")
    batch.rows = con.execute(
        f"select count(*) from raw.{spec.name} where batch_id = ?", [batch.batch_id]
    ).fetchone()[0]
    _record_batch(con, batch, sha)
    return batch


def _insert_by_record(con: duckdb.DuckDBPyConnection, spec: InputFile, read_path: Path, scratch: Path,
                      first_line: int, width: int, selected: str, values: list, path: Path) -> None:
    """Insert a file's rows record by record: readable ones parsed by DuckDB as in the strict pass,
    each of the others as a row holding its verbatim text and why it could not be read."""
    normalised = scratch / "records.csv"
    split = split_records(read_path, normalised, first_line, single_column=width == 1)
    reader_columns = ", ".join(["'_line': 'varchar'", *(f"'c{i}': 'varchar'" for i in range(width))])
    con.execute("drop table if exists _record_rejects")
    con.execute("drop table if exists _record_reject_scans")
    try:
        con.execute(
            f"""create or replace temp table _records as
            select try_cast(_line as bigint) as line, * exclude (_line)
            from read_csv(?, header = true, auto_detect = false, delim = ',', quote = '"', escape = '"',
                          strict_mode = true, encoding = 'utf-8', max_line_size = {MAX_RECORD_BYTES + 64},
                          store_rejects = true, rejects_table = '_record_rejects',
                          rejects_scan = '_record_reject_scans', columns = {{{reader_columns}}})""",
            [str(normalised)],
        )
    except duckdb.Error as error:  # not expected: every record was checked on the way in
        raise _csv_error(path, error) from error
    rejected = split.rejected + _duckdb_rejects(con, split, normalised)
    # a row DuckDB returned for a line it also rejected, or twice, or for no line written, is not loaded
    con.execute(
        """create or replace temp table _records as select * from _records
        where line between ? and ? and line not in (select unnest(?::bigint[]))
        qualify count(*) over (partition by line) = 1""",
        [first_line + 1, first_line + split.records, [r.line for r in rejected]],
    )
    con.execute(
        f"insert into raw.{spec.name} select ?, ?, ?, ?, line, now()::timestamp, {selected}, null, null, null"
        " from _records", values)
    loaded = con.execute("select count(*) from _records").fetchall()[0][0]  # fetched whole: register() waits for it
    if loaded + len(rejected) < split.records:
        rejected += _unreadable(con, split, normalised, {r.line for r in rejected})
    if rejected:
        import pandas  # only for files with bad rows: it takes a while to import

        frame = pandas.DataFrame({
            "line": [r.line for r in rejected], "text": [r.text for r in rejected],
            "rule": [r.rule for r in rejected], "message": [r.message for r in rejected],
        })
        con.register("_rejected_records", frame)
        try:
            con.execute(
                f"insert into raw.{spec.name} (data_source, batch_id, batch_seq, file, line, loaded_at,"
                f" {', '.join(PARSE_COLUMNS)}) select ?, ?, ?, ?, line, now()::timestamp, text, rule, message"
                " from _rejected_records", values)
        finally:
            con.unregister("_rejected_records")


def _duckdb_rejects(con: duckdb.DuckDBPyConnection, split: Split, normalised: Path) -> list[Rejected]:
    """The records DuckDB refused in the normalised file (each line starts with its line number), one
    reason per record: a quote problem before a field count, the fewest fields found first."""
    reasons: dict[int, tuple[tuple[int, int], str, str]] = {}
    for csv_line, error_type, message in con.execute(
            "select csv_line, error_type, error_message from _record_rejects").fetchall():
        number = re.match(r"(\d+),", csv_line or "")
        line = int(number.group(1)) if number else None
        if line is None or not _was_written(split, line):
            continue
        counts = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", message or "")
        rank = (0 if error_type == "UNQUOTED VALUE" else 1, int(counts.group(2)) if counts else 0)
        if line not in reasons or rank < reasons[line][0]:
            reasons[line] = (rank, error_type, message or "")
    return [
        Rejected(line, split.written_text(normalised, line), *_reject_reason(error_type, message))
        for line, (_, error_type, message) in sorted(reasons.items())
    ]


def _was_written(split: Split, line: int) -> bool:
    index = bisect.bisect_left(split.written_lines, line)
    return index < len(split.written_lines) and split.written_lines[index] == line


def _reject_reason(error_type: str, message: str) -> tuple[str, str]:
    """(rule, message) for a row DuckDB's reader refused."""
    if error_type in ("MISSING COLUMNS", "TOO MANY COLUMNS"):
        counts = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", message)
        if counts:  # the normalised file has one more field, the line number, in front
            return "field_count", (f"row has {int(counts.group(2)) - 1} fields where the header has"
                                   f" {int(counts.group(1)) - 1}")
        return "field_count", "row has the wrong number of fields"
    if error_type == "UNQUOTED VALUE":
        return "bad_quote", BAD_QUOTE
    if error_type == "LINE SIZE OVER MAXIMUM":
        return "line_too_long", f"row is longer than {MAX_RECORD_BYTES:,} bytes"
    return "unreadable", f"the CSV reader could not read this row: {message.splitlines()[0] if message else error_type}"


def _unreadable(con: duckdb.DuckDBPyConnection, split: Split, normalised: Path, rejected: set[int]) -> list[Rejected]:
    """Records written for DuckDB that it neither returned once nor rejected (a safety net: raw rows are
    never lost)."""
    loaded = {line for (line,) in con.execute("select line from _records").fetchall()}
    return [
        Rejected(line, split.written_text(normalised, line), "unreadable",
                 "the CSV reader could not read this row on its own")
        for line in split.written_lines if line not in loaded and line not in rejected
    ]


def _appended_part(path: Path, loaded_size: int, scratch: Path) -> Path:
    """The file's header line followed by the bytes after `loaded_size`, as a file DuckDB can read."""
    part = scratch / path.name
    with path.open("rb") as source, part.open("wb") as target:
        target.write(source.readline())
        source.seek(loaded_size)
        while chunk := source.read(1 << 20):
            target.write(chunk)
    return part


def _is_encoding_error(error: duckdb.Error) -> bool:
    message = str(error).lower()
    return "unicode" in message or "utf-8" in message or "utf8" in message or "encoding" in message


def _csv_error(path: Path, error: duckdb.Error, lines_before: int = 0) -> FileFormatError:
    """A clear error for a file DuckDB could not read, naming its real cause; `lines_before` rows
    precede an appended part."""
    message = str(error)
    found = CSV_ERROR_LINE.search(message)
    line = int(found.group(1)) + lines_before if found else None
    if _is_encoding_error(error):
        problem = NOT_UTF8
    elif "Expected Number of Columns" in message:
        counts = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", message)
        problem = (
            f"row has {counts.group(2)} fields where the header has {counts.group(1)}"
            if counts else "row has the wrong number of fields"
        )
    elif "unterminated quote" in message.lower():
        problem = "a quoted value is never closed"
    elif "maximum line size" in message.lower():
        problem = f"a row is longer than {MAX_RECORD_BYTES:,} bytes"
    else:
        problem = "cannot be read as CSV: " + message.splitlines()[0].removeprefix("Invalid Input Error: ")
    return FileFormatError(path, line, problem)


def _json_columns(spec: InputFile, object_sql: str, parent_key: str | None) -> tuple[str, list[str]]:
    """SELECT expressions for a contract's columns from a JSON object, and the keys they read.

    A nested record (a line item inside its invoice) takes its missing invoice_external_id from
    `parent_key`, the parent's external_id."""
    expressions = []
    known_keys = []
    for column in spec.columns:
        plain = f"{object_sql}->>{_sql_literal(column.name)}"
        known_keys.append(column.name)
        if parent_key and column.name == "invoice_external_id":
            expressions.append(f"coalesce({plain}, {parent_key})")
        elif column.type == "money":
            cents_key = f"{column.name}_in_cents"
            known_keys.append(cents_key)
            cents = f"{object_sql}->>{_sql_literal(cents_key)}"
            # Integer cents to an exact decimal text; anything else is kept for the money rule to reject.
            expressions.append(
                f"coalesce({plain}, case when regexp_full_match({cents}, '-?[0-9]+')"
                f" then cast(cast({cents} as decimal(38, 0)) * 0.01 as varchar)"
                f" else {cents} || ' cents' end)"
            )
        else:
            expressions.append(plain)
    return ", ".join(expressions), known_keys


def _load_json_document(con: duckdb.DuckDBPyConnection, document: InputDocument, sha: str,
                        warnings: list[str]) -> Iterator[Batch]:
    path = document.path
    size = path.stat().st_size + 1
    try:
        con.execute(
            "create or replace temp table json_document as select json from read_json_objects("
            "?, format = 'unstructured', maximum_object_size = ?)",
            [str(path), max(size, 16 * 1024 * 1024)],
        )
    except duckdb.Error as error:
        raise FileFormatError(path, None, f"not a valid JSON document ({str(error).splitlines()[0]})") from error
    top_keys = {key for (key,) in con.execute("select unnest(json_keys(json)) from json_document").fetchall()}
    unknown = sorted(top_keys - {entity for entity, _, parent in JSON_ENTITIES if parent is None})
    if unknown:
        warnings.append(f"{document.label}: unknown sections ignored: {', '.join(unknown)}")
    for entity, file_name, parent in JSON_ENTITIES:
        spec = FILES_BY_NAME[file_name]
        if parent is None:
            if entity not in top_keys:
                continue
            rows = f"from json_document d, json_each(d.json, '$.{entity}') e"
            order = "e.key::integer"
            parent_key = None
        else:
            rows = (f"from json_document d, json_each(d.json, '$.{parent}') p,"
                    f" json_each(p.value, '$.{entity}') e")
            order = "p.key::integer, e.key::integer"
            parent_key = "p.value->>'external_id'"
        columns, known_keys = _json_columns(spec, "e.value", parent_key)
        patch = "{" + ", ".join(f'"{k}": null' for k in [*known_keys, "line_items", "transactions"]) + "}"
        batch = _new_batch(con, document, entity, sha)
        con.execute(
            f"""insert into raw.{spec.name}
            select ?, ?, ?, ?, row_number() over (order by {order}), now()::timestamp, {columns},
                   nullif(json_merge_patch(e.value, {_sql_literal(patch)})::varchar, '{{}}'), null, null, null
            {rows}""",
            [document.data_source, batch.batch_id, batch.batch_seq, path.name],
        )
        batch.rows = con.execute(
            f"select count(*) from raw.{spec.name} where batch_id = ?", [batch.batch_id]
        ).fetchone()[0]
        if batch.rows == 0:
            continue
        _record_batch(con, batch, sha)
        yield batch


