"""Every model compiles for the cloud warehouses (Snowflake, BigQuery, Redshift) offline.

`dbt compile` runs in a subprocess with the venv's dbt. A sitecustomize module on PYTHONPATH makes
any socket connection or name lookup other than to 127.0.0.1 fail and records it; where the system
allows it the process also runs in an empty network namespace (`unshare --net`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from openmrr.paths import DBT_PROJECT_DIR
from tests.helpers import PROJECT_ROOT

ADAPTERS = ("snowflake", "bigquery", "redshift")
DBT = Path(sys.executable).parent / "dbt"

NETWORK_GUARD = '''
"""Test guard: fail and record every connection or name lookup that leaves 127.0.0.1."""
import os
import socket

_LOCAL = {"127.0.0.1", "::1", "localhost", None}
_log = os.environ["OPENMRR_NETWORK_LOG"]


def _check(host):
    if isinstance(host, bytes):
        host = host.decode()
    if host not in _LOCAL:
        with open(_log, "a") as handle:
            handle.write(f"{host}\\n")
        raise OSError(f"network access outside 127.0.0.1 is blocked in this test: {host}")


def _guard(method):
    def guarded(self, address):
        if self.family != socket.AF_UNIX:
            _check(address[0])
        return method(self, address)
    return guarded


_getaddrinfo = socket.getaddrinfo


def _guarded_getaddrinfo(host, *args, **kwargs):
    _check(host)
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _guard(socket.socket.connect)
socket.socket.connect_ex = _guard(socket.socket.connect_ex)
socket.getaddrinfo = _guarded_getaddrinfo
'''


def _no_network_prefix() -> list[str]:
    """`unshare --net` (a network namespace without interfaces) where this user may create one."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "--net", "true"], capture_output=True).returncode == 0:
        return [unshare, "--net"]
    return []


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_every_model_compiles_offline(adapter, tmp_path):
    guard_dir, target_path, network_log = tmp_path / "guard", tmp_path / "target", tmp_path / "network.log"
    guard_dir.mkdir()
    (guard_dir / "sitecustomize.py").write_text(NETWORK_GUARD)
    network_log.touch()
    environment = {**os.environ, "PYTHONPATH": str(guard_dir), "OPENMRR_NETWORK_LOG": str(network_log),
                   "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    completed = subprocess.run(
        [*_no_network_prefix(), str(DBT), "compile", "--target", adapter,
         "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
         "--target-path", str(target_path), "--log-path", str(tmp_path / "logs"),
         "--no-introspect", "--no-populate-cache"],
        capture_output=True, text=True, env=environment, cwd=tmp_path, timeout=600,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert network_log.read_text() == "", "dbt tried to reach the network"

    manifest = json.loads((target_path / "manifest.json").read_text())
    assert manifest["metadata"]["adapter_type"] == adapter
    models = {node["name"]: node for node in manifest["nodes"].values() if node["resource_type"] == "model"}
    assert set(models) == {path.stem for path in (PROJECT_ROOT / "models").rglob("*.sql")}
    for name, node in models.items():
        compiled = Path(node["compiled_path"])
        assert compiled.is_relative_to(target_path) and compiled.is_file(), f"{name}: not compiled"
        sql = compiled.read_text()
        assert sql.strip() and "{{" not in sql and "{%" not in sql, f"{name}: not rendered"
        # the default exact division is PostgreSQL's div(), which these warehouses lack
        assert "div(" not in sql, f"{name}: default div() leaked into {adapter} SQL"
