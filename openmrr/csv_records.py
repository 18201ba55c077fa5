"""Split a CSV file into records in Python, for the files DuckDB's strict reader stops on.

A clean file is read by DuckDB in one strict, fast pass (openmrr.ingest). When that pass stops at a
row, the file is walked once here instead, so that one bad row never fails the whole file
(inputs.md, "Bad input"). Records are found the way DuckDB finds them: a quote opens a quoted value
only at the start of a field (or after one space), `""` inside one is a quote, and outside quotes every
line ending (LF, CRLF or a lone CR, mixed freely) ends the record. Blank lines are not records, as in
DuckDB, except in a one-column file (where they are empty values).

Each record then either goes on to DuckDB, as one line of a *normalised* file that starts with the
record's line number (so DuckDB still parses every value, exactly as in the fast pass, and its rejects
name the line), or is rejected here with its verbatim text: a record longer than DuckDB's row limit
(`line_too_long`), or a quote never closed (`unterminated_quote`: every line from that record to the end
of the file is rejected, each with its own line number, so the bad-row share counts them all).
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from openmrr.errors import FileFormatError

# DuckDB's read_csv refuses a row of max_line_size (2,000,000) bytes or more, line break excluded.
MAX_RECORD_BYTES = 1_999_999
NOT_UTF8 = "not UTF-8 text; save the file as UTF-8"
BAD_QUOTE = ("a quoted value is followed by other text before the next comma"
             ' (a quote inside a quoted value is written "")')


@dataclass(frozen=True)
class Rejected:
    """A record that could not be split into fields: its line, verbatim text and why."""

    line: int
    text: str
    rule: str
    message: str


@dataclass
class Split:
    """Where the records of a file went: the normalised file for DuckDB, or `rejected`."""

    written_lines: array = field(default_factory=lambda: array("q"))  # line of each normalised record
    written_offsets: array = field(default_factory=lambda: array("q"))  # its byte offset there
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def records(self) -> int:
        return len(self.written_lines) + len(self.rejected)

    def written_text(self, normalised: Path, line: int) -> str:
        """The verbatim text of a record written to `normalised` (its line-number field removed)."""
        index = bisect.bisect_left(self.written_lines, line)
        start = self.written_offsets[index]
        with normalised.open("rb") as handle:
            handle.seek(start)
            last = index + 1 == len(self.written_offsets)
            raw = handle.read() if last else handle.read(self.written_offsets[index + 1] - start)
        return raw.rstrip(b"\n").split(b",", 1)[1].decode("utf-8")


def physical_lines(handle: BinaryIO) -> Iterator[bytes]:
    """The file's physical lines, each with its line break (LF, CRLF or a lone CR)."""
    for chunk in handle:  # split at LF only; a lone CR inside a chunk ends a line too
        if b"\r" in chunk:
            yield from chunk.splitlines(keepends=True)
        else:
            yield chunk


def _content(piece: bytes) -> bytes:
    """A physical line without its line break."""
    if piece.endswith(b"\r\n"):
        return piece[:-2]
    if piece.endswith((b"\n", b"\r")):
        return piece[:-1]
    return piece


def scan_quotes(content: bytes, in_quotes: bool) -> tuple[bool, bool]:
    """(whether a physical line, without its break, ends inside a quoted value; whether text follows a
    closing quote other than spaces before a comma). `in_quotes` says whether the line starts inside a
    quoted value (it continues a record), else it starts a record.

    Text after a closing quote is refused here rather than left to DuckDB, whose reader may take such a
    quote as opening another value and so end the record elsewhere than this walk does."""
    position, size, misplaced = 0, len(content), False
    state = "quoted" if in_quotes else "field_start"
    while position < size:
        if state == "quoted":
            quote = content.find(b'"', position)
            if quote < 0:
                return True, misplaced
            if content[quote + 1:quote + 2] == b'"':  # an escaped quote
                position = quote + 2
                continue
            state, position = "closed", quote + 1
        elif state == "closed":
            rest = content[position:].lstrip(b" ")
            if rest and not rest.startswith(b","):
                misplaced = True
            state = "unquoted"
        elif state == "field_start":
            if content[position:position + 1] == b'"':
                state, position = "quoted", position + 1
            elif content[position:position + 2] == b' "':  # DuckDB opens a quote after one space too
                state, position = "quoted", position + 2
            else:
                state = "unquoted"
        else:
            comma = content.find(b",", position)
            if comma < 0:
                return False, misplaced
            state, position = "field_start", comma + 1
    return state == "quoted", misplaced


