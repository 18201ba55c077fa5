"""`openmrr generate`: it never mixes into a folder that holds files, and its cancellations follow the
subscriptions over the whole history instead of piling up at its end (issue 13, item 8)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

from openmrr.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_generate_refuses_a_folder_that_holds_files_unless_forced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = invoke("generate", "--customers", "3", "--out", str(out))
    assert result.exit_code == 2, result.output
    assert f"{out}: --out folder is not empty (add --force" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    forced = invoke("generate", "--customers", "3", "--out", str(out), "--force")
    assert forced.exit_code == 0, forced.output
    assert (out / "openmrr.yml").exists() and (out / "notes.txt").read_text() == "mine"


def test_generate_writes_into_an_empty_existing_folder(tmp_path):
    (tmp_path / "out").mkdir()
    assert invoke("generate", "--customers", "3", "--out", str(tmp_path / "out")).exit_code == 0


def _cancellation_days(folder: Path) -> list[str]:
    """The day of every cancellation, in all three input forms the generator writes."""
    days = []
    for path in folder.glob("*/cancellations.csv"):
        days += [row["cancelled_at"][:10] for row in csv.DictReader(path.open())]
    for path in folder.glob("*/subscription_events.csv"):
        days += [row["effective_date"][:10] for row in csv.DictReader(path.open())
                 if row["event_type"] == "subscription_cancelled"]
    for path in folder.glob("*/line_items.csv"):
        days += [row["cancelled_at"][:10] for row in csv.DictReader(path.open()) if row["cancelled_at"]]
    return days


def test_cancellations_spread_over_the_history_instead_of_bunching_at_its_end(tmp_path):
    out = tmp_path / "out"
    result = invoke("generate", "--customers", "2000", "--seed", "1", "--out", str(out), "--start", "2022-01-01",
                    "--months", "24")
    assert result.exit_code == 0, result.output
    days = _cancellation_days(out)
    assert len(days) > 300
    assert max(days) <= "2023-12-31"  # none after as_of, the history's last day
    months = Counter(day[:7] for day in days)
    # before: 17.7% of the cancellations in the last month, 135 of 806 in its last five days
    assert months["2023-12"] / len(days) < 0.08
    previous = [months[f"2023-{month:02d}"] for month in range(6, 12)]
    assert months["2023-12"] <= 1.5 * sum(previous) / len(previous)
    assert sum(day >= "2023-12-27" for day in days) / len(days) < 0.02
