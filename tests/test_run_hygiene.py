"""What runs leave behind: no run shown STARTED after its process was killed, no pile of per-run dbt
artefacts in the checkout, no usage statistics sent to Dagster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus

from openmrr.paths import DBT_PROJECT_DIR
from tests.helpers import SCENARIOS_DIR
from tests.test_cli import invoke

SCENARIO_DATA = SCENARIOS_DIR / "02-lifecycle" / "data"


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def statuses(home: Path) -> dict[str, DagsterRunStatus]:
    with DagsterInstance.from_config(str(home)) as instance:
        return {run.run_id: run.status for run in instance.get_runs()}


def test_ui_start_marks_failed_a_run_whose_process_died_and_leaves_a_live_one_alone(tmp_path):
    from openmrr.cli import _prepared_dagster_home
    from orchestration.instance import HOST_TAG, PID_TAG, prepare_dagster_home

    home = prepare_dagster_home(tmp_path / "dagster")
    host = __import__("socket").gethostname()
    killed, live = str(uuid.uuid4()), str(uuid.uuid4())
    with DagsterInstance.from_config(str(home)) as instance:
        instance.add_run(DagsterRun(job_name="refresh", run_id=killed, status=DagsterRunStatus.STARTED,
                                    tags={PID_TAG: str(dead_pid()), HOST_TAG: host}))
        instance.add_run(DagsterRun(job_name="refresh", run_id=live, status=DagsterRunStatus.STARTED,
                                    tags={PID_TAG: str(os.getpid()), HOST_TAG: host}))
    _prepared_dagster_home(home)  # what `openmrr ui` does before it starts dagster dev
    assert statuses(home) == {killed: DagsterRunStatus.FAILURE, live: DagsterRunStatus.STARTED}


def test_dagster_home_gets_telemetry_off_but_a_users_own_dagster_yaml_is_kept(tmp_path):
    from orchestration.instance import prepare_dagster_home

    home = prepare_dagster_home(tmp_path / "new")
    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.telemetry_enabled is False
    own = tmp_path / "own"
    own.mkdir()
    (own / "dagster.yaml").write_text("telemetry:\n  enabled: true\n")
    prepare_dagster_home(own)
    assert (own / "dagster.yaml").read_text() == "telemetry:\n  enabled: true\n"


@pytest.mark.slow
def test_a_run_killed_with_sigkill_is_marked_failed_by_the_next_run(tmp_path, monkeypatch):
    home = tmp_path / "dagster"
    warehouse = tmp_path / "w.duckdb"
    environment = {**os.environ, "DAGSTER_HOME": str(home)}
    from orchestration.instance import prepare_dagster_home

    # storage created before the run starts, so polling it below never races its creation
    statuses(prepare_dagster_home(home))
    killed = subprocess.Popen([str(Path(sys.executable).parent / "openmrr"), "run", "--data", str(SCENARIO_DATA),
                               "--warehouse", str(warehouse)], env=environment,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    started: list[str] = []
    while not started and time.monotonic() < deadline:
        assert killed.poll() is None, "the run ended before it could be killed"
        started = [run_id for run_id, status in statuses(home).items() if status == DagsterRunStatus.STARTED]
        time.sleep(0.2)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert statuses(home)[started[0]] == DagsterRunStatus.STARTED  # nothing told Dagster

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    result = invoke("run", "--data", str(SCENARIO_DATA), "--warehouse", str(warehouse))
    assert result.exit_code == 0, result.output
    after = statuses(home)
    assert after[started[0]] == DagsterRunStatus.FAILURE
    assert DagsterRunStatus.STARTED not in after.values()
    assert sorted(after.values(), key=str) == sorted([DagsterRunStatus.FAILURE, DagsterRunStatus.SUCCESS], key=str)


@pytest.mark.slow
def test_two_runs_leave_one_runs_dbt_artefacts_and_none_in_the_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # the instance openmrr creates beside the warehouse
    stale = DBT_PROJECT_DIR / "target" / "openmrr_dbt_models-0000000-stale00"  # what earlier versions left
    (stale / "compiled").mkdir(parents=True, exist_ok=True)
    checkout_before = set((DBT_PROJECT_DIR / "target").iterdir())
    for _ in range(2):
        result = invoke("run", "--data", str(SCENARIO_DATA), "--warehouse", str(tmp_path / "w.duckdb"))
        assert result.exit_code == 0, result.output
    new_in_checkout = set((DBT_PROJECT_DIR / "target").iterdir()) - checkout_before
    assert [path.name for path in new_in_checkout if path.is_dir()] == []
    assert not stale.exists()
    run_results = list(tmp_path.rglob("run_results.json"))
    assert len(run_results) == 1
    logs = list(tmp_path.rglob("dbt.log"))
    assert len(logs) == 1 and logs[0].read_text().count("Running with dbt=") == 1
    with DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        assert instance.telemetry_enabled is False