def _decode(path: Path, piece: bytes, line: int) -> str:
    try:
        return piece.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FileFormatError(path, line, NOT_UTF8) from error


def split_records(path: Path, normalised: Path, first_line: int, single_column: bool) -> Split:
    """Walk `path` (header first) and write its readable records to `normalised` as
    `<line>,<record>` lines under a `_line,<header>` header; the others are in `Split.rejected`.

    `first_line` is the line number before the first record (1, or more for an appended part).
    A byte that is not UTF-8 fails the whole file (FileFormatError naming the line)."""
    split = Split()
    line = first_line
    with path.open("rb") as source, normalised.open("wb") as target:
        lines = physical_lines(source)
        pieces = _header(path, lines)
        target.write(b"_line," + b"".join(pieces).rstrip(b"\r\n") + b"\n")
        offset = target.tell()
        pieces = []  # the physical lines of a record inside a quoted value, with their breaks
        misplaced_quote = False  # text after a closing quote in the record being read
        for piece in lines:
            if not pieces and b'"' not in piece:  # the common case: a whole record on one line
                record = piece.rstrip(b"\r\n")  # a record never ends in CR or LF: they end records
                if not record and not single_column:
                    continue  # a blank line is not a record (DuckDB skips it too)
                _decode(path, record, line + 1)
            else:
                _decode(path, piece, line + 1)
                pieces.append(piece)
                inside, misplaced = scan_quotes(_content(piece), in_quotes=len(pieces) > 1)
                misplaced_quote = misplaced_quote or misplaced
                if inside:
                    continue
                record = b"".join(pieces[:-1]) + _content(piece)
                pieces = []
            line += 1
            if len(record) > MAX_RECORD_BYTES:
                split.rejected.append(Rejected(
                    line, record.decode("utf-8"), "line_too_long",
                    f"row is {len(record):,} bytes long; a row may have at most {MAX_RECORD_BYTES:,}"))
                continue
            if misplaced_quote:
                misplaced_quote = False
                split.rejected.append(Rejected(line, record.decode("utf-8"), "bad_quote", BAD_QUOTE))
                continue
            written = b"%d,%b\n" % (line, record)
            split.written_lines.append(line)
            split.written_offsets.append(offset)
            target.write(written)
            offset += len(written)
        if pieces:
            split.rejected += _unterminated(pieces, line + 1)
    return split


def _header(path: Path, lines: Iterator[bytes]) -> list[bytes]:
    """The physical lines of the header record (a BOM removed)."""
    pieces: list[bytes] = []
    for piece in lines:
        if not pieces:
            piece = piece.removeprefix(b"\xef\xbb\xbf")
        _decode(path, piece, 1)
        pieces.append(piece)
        if not scan_quotes(_content(piece), in_quotes=len(pieces) > 1)[0]:
            return pieces
    raise FileFormatError(path, 1, "the header row opens a quoted value that is never closed")


def _unterminated(pieces: list[bytes], line: int) -> list[Rejected]:
    """The lines of a record whose quote is never closed: each line to the end of the file, rejected."""
    contents = [_content(piece) for piece in pieces]
    contents = [contents[0], *(content for content in contents[1:] if content)]  # blank lines are not records
    after = len(contents) - 1
    first = Rejected(
        line, contents[0].decode("utf-8"), "unterminated_quote",
        "a quoted value opened in this row is never closed: this row and the"
        f" {after} line(s) after it, to the end of the file, are quarantined")
    return [first, *(
        Rejected(line + offset, content.decode("utf-8"), "unterminated_quote",
                 f"quarantined with line {line}, whose quoted value is never closed")
        for offset, content in enumerate(contents[1:], start=1)
    )]
