"""The dbt project as Dagster sees it."""

from __future__ import annotations

from dagster_dbt import DbtProject

from openmrr.paths import DBT_PROJECT_DIR
from openmrr.transform import ensure_manifest

openmrr_dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# `dagster dev` re-parses on change; every other load (tests, `openmrr run`) needs a manifest too.
openmrr_dbt_project.prepare_if_dev()
MANIFEST_PATH = ensure_manifest()
