"""Test-wide settings."""

from __future__ import annotations

import os

from hypothesis import settings

# fixtures of the destination tests: a built warehouse, moto, the GCS emulator, Azurite
pytest_plugins = ["tests.destination_fixtures"]

# CI replays the same generated examples on every run (CI=true); developers explore new ones.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
