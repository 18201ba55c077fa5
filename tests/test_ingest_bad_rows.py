"""inputs.md "Bad input": one bad row never fails a whole file.

A row with too few or too many fields, an over-long line, or an unterminated quote (from its row to the
end of the file) is kept in raw with its verbatim text and quarantined under its rule; the rest of the
file loads and validates as usual. Files may mix CRLF and LF endings. Only a file that cannot be read at
all (not UTF-8, no header, empty, another delimiter) fails, naming the real cause.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from openmrr import pipeline
from openmrr.cli import app
from openmrr.errors import FileFormatError
from openmrr.generate import GeneratorOptions, generate_data_folder
from openmrr.ingest import ingest
from openmrr.quality import validate
from orchestration.refresh import refresh
from tests.helpers import base_rows, check_folder, write_folder
from tests.test_benchmarks import COMPARED_DATASETS, _rows
from tests.test_ingest_append import append_rows, new_item

OVER_LONG = 2_100_000  # DuckDB's read_csv stops at rows of 2,000,000 bytes


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _replace_line(path: Path, index: int, text: bytes | None) -> bytes:
    """Replace physical line `index` (0 = header) with `text` (None removes it); return the old line."""
    lines = _lines(path)
    old = lines[index]
    lines[index:index + 1] = [] if text is None else [text]
    path.write_bytes(b"".join(lines))
    return old.rstrip(b"\r\n")


def _break_files(bad: Path, clean: Path) -> dict[str, object]:
    """Bad rows in `bad`, and `clean` with the same rows left out; returns what was written where."""
    source = "stripe_us"
    items, clean_items = bad / source / "line_items.csv", clean / source / "line_items.csv"
    # the clean folder loses the rows the bad one corrupts; later rows go first so indexes hold
    short = _replace_line(items, 12, None)
    _replace_line(clean_items, 12, None)
    long = _replace_line(items, 5, None)
    _replace_line(clean_items, 5, None)
    lines = _lines(items)
    short_text = b",".join(short.split(b",")[:3])
    long_text = long + b",one too many"
    lines[5:5] = [long_text + b"\n"]
    lines[12:12] = [short_text + b"\n"]
    items.write_bytes(b"".join(lines))

    contacts = bad / source / "contacts.csv"
    contact = _lines(contacts)[3].rstrip(b"\r\n").split(b",")
    over_long = b",".join([*contact[:-1], b"x" * OVER_LONG])
    _replace_line(contacts, 3, over_long + b"\n")
    _replace_line(clean / source / "contacts.csv", 3, None)

    invoices = bad / source / "invoices.csv"  # every other line ends in CRLF: nothing is lost or changed
    invoices.write_bytes(b"".join(
        line.replace(b"\n", b"\r\n") if index % 2 else line for index, line in enumerate(_lines(invoices))))

    transactions = bad / source / "transactions.csv"  # the quote of the second-to-last row is never closed
    tail = _lines(transactions)[-2:]
    unclosed = tail[0].rstrip(b"\n").split(b",")
    unclosed[1] = b'"' + unclosed[1]
    _replace_line(transactions, len(_lines(transactions)) - 2, b",".join(unclosed) + b"\n")
    clean_transactions = clean / source / "transactions.csv"
    clean_transactions.write_bytes(b"".join(_lines(clean_transactions)[:-2]))
    return {"short": short_text.decode(), "long": long_text.decode(), "over_long": over_long.decode(),
            "unclosed": b",".join(unclosed).decode(), "last": tail[1].rstrip(b"\n").decode(),
            "transactions": len(_lines(transactions)) - 1}


def test_bad_rows_are_quarantined_with_file_line_and_text_and_the_other_numbers_equal_a_clean_run(tmp_path):
    clean = tmp_path / "clean"
    generate_data_folder(GeneratorOptions(customers=40, seed=11, start="2023-01-01", months=12), clean)
    with (clean / "openmrr.yml").open("a") as settings:  # a generated source has few contacts: 1 bad is 20%
        settings.write("max_bad_row_share: 0.25\n")
    bad = tmp_path / "bad"
    shutil.copytree(clean, bad)
    written = _break_files(bad, clean)

    refresh(clean, tmp_path / "clean.duckdb")
    result = refresh(bad, tmp_path / "bad.duckdb")  # no file fails, and no file passes the threshold

    with pipeline.connect(tmp_path / "bad.duckdb") as con:
        quarantined = con.execute(
            "select data_source, file, line, rule, raw_record from quarantine.line_items"
            " where rule = 'field_count' order by line").fetchall()
        assert quarantined == [("stripe_us", "line_items.csv", 6, "field_count", written["long"]),
                               ("stripe_us", "line_items.csv", 13, "field_count", written["short"])]
        assert con.execute("select line, rule, raw_record = ? from quarantine.contacts", [written["over_long"]]
                           ).fetchall() == [(4, "line_too_long", True)]
        last = written["transactions"] + 1
        tail = con.execute("select line, rule, raw_record, message from quarantine.transactions order by line"
                           ).fetchall()
        assert [row[:3] for row in tail] == [(last - 1, "unterminated_quote", written["unclosed"]),
                                             (last, "unterminated_quote", written["last"])]
        assert "never closed" in tail[0][3] and "to the end of the file" in tail[0][3]
        assert con.execute("select count(*) from raw.invoices where data_source = 'stripe_us'"
                           " and (external_id like '%\r%' or currency like '%\r%' or date like '%\r%')"
                           ).fetchone()[0] == 0
        report = {r.label: r for r in result.reports}
        assert report["stripe_us/line_items.csv"].top_rules == [("field_count", 2)]
    for dataset in COMPARED_DATASETS:
        if dataset != "activity_sources":  # its lineage names input lines, which the left-out rows shift
            assert _rows(tmp_path / "bad.duckdb", dataset) == _rows(tmp_path / "clean.duckdb", dataset), dataset


def test_a_file_mixing_crlf_and_lf_endings_loads_every_row_unchanged(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    path = folder / "app" / "line_items.csv"
    lines = _lines(path)
    expected = duckdb.connect()
    ingest(expected, folder)
    path.write_bytes(lines[0].replace(b"\n", b"\r\n") + lines[1] + lines[2].replace(b"\n", b"\r\n"))
    con = duckdb.connect()
    ingest(con, folder)
    query = "select * exclude (batch_id, loaded_at) from raw.line_items order by line"
    assert con.execute(query).fetchall() == expected.execute(query).fetchall()


def test_rows_after_a_bad_row_keep_their_line_numbers_in_an_appended_batch(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    con = duckdb.connect()
    ingest(con, folder)
    validate(con)
    path = folder / "app" / "line_items.csv"
    append_rows(path, [new_item("l3")])
    with path.open("a", encoding="utf-8") as handle:
        handle.write("i1,l4\n")
    append_rows(path, [new_item("l5", month=3)])
    ingest(con, folder)
    validate(con)  # incremental: only the appended batch is checked
    assert con.execute("select line, external_id, raw_record from raw.line_items order by line").fetchall() == [
        (2, "l1", None), (3, "l2", None), (4, "l3", None), (5, None, "i1,l4"), (6, "l5", None)]
    query = "select line, rule, message, raw_record from quarantine.line_items order by line"
    assert con.execute(query).fetchall() == [
        (5, "field_count", "row has 2 fields where the header has 12", "i1,l4")]
    fresh, _ = check_folder(folder)  # the whole file in one batch, validated from scratch
    assert fresh.execute(query).fetchall() == con.execute(query).fetchall()


def test_a_quote_followed_by_text_is_quarantined_alone(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    path = folder / "app" / "plans.csv"
    path.write_text(path.read_text() + 'q,"Quarterly"ish,3,month\nw,Weekly,7,day\n')
    con, _ = check_folder(folder)
    assert con.execute("select line, rule, raw_record from quarantine.plans").fetchall() == [
        (4, "bad_quote", 'q,"Quarterly"ish,3,month')]
    assert con.execute("select external_id from raw.plans where line = 5").fetchone() == ("w",)


@pytest.mark.parametrize(("delimiter", "named"), [(";", "semicolons (';')"), ("\t", "tabs"), ("|", "pipes ('|')")])
def test_a_file_with_another_delimiter_fails_naming_it(tmp_path, delimiter, named):
    folder = write_folder(tmp_path / "data", base_rows())
    path = folder / "app" / "plans.csv"
    path.write_text(path.read_text().replace(",", delimiter))
    result = CliRunner().invoke(app, ["validate", "--data", str(folder)], catch_exceptions=False)
    assert result.exit_code == 1
    assert f"line 1: not comma-separated: the header seems to use {named} as the delimiter" in result.output
    assert "unterminated" not in result.output and "Traceback" not in result.output


def test_bytes_that_are_not_utf8_after_a_bad_row_still_fail_the_file(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    path = folder / "app" / "plans.csv"
    path.write_bytes(path.read_bytes() + b"q,Quarterly\n" + "w,Caf\u00e9,1,week\n".encode("latin-1"))
    with pytest.raises(FileFormatError, match=r"plans.csv, line 5: not UTF-8 text"):
        ingest(duckdb.connect(), folder)
