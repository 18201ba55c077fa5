"""Local stand-ins for external systems: free loopback ports, readiness polls, isolated installs.

Servers bind 127.0.0.1 only. Tools with pins that clash with ours (an emulator's own duckdb or
sqlglot) get a virtualenv under `build/servers/<name>`, created from a requirements file in
`tests/server_requirements/` the first time a test needs it and reused while that file is unchanged.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from openmrr.paths import PROJECT_ROOT

SERVERS_DIR = PROJECT_ROOT / "build" / "servers"
REQUIREMENTS_DIR = PROJECT_ROOT / "tests" / "server_requirements"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    """Return once 127.0.0.1:`port` accepts connections; fail early if `process` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def ensure_venv(name: str) -> Path:
    """The bin directory of `build/servers/<name>`, installed from `tests/server_requirements/<name>.txt`."""
    requirements = REQUIREMENTS_DIR / f"{name}.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    venv = SERVERS_DIR / name
    marker = venv / ".installed"
    if not marker.exists() or marker.read_text() != digest:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                        "-r", str(requirements)], check=True)
        marker.write_text(digest)
    return venv / "bin"


@contextmanager
def running(command: Sequence[str], port: int, log: Path, timeout: float = 60.0,
            env: dict[str, str] | None = None, cwd: Path | None = None) -> Iterator[subprocess.Popen]:
    """Start `command` in its own process group, wait until `port` listens, stop it (and its children)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        process = subprocess.Popen(list(command), stdout=output, stderr=subprocess.STDOUT, cwd=cwd,
                                   env={**os.environ, **(env or {})}, start_new_session=True)
        try:
            wait_for_port(port, timeout, process)
            yield process
        except BaseException:
            sys.stderr.write(log.read_text(errors="replace")[-4000:])
            raise
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def postgres_bin_dir() -> Path:
    """The newest installed PostgreSQL server's bin directory (Debian layout, `scripts/install-system-deps`)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise FileNotFoundError("PostgreSQL server binaries not found: run scripts/install-system-deps"
                                " (make test does)")
    return found[-1].parent


@contextmanager
def postgres_server(databases: Sequence[str] = ("openmrr",)) -> Iterator[int]:
    """A throw-away PostgreSQL cluster on 127.0.0.1 (trust auth, C collation, user `postgres`) with
    `databases` created; yields its port, then stops it and deletes its files.

    C collation because text ordering (listagg, tie-breaks) must match DuckDB's byte order."""
    bin_dir = postgres_bin_dir()
    as_server_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # initdb refuses root
    workdir = Path(tempfile.mkdtemp(prefix="openmrr-pg-"))
    if as_server_user:
        shutil.chown(workdir, "postgres")
    data, port = workdir / "data", free_port()

    def server(*command: str) -> None:
        completed = subprocess.run([*as_server_user, *command], cwd=workdir, capture_output=True, text=True)
        if completed.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stdout}{completed.stderr}")

    try:
        server(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--locale=C",
               "--encoding=UTF8", "--no-sync")
        server(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(workdir / "server.log"), "-w", "-o",
               f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={workdir} -c fsync=off",
               "start")
        try:
            for database in databases:
                server(str(bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres",
                       "-v", "ON_ERROR_STOP=1", "-c", f'create database "{database}"')
            yield port
        finally:
            server(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
