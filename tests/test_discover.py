"""inputs.md "Bad input": files are read only inside the data folder (a symbolic link that leaves it is
refused, named in a warning), and every entry that is skipped is named in a warning."""

from __future__ import annotations

import duckdb
from typer.testing import CliRunner

from openmrr.cli import app
from openmrr.ingest import discover, ingest
from tests.helpers import base_rows, write_csv, write_folder

SECRET = "root:x:0:0:secret-first-line"


def _validate(folder) -> str:
    result = CliRunner().invoke(app, ["validate", "--data", str(folder)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.output


def test_a_symlinked_file_leaving_the_data_folder_is_refused_and_never_read(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    foreign = tmp_path / "elsewhere" / "passwd"
    foreign.parent.mkdir()
    foreign.write_text(SECRET + "\n")
    (folder / "app" / "customers.csv").unlink()
    (folder / "app" / "customers.csv").symlink_to(foreign)
    (folder / "tags.csv").unlink()
    (folder / "tags.csv").symlink_to(foreign)
    (folder / "openmrr.yml").write_text("max_bad_row_share: 1\n")  # invoices of the customers not read
    output = _validate(folder)
    assert "app/customers.csv: a symbolic link to a place outside the data folder; refused" in output
    assert "tags.csv: a symbolic link to a place outside the data folder; refused" in output
    assert SECRET not in output
    con = duckdb.connect()
    ingest(con, folder)
    assert con.execute("select count(*) from raw.import_batches where file in ('customers.csv', 'tags.csv')"
                       ).fetchone()[0] == 0


def test_a_symlinked_source_folder_leaving_the_data_folder_is_refused(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    outside = write_folder(tmp_path / "outside", {"crm/customers": [{"external_id": SECRET}]}) / "crm"
    (folder / "crm").symlink_to(outside, target_is_directory=True)
    documents, warnings = discover(folder)
    assert "crm: a symbolic link to a place outside the data folder; refused" in warnings
    assert all(document.data_source != "crm" for document in documents)


def test_a_symlink_that_stays_inside_the_data_folder_is_read(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    write_csv(folder / "archive" / "plans-2023.csv", [{"external_id": "q", "name": "Quarterly",
                                                        "interval_count": "3", "interval_unit": "month"}])
    (folder / "app" / "plans.csv").unlink()
    (folder / "app" / "plans.csv").symlink_to(folder / "archive" / "plans-2023.csv")
    documents, warnings = discover(folder)
    assert any(d.data_source == "app" and d.path.name == "plans.csv" for d in documents)
    assert not any("symbolic link" in warning for warning in warnings)


def test_hidden_entries_are_skipped_with_a_warning_naming_them(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    write_csv(folder / ".backup" / "customers.csv", [{"external_id": "old"}])
    (folder / "app" / ".customers.csv.swp").write_text("x")
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / "app" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    output = _validate(folder)
    assert ".backup: a hidden entry (its name starts with '.'); ignored" in output
    assert "app/.customers.csv.swp: a hidden entry (its name starts with '.'); ignored" in output
    # operating-system litter is named too, in one warning rather than one per folder
    assert "system files ignored: .DS_Store, app/.DS_Store" in output


def test_a_broken_symlink_is_skipped_with_a_warning(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    (folder / "app" / "cancellations.csv").unlink()
    (folder / "app" / "cancellations.csv").symlink_to(tmp_path / "gone.csv")
    _, warnings = discover(folder)
    assert "app/cancellations.csv: a symbolic link to nothing (broken); ignored" in warnings


def test_a_settings_file_leaving_the_data_folder_is_refused_unless_named_with_config(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    foreign = tmp_path / "elsewhere" / "settings.yml"
    foreign.parent.mkdir()
    foreign.write_text("account_currency: EUR\n")
    (folder / "openmrr.yml").symlink_to(foreign)
    refused = CliRunner().invoke(app, ["validate", "--data", str(folder)], catch_exceptions=False)
    assert refused.exit_code == 2
    assert "openmrr.yml: a symbolic link to a place outside the data folder; refused" in refused.output
    named = CliRunner().invoke(app, ["validate", "--data", str(folder), "--config", str(foreign)],
                               catch_exceptions=False)
    assert named.exit_code == 0, named.output
