"""The Dagster webserver serves the asset graph over GraphQL on a loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.helpers import PROJECT_ROOT, SCENARIOS_DIR

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_webserver_lists_every_asset_over_graphql(tmp_path):
    port = free_port()
    environment = {**os.environ, "DAGSTER_HOME": str(tmp_path), "OPENMRR_DATA_DIR": str(SCENARIOS_DIR / "02-lifecycle"
                                                                                     / "data"),
                   "OPENMRR_WAREHOUSE": str(tmp_path / "w.duckdb")}
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-w", str(PROJECT_ROOT / "workspace.yaml"),
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=PROJECT_ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/graphql"
        deadline = time.monotonic() + 180
        keys: list[str] = []
        while time.monotonic() < deadline and not keys:
            try:
                answer = requests.post(url, json={"query": "{ assetNodes { assetKey { path } } }"}, timeout=10)
                nodes = (answer.json().get("data") or {}).get("assetNodes") or []
                keys = ["/".join(node["assetKey"]["path"]) for node in nodes]
            except requests.RequestException:
                pass
            if not keys:
                assert server.poll() is None, "the webserver exited"
                time.sleep(1)
        assert {"raw/line_items", "quarantine/line_items", "source/line_items", "analytics/mrr_activities",
                "analytics/metrics_monthly"} <= set(keys)
    finally:
        server.terminate()
        server.wait(timeout=30)
