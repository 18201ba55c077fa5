"""The dbt project as Dagster sees it: its manifest, parsed again whenever the project changed."""

from __future__ import annotations

from openmrr.transform import ensure_manifest

MANIFEST_PATH = ensure_manifest()
