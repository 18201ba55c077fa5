"""The analyst's first steps: `openmrr ui` and `openmrr docs --serve` start from a bare shell (the virtualenv
not activated) and stop on Ctrl-C without a traceback or a process left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from tests.helpers import SCENARIOS_DIR
from tests.test_webserver import free_port

OPENMRR = str(Path(sys.executable).parent / "openmrr")
SCENARIO_DATA = SCENARIOS_DIR / "02-lifecycle" / "data"
LOCATION_QUERY = """{ workspaceOrError { ... on Workspace { locationEntries { name
  locationOrLoadError { __typename ... on PythonError { message }
    ... on RepositoryLocation { repositories { name jobs { name } } } } } } } }"""


def bare_environment(**values: str) -> dict[str, str]:
    """What a fresh login shell gives: the virtualenv's bin/ is not on PATH."""
    return {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8", **values}


def wait_for_location(port: int, server: subprocess.Popen, timeout: float = 240) -> dict:
    """The code location's entry once the webserver answers with it loaded or failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            answer = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": LOCATION_QUERY}, timeout=10)
            entries = answer.json()["data"]["workspaceOrError"]["locationEntries"]
            if entries and entries[0]["locationOrLoadError"] is not None:
                return entries[0]
        except (requests.RequestException, KeyError, TypeError, ValueError):
            pass
        assert server.poll() is None, f"openmrr ui exited: {server.communicate()}"
        time.sleep(1)
    raise AssertionError("the code location did not load in time")


def port_is_free(port: int) -> bool:
    """Nothing listens on it (SO_REUSEADDR: the closed connections' TIME_WAIT entries do not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def kill_tree(server: subprocess.Popen) -> None:
    """After a failed assertion: the server and everything it started, so no test leaves a process."""
    if server.poll() is None:
        children = psutil.Process(server.pid).children(recursive=True)
        server.kill()
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.kill()
        server.wait()


def alive(processes: list[psutil.Process]) -> list[str]:
    left = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{process.pid}: {' '.join(process.cmdline())}")
        except psutil.NoSuchProcess:
            continue
    return left


@pytest.mark.slow
def test_ui_loads_the_code_location_without_an_activated_virtualenv_and_ctrl_c_stops_every_process(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [OPENMRR, "ui", "--data", str(SCENARIO_DATA), "--warehouse", str(tmp_path / "w.duckdb"),
         "--port", str(port), "--dagster-home", str(tmp_path / "dagster")],
        cwd=tmp_path, env=bare_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        entry = wait_for_location(port, server)
        location = entry["locationOrLoadError"]
        assert location["__typename"] == "RepositoryLocation", location.get("message")
        jobs = {job["name"] for repository in location["repositories"] for job in repository["jobs"]}
        assert "refresh" in jobs
        assert "enabled: false" in (tmp_path / "dagster" / "dagster.yaml").read_text()  # telemetry off

        started = psutil.Process(server.pid).children(recursive=True)
        assert any("dagster" in " ".join(child.cmdline()) for child in started)
        server.send_signal(signal.SIGINT)  # Ctrl-C
        stdout, stderr = server.communicate(timeout=90)
    finally:
        kill_tree(server)
    assert server.returncode == 0, stderr
    assert "Dagster UI stopped" in stdout
    assert "Traceback" not in stdout + stderr
    assert alive(started) == []
    assert port_is_free(port)


@pytest.mark.slow
def test_docs_serve_stops_on_ctrl_c_with_a_stopped_line_and_no_traceback(tmp_path):
    import duckdb

    warehouse = tmp_path / "w.duckdb"
    duckdb.connect(str(warehouse)).close()  # the site builds from any warehouse; its catalog is what it holds
    port = free_port()
    server = subprocess.Popen([OPENMRR, "docs", "--warehouse", str(warehouse), "--serve", "--port", str(port)],
                              cwd=tmp_path, env=bare_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        deadline = time.monotonic() + 180
        page = None
        while page is None and time.monotonic() < deadline:
            try:
                page = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
            except requests.RequestException:
                assert server.poll() is None, server.communicate()
                time.sleep(0.5)
        assert page is not None and page.status_code == 200 and "dbt" in page.text
        assert requests.get(f"http://127.0.0.1:{port}/catalog.json", timeout=5).status_code == 200
        server.send_signal(signal.SIGINT)
        stdout, stderr = server.communicate(timeout=30)
    finally:
        kill_tree(server)
    assert server.returncode == 0, stderr
    assert "dbt docs server stopped" in stdout
    assert "Traceback" not in stdout + stderr and "error" not in stderr.lower()
    assert port_is_free(port)


def test_sigterm_to_a_served_command_stops_its_group_and_a_child_that_left_it(tmp_path):
    tree = ("import subprocess, time\n"
            "subprocess.Popen(['sleep', '300'])\n"
            "subprocess.Popen(['sleep', '301'], start_new_session=True)\n"  # out of the group's reach
            "time.sleep(300)\n")
    wrapper = ("import os, sys\n"
               "from openmrr.serving import run_process_group\n"
               "code = run_process_group([sys.executable, '-c', sys.argv[1]], cwd=os.getcwd(), env=os.environ,"
               " grace_seconds=3)\n"
               "print('stopped' if code is None else code)\n")
    server = subprocess.Popen([sys.executable, "-c", wrapper, tree], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        started: list[psutil.Process] = []
        while len(started) < 3 and time.monotonic() < deadline:
            started = psutil.Process(server.pid).children(recursive=True)
            time.sleep(0.1)
        assert len(started) == 3
        server.send_signal(signal.SIGTERM)
        stdout, stderr = server.communicate(timeout=30)
    finally:
        kill_tree(server)
    assert (server.returncode, stdout.strip()) == (0, "stopped"), stderr
    assert alive(started) == []
