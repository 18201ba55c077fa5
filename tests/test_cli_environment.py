"""The operator's mistakes and the machine's problems end in exit 1 or 2 with a message naming the flag,
file or folder and the real cause, never in "internal error, please report it" (exit 70): issue 13,
item 7."""

from __future__ import annotations

import errno
import io
import os
import subprocess
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from openmrr.cli import app
from orchestration.refresh import refresh
from tests.helpers import base_rows, write_folder

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def assert_user_facing(result, exit_code: int) -> None:
    """The exit code of a user's or the machine's problem, and none of the internal-error wording."""
    assert result.exit_code == exit_code, result.output
    assert "internal error" not in result.output and "please report it" not in result.output
    assert "Traceback" not in result.output


@pytest.fixture
def no_dagster_home(monkeypatch):
    """DAGSTER_HOME unset, as for a user: the run history would go beside the warehouse. (Set first so
    monkeypatch restores the variable whatever the run sets.)"""
    monkeypatch.setenv("DAGSTER_HOME", "unset")
    monkeypatch.delenv("DAGSTER_HOME")


@pytest.mark.parametrize("start", ["2024/01/01", "2024-02-30", "01-01-2024", "yesterday"])
def test_generate_with_a_start_that_is_not_a_calendar_day_is_a_usage_error_naming_the_flag(tmp_path, start):
    result = invoke("generate", "--customers", "3", "--out", str(tmp_path / "out"), "--start", start)
    assert_user_facing(result, 2)
    assert "--start" in result.output and "YYYY-MM-DD" in result.output
    assert not (tmp_path / "out").exists()


def test_generate_with_a_history_past_the_accepted_years_names_the_flags(tmp_path):
    result = invoke("generate", "--customers", "3", "--out", str(tmp_path / "out"), "--start", "2199-06-01",
                    "--months", "24")
    assert_user_facing(result, 2)
    assert "--start 2199-06-01 --months 24" in result.output and "2199-12-31" in result.output


def _unwritable(folder: Path) -> bool:
    """Make `folder` unwritable even for root (chattr +i: no entry can be created in it); False when the
    file system or the process cannot."""
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return True
    done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
    return done.returncode == 0


def _writable_again(folder: Path) -> None:
    if os.geteuid() != 0:
        folder.chmod(0o755)
    else:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True, check=False)


def test_a_warehouse_folder_that_cannot_be_written_is_named_with_the_cause(tmp_path, no_dagster_home):
    data = write_folder(tmp_path / "data", base_rows())
    folder = tmp_path / "read-only"
    if not _unwritable(folder):
        pytest.skip("neither chmod (as root) nor chattr +i can make a folder unwritable here")
    try:
        result = invoke("run", "--data", str(data), "--warehouse", str(folder / "w.duckdb"))
        assert_user_facing(result, 2)
        assert f"--warehouse {folder / 'w.duckdb'}: cannot write in {folder}" in result.output
        assert ("permission denied" in result.output) or ("operation not permitted" in result.output)
        assert list(folder.iterdir()) == []
    finally:
        _writable_again(folder)


def test_a_warehouse_path_under_a_file_is_named_with_the_cause(tmp_path, no_dagster_home):
    data = write_folder(tmp_path / "data", base_rows())
    (tmp_path / "plain-file").write_text("not a folder")
    result = invoke("run", "--data", str(data), "--warehouse", str(tmp_path / "plain-file" / "w.duckdb"))
    assert_user_facing(result, 2)
    assert f"--warehouse {tmp_path / 'plain-file' / 'w.duckdb'}" in result.output
    assert "not a folder" in result.output


class _FullDisk(io.StringIO):
    """A text file on a full disk: write() fails as the OS makes it, ENOSPC without a file name."""

    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_generate_on_a_full_disk_says_no_space_left_and_names_the_folder(tmp_path, monkeypatch):
    real_open = Path.open

    def full_disk_open(self, mode="r", *args, **kwargs):
        return _FullDisk() if "w" in mode else real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", full_disk_open)
    result = invoke("generate", "--customers", "3", "--out", str(tmp_path / "out"))
    assert_user_facing(result, 2)
    assert f"while writing {tmp_path / 'out'}: no space left on device" in result.output


@pytest.mark.parametrize("failure", ["duckdb", "oserror"])
def test_run_on_a_full_disk_says_no_space_left_and_names_the_file(tmp_path, monkeypatch, failure):
    """DuckDB's IOException names the file it was writing; a bare ENOSPC names none, so the warehouse is
    named. Both happen inside the Dagster step, so they reach the CLI as Dagster's failure record."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    data = write_folder(tmp_path / "data", base_rows())
    warehouse = tmp_path / "w.duckdb"

    def disk_full(*args, **kwargs):
        if failure == "duckdb":
            raise duckdb.IOException(f'IO Error: Could not write file "{warehouse}.wal": No space left on device')
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("orchestration.assets.ingest.load_and_check", disk_full)
    result = invoke("run", "--data", str(data), "--warehouse", str(warehouse))
    assert_user_facing(result, 2)
    named = f"{warehouse}.wal" if failure == "duckdb" else f"while writing {warehouse}"
    assert f"{named}: no space left on device" in result.output


def test_duckdbs_no_space_left_outside_a_step_is_mapped_too(tmp_path, monkeypatch):
    """Outside Dagster (here: explain's query) the live exception reaches the CLI's one mapping."""
    data = write_folder(tmp_path / "data", base_rows())
    warehouse = tmp_path / "w.duckdb"

    refresh(data, warehouse)

    def disk_full(*args, **kwargs):
        raise duckdb.IOException(f'IO Error: Could not write file "{tmp_path}/.tmp/spill.tmp": No space left on'
                                 " device")

    monkeypatch.setattr("openmrr.explain._arithmetic", disk_full)
    result = invoke("explain", "--customer", "c1", "--warehouse", str(warehouse))
    assert_user_facing(result, 2)
    assert f"{tmp_path}/.tmp/spill.tmp: no space left on device" in result.output


@pytest.mark.parametrize("command", [("explain", "--customer", "c1"), ("report",)])
def test_explain_and_report_on_a_warehouse_without_analytics_tables_say_to_run_first(tmp_path, command):
    warehouse = tmp_path / "new.duckdb"
    duckdb.connect(str(warehouse)).close()
    result = invoke(*command, "--warehouse", str(warehouse))
    assert_user_facing(result, 2)
    assert f"{warehouse}: no analytics tables yet" in result.output
    assert "run `openmrr run" in result.output


@pytest.mark.parametrize("error", [RuntimeError(), ZeroDivisionError("division by zero")])
def test_an_unexpected_failure_inside_a_step_shows_its_deepest_cause(tmp_path, monkeypatch, error):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    data = write_folder(tmp_path / "data", base_rows())

    def broken(*args, **kwargs):
        raise ValueError("while loading") from error

    monkeypatch.setattr("orchestration.assets.ingest.load_and_check", broken)
    result = invoke("run", "--data", str(data), "--warehouse", str(tmp_path / "w.duckdb"))
    assert_user_facing(result, 1)
    expected = "RuntimeError (no message)" if not str(error) else "ZeroDivisionError: division by zero"
    assert f"failed: {expected}" in result.output


def test_a_missing_data_folder_leaves_no_warehouse_and_no_run_history(tmp_path, no_dagster_home):
    result = invoke("run", "--data", str(tmp_path / "missing"), "--warehouse", str(tmp_path / "out" / "w.duckdb"))
    assert_user_facing(result, 2)
    assert f"{tmp_path / 'missing'}: data folder not found" in result.output
    assert not (tmp_path / "out").exists()
