"""Progress of a run as plain lines, for output that is not a terminal (CI logs, `make demo > log`).

Progress bars redraw in place, which a log file cannot show; one line per event would be hundreds of
lines (a run builds about 150 dbt nodes). So: one line when a step starts, one when it ends with its
count and duration, and for a long step at most one line every `interval` seconds with how far it got.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from openmrr.pipeline import Progress

# what a step counts, for its lines
UNITS = {"ingest": "files", "build": "dbt nodes"}


@dataclass
class ProgressLines:
    """Pipeline callbacks that write `[  12.3s] build: 80 dbt nodes, last mrr_activities` lines."""

    write: Callable[[str], None]
    interval: float = 30.0
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)
    step: str | None = field(default=None, init=False)
    step_started: float = field(init=False)
    done: int = field(default=0, init=False)
    last_line: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.step_started = self.last_line = self.clock()

    def _line(self, text: str) -> None:
        self.last_line = self.clock()
        self.write(f"[{self.last_line - self.started:7.1f}s] {text}")

    def _counted(self) -> str:
        unit = UNITS.get(self.step or "")
        return f", {self.done} {unit}" if unit else ""

    def on_step(self, step: str) -> None:
        self.finish()
        self.step, self.step_started, self.done = step, self.clock(), 0
        self._line(f"{step} …")

    def on_file(self, document: Any) -> None:
        self._advance(document.label)

    def on_node(self, event: Any) -> None:
        if event.kind == "finished":
            self._advance(event.unique_id.split(".")[-1])

    def _advance(self, name: str) -> None:
        self.done += 1
        if self.clock() - self.last_line >= self.interval:
            self._line(f"{self.step}{self._counted()}, last {name}")

    def finish(self) -> None:
        """The line that closes the current step (called by the next step, and once after the run)."""
        if self.step is not None:
            self._line(f"{self.step} done in {self.clock() - self.step_started:.1f}s{self._counted()}")
            self.step = None

    def callbacks(self) -> Progress:
        return Progress(on_step=self.on_step, on_file=self.on_file, on_node=self.on_node)
