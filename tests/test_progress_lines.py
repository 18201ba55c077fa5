"""Progress without a terminal: a few plain lines per step, never one per file or dbt node."""

from __future__ import annotations

from types import SimpleNamespace

from openmrr.progress_lines import ProgressLines
from openmrr.transform import NodeEvent


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_each_step_has_a_start_line_and_an_end_line_with_its_count_and_duration():
    clock, lines = FakeClock(), []
    progress = ProgressLines(write=lines.append, clock=clock)
    progress.on_step("ingest")
    for label in ("app/customers.csv", "app/invoices.csv"):
        clock.now += 1
        progress.on_file(SimpleNamespace(label=label))
    progress.on_step("build")
    clock.now += 5
    progress.on_node(NodeEvent("finished", "model.openmrr.mrr_activities"))
    progress.finish()
    assert lines == [
        "[    0.0s] ingest …",
        "[    2.0s] ingest done in 2.0s, 2 files",
        "[    2.0s] build …",
        "[    7.0s] build done in 5.0s, 1 dbt nodes",
    ]


def test_a_long_step_reports_at_most_once_per_interval():
    clock, lines = FakeClock(), []
    progress = ProgressLines(write=lines.append, interval=30, clock=clock)
    progress.on_step("build")
    for n in range(150):  # 150 nodes over 75 seconds
        clock.now += 0.5
        progress.on_node(NodeEvent("started", f"model.openmrr.m{n}"))
        progress.on_node(NodeEvent("finished", f"model.openmrr.m{n}"))
    assert lines == ["[    0.0s] build …", "[   30.0s] build, 60 dbt nodes, last m59",
                     "[   60.0s] build, 120 dbt nodes, last m119"]
