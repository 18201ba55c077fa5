"""Test-wide settings."""

from __future__ import annotations

import os

from hypothesis import settings

# CI replays the same generated examples on every run (CI=true); developers explore new ones.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
