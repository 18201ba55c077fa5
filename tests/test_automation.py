"""Dagster automation: the sensor starts one run per change of the data folder; the daily schedule."""

from __future__ import annotations

from dagster import RunRequest, SkipReason, build_schedule_context, build_sensor_context

from orchestration.definitions import defs
from orchestration.resources import OpenMRRWarehouse
from tests.helpers import base_rows, write_folder


def evaluate(sensor, cursor, resource):
    context = build_sensor_context(cursor=cursor, resources={"openmrr": resource})
    result = sensor(context)
    return result, context.cursor


def test_a_new_file_requests_one_run_and_the_same_files_none(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    resource = OpenMRRWarehouse(data_dir=str(folder), warehouse=str(tmp_path / "w.duckdb"))
    sensor = defs.resolve_sensor_def("data_folder_sensor")
    first, cursor = evaluate(sensor, None, resource)
    assert isinstance(first, RunRequest)
    again, same_cursor = evaluate(sensor, cursor, resource)
    assert isinstance(again, SkipReason) and same_cursor == cursor
    (folder / "app" / "tags.csv").write_text("source,customer_external_id,tag\napp,c1,new\n")
    changed, new_cursor = evaluate(sensor, cursor, resource)
    assert isinstance(changed, RunRequest) and changed.run_key != first.run_key and new_cursor != cursor


def test_the_daily_schedule_requests_a_refresh():
    schedule = defs.resolve_schedule_def("daily_refresh")
    assert schedule.cron_schedule == "0 6 * * *"
    assert schedule.job_name == "refresh"
    [request] = schedule.evaluate_tick(build_schedule_context()).run_requests
    assert isinstance(request, RunRequest)
