"""Errors a user can cause. The CLI prints their message (no traceback) and exits with `exit_code`."""

from __future__ import annotations

from pathlib import Path


class OpenMRRError(Exception):
    """Base class: a message a person can act on."""

    exit_code = 2


class ConfigError(OpenMRRError):
    """Bad settings, flags or folder layout (exit 2)."""

    exit_code = 2


class WarehouseError(OpenMRRError):
    """A server warehouse refused a load or a statement (exit 1); the message is the warehouse's."""

    exit_code = 1


class DataRejected(OpenMRRError):
    """Input that cannot be used: an unparseable file or too many bad rows (exit 1)."""

    exit_code = 1


class DeliveryFailed(OpenMRRError):
    """A destination refused or could not take a delivery (exit 3); the delivery log has the details."""

    exit_code = 3


class FileFormatError(DataRejected):
    """A file that cannot be parsed at all, located by file, line and (where known) column."""

    def __init__(self, path: Path | str, line: int | None, problem: str, column: str | None = None):
        self.path, self.line, self.problem, self.column = str(path), line, problem, column
        where = self.path + (f", line {line}" if line is not None else "")
        where += f", column {column}" if column else ""
        super().__init__(f"{where}: {problem}")
