"""Property: whatever a data file holds, ingest + validate (what `openmrr validate` and `run` call) never
raise anything but FileFormatError, and that only for the whole-file cases of inputs.md "Bad input" (not
UTF-8, no header, empty, not comma-separated); a row problem never fails the file, and every record of
the file is kept in raw (its values, or its verbatim text with the reason it is quarantined)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openmrr.errors import FileFormatError
from openmrr.ingest import ingest
from openmrr.quality import validate

HEADER = ["external_id", "name", "interval_count", "interval_unit"]
WHOLE_FILE_PROBLEMS = ("not UTF-8 text", "empty file", "the header has no", "not comma-separated",
                       "header column", "column appears twice", "the header row opens a quoted value")
FUZZ = settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])

values = st.one_of(
    st.text(alphabet=st.sampled_from(list('ab1 ,"\r\n;|\té\x00')), max_size=8),
    st.sampled_from(["", "m", "Monthly", "1", "month", " padded ", "x" * 2_100_000]),
)
plain = st.text(alphabet=st.sampled_from(list("abc123 ")), min_size=1, max_size=5).filter(str.strip)
endings = st.sampled_from(["\n", "\r\n", "\r"])


def quoted(value: str) -> str:
    """A value as a CSV writer writes it: quoted when it holds a quote, comma or line break."""
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in '",\r\n') else value


@st.composite
def good_rows(draw) -> tuple[str, tuple[str | None, ...]]:
    row = [draw(values) for _ in HEADER]
    return ",".join(quoted(v) for v in row), tuple(v or None for v in row)


@st.composite
def bad_rows(draw) -> tuple[str, None]:
    count = draw(st.sampled_from([1, 2, 3, 5, 6]))
    return ",".join(draw(plain) for _ in range(count)), None


@st.composite
def data_files(draw) -> tuple[bytes, list[tuple[str, tuple | None]]]:
    """A plans.csv file of good and bad rows with any line endings, and what each record should become."""
    rows = draw(st.lists(st.one_of(good_rows(), bad_rows()), max_size=6))
    text = ",".join(HEADER) + draw(endings)
    for index, (row, _) in enumerate(rows):
        text += row + (draw(st.sampled_from(["", "\n", "\r"])) if index == len(rows) - 1 else draw(endings))
    return text.encode("utf-8"), rows


def _load(content: bytes) -> tuple[duckdb.DuckDBPyConnection | None, FileFormatError | None]:
    """Ingest and validate a data folder whose only file is app/plans.csv holding `content`."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "app" / "plans.csv"
        path.parent.mkdir()
        path.write_bytes(content)
        con = duckdb.connect()
        try:
            ingest(con, Path(scratch))
        except FileFormatError as error:
            return None, error
        validate(con)
        return con, None


def _assert_every_record_kept(con: duckdb.DuckDBPyConnection, text: str) -> None:
    """Lines run 2..n+1 without a gap; a record not split into fields is quarantined with its verbatim
    text under its parse rule, every other quarantined row under a validation rule."""
    rows = con.execute("select line, raw_record, parse_rule from raw.plans order by line").fetchall()
    assert [line for line, _, _ in rows] == list(range(2, len(rows) + 2))
    for _, raw_record, parse_rule in rows:
        assert (raw_record is None) == (parse_rule is None)
        if raw_record is not None:
            assert raw_record in text
    parse_rules = dict(con.execute("select line, parse_rule from raw.plans where parse_rule is not null").fetchall())
    quarantined = dict(con.execute("select line, rule from quarantine.plans").fetchall())
    assert {line: quarantined.get(line) for line in parse_rules} == parse_rules


@FUZZ
@given(data_files())
def test_good_rows_load_exactly_and_bad_rows_are_quarantined_with_their_text(file):
    content, rows = file
    con, error = _load(content)
    assert error is None, error
    _assert_every_record_kept(con, content.decode())
    loaded = con.execute("select line, external_id, name, interval_count, interval_unit, raw_record, parse_rule"
                         " from raw.plans order by line").fetchall()
    assert len(loaded) == len(rows)
    for (line, *columns, raw_record, rule), (text, expected) in zip(loaded, rows, strict=True):
        if expected is None:
            assert (raw_record, rule) == (text, "field_count"), line
        elif len(text) > 1_999_999:
            assert (raw_record, rule) == (text, "line_too_long"), line
        else:
            assert (tuple(columns), raw_record) == (expected, None), line


@FUZZ
@given(data_files(), st.binary(max_size=12), st.integers(min_value=0), st.sampled_from([",", ",", ";", "\t", "|"]),
       st.sampled_from(['', '"', '"\n', 'a"b', '""', '\r']))
def test_any_bytes_fail_only_the_whole_file_cases_and_keep_every_record(file, noise, where, delimiter, quote):
    content, _ = file
    cut = where % (len(content) + 1)
    content = content[:cut] + noise + quote.encode() + content[cut:]
    if delimiter != ",":
        content = content.replace(b",", delimiter.encode())
    con, error = _load(content)
    if error is not None:
        assert any(problem in error.problem for problem in WHOLE_FILE_PROBLEMS), error
        if delimiter != "," and "not comma-separated" not in error.problem:
            assert "UTF-8" in error.problem or "header" in error.problem, error
        return
    _assert_every_record_kept(con, content.decode("utf-8-sig"))
