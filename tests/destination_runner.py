"""Runs one destination's `deliver` in its own process, so a test can kill it mid-batch.

python -m tests.destination_runner TYPE WAREHOUSE DESTINATION RUN_ID SETTINGS_JSON
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from datetime import UTC, datetime

import duckdb

from openmrr.destinations.base import DeliveryContext


def main(kind: str, warehouse: str, destination: str, run_id: str, settings_json: str) -> None:
    module = importlib.import_module(f"openmrr.destinations.{kind}")
    settings = module.Settings.model_validate(json.loads(settings_json))
    con = duckdb.connect(warehouse)
    try:
        context = DeliveryContext(destination, run_id, datetime.now(UTC).date(), list(module.DATASETS), con,
                                  dict(os.environ))
        for delivery in module.deliver(settings, context):
            print(delivery.status, delivery.rows, delivery.error or "")
    finally:
        con.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
