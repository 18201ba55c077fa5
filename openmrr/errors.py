"""Errors a user can cause. The CLI prints their message (no traceback) and exits with `exit_code`."""

from __future__ import annotations

import errno
import re
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


class StorageError(OpenMRRError):
    """A path the command must write (or read) is unusable: no permission, a read-only file system, a full
    disk (exit 2). The user or the machine can fix it, so it is never an internal error."""

    exit_code = 2

    @classmethod
    def at(cls, named: str, cause: str) -> StorageError:
        """`named: cause (what to do)`, e.g. `/data/w.duckdb: no space left on device (free some space ...)`."""
        hint = ("free some space or choose another folder" if cause in ("no space left on device",
                                                                         "disk quota exceeded")
                else "choose a folder you can write to, or fix its permissions")
        return cls(f"{named}: {cause} ({hint})")


# errno -> what a person reads; the operating system's wording, lower-case, so "no space left on device" shows
OS_CAUSES = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a part of the path is not a folder",
}
# the same causes as DuckDB (and a serialised OSError) spell them in an error's text
TEXT_CAUSES = ("no space left on device", "disk quota exceeded", "read-only file system", "permission denied",
               "operation not permitted", "not a directory")
_QUOTED_PATH = re.compile(r"""["']((?:/|[A-Za-z]:\\|\.{1,2}/)[^"']*)["']""")


def _storage_error(path: str | Path | None, cause: str, where: Path | None) -> StorageError:
    """The path the system named, else the one the command writes."""
    named = str(path) if path not in (None, "") else (f"while writing {where}" if where is not None else "a file")
    return StorageError.at(named, cause)


def storage_error_from_text(class_name: str, message: str, where: Path | None = None) -> StorageError | None:
    """An OS-level failure recognised in an error's class name and text (a DuckDB IOException, or an
    OSError serialised by Dagster), else None: anything else stays a failure of its own kind."""
    if class_name not in ("IOException", "OSError", "IOError", "PermissionError", "NotADirectoryError"):
        return None
    lowered = message.lower()
    cause = next((text for text in TEXT_CAUSES if text in lowered), None)
    if cause is None:
        return None
    quoted = _QUOTED_PATH.search(message)
    return _storage_error(quoted.group(1) if quoted else None,
                          OS_CAUSES[errno.ENOTDIR] if cause == "not a directory" else cause, where)


def storage_error(error: BaseException, where: Path | None = None) -> StorageError | None:
    """The StorageError behind `error` (itself or a cause in its chain), or None. `where` is the path the
    command writes, named when the system did not say which file (a failed write() names none)."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, OSError) and link.errno in OS_CAUSES:
            return _storage_error(link.filename, OS_CAUSES[link.errno], where)
        found = storage_error_from_text(type(link).__name__, str(link), where)
        if found is not None:
            return found
        link = link.__cause__ or link.__context__
    return None
