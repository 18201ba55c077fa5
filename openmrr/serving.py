"""Long-running servers the CLI starts (`openmrr ui`, `openmrr docs --serve`), stopped cleanly by Ctrl-C or
SIGTERM: no traceback, and no process of theirs left behind."""

from __future__ import annotations

import functools
import http.server
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType

import psutil

from openmrr.errors import ConfigError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# `dagster dev` stops its webserver, daemon and code servers within a few seconds of Ctrl-C; past this
# grace period whatever is left of its process group is killed.
GRACE_SECONDS = 30.0


class Stopped(Exception):
    """The user (Ctrl-C) or a service manager (SIGTERM) asked a server to stop."""


@contextmanager
def stop_signals_raise() -> Iterator[None]:
    """SIGTERM as well as SIGINT end a blocking serve loop with `Stopped`, so both shut down alike."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise Stopped(signal.Signals(signum).name)

    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def serve_directory(directory: Path, port: int) -> None:
    """Serve a static site (dbt's docs) on 127.0.0.1 until stopped. dbt's own `docs serve` runs its server
    in the calling thread, so Ctrl-C lands inside a request or in dbt's runner and ends in a traceback
    or a failed-command error; here requests run in daemon threads and the stop is ours to handle."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as error:
        raise ConfigError(f"--port {port}: cannot serve on 127.0.0.1:{port}: {error.strerror}") from None
    with server:
        server.daemon_threads = True
        with stop_signals_raise():
            try:
                server.serve_forever()
            except (Stopped, KeyboardInterrupt):
                return


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """No line per request on the terminal."""

    def log_message(self, format: str, *args: object) -> None:
        return None


def run_process_group(command: Sequence[str], cwd: Path, env: Mapping[str, str],
                      grace_seconds: float = GRACE_SECONDS) -> int | None:
    """Run `command` in its own session until it exits or this process gets SIGINT/SIGTERM; return its
    exit code, or None when it was stopped by a signal.

    A server such as `dagster dev` starts a webserver, a daemon and code servers, which start run workers.
    In its own process group they can all be stopped together: a signal to this process is forwarded to
    the whole group (SIGINT, as Ctrl-C in a terminal sends to a foreground group), and on the way out
    every process still in the group, or descended from the command, is killed after `grace_seconds`."""
    process = subprocess.Popen(list(command), cwd=cwd, env=dict(env), start_new_session=True)
    stopped: list[int] = []
    tree: set[psutil.Process] = set()

    def forward(signum: int, frame: FrameType | None) -> None:
        tree.update(_descendants(process.pid))
        # a second Ctrl-C does not wait for a graceful stop
        _signal_group(process.pid, signal.SIGKILL if stopped else signal.SIGINT)
        stopped.append(signum)

    previous = {signum: signal.signal(signum, forward) for signum in STOP_SIGNALS}
    try:
        returncode = _wait(process, None)
    finally:
        tree.update(_descendants(process.pid))
        if not stopped:  # it exited by itself, or we failed: whatever it left running goes too
            _signal_group(process.pid, signal.SIGTERM)
        _stop_group(process, tree, grace_seconds)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return None if stopped else returncode


def _wait(process: subprocess.Popen, timeout: float | None) -> int | None:
    """The exit code, or None when `timeout` passed first."""
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


def _descendants(pid: int) -> set[psutil.Process]:
    """Every process started under `pid`, remembered so that one which left the group (its own session)
    is still stopped after `pid` itself is gone."""
    try:
        return set(psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return set()


def _signal_group(pgid: int, signum: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs (zombies waiting for a parent to reap them do not count)."""
    for candidate in psutil.process_iter():
        try:
            if os.getpgid(candidate.pid) == pgid and candidate.status() != psutil.STATUS_ZOMBIE:
                return True
        except (OSError, psutil.Error):
            continue
    return False


def _stop_group(process: subprocess.Popen, tree: set[psutil.Process], grace_seconds: float) -> None:
    """Wait up to `grace_seconds` for the command and its group to exit, then kill what remains: the group
    and the remembered tree."""
    deadline = time.monotonic() + grace_seconds
    _wait(process, grace_seconds)
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    _signal_group(process.pid, signal.SIGKILL)
    for child in tree:
        try:
            if child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
                child.kill()
        except psutil.Error:
            pass
    _wait(process, 5)
