"""Resources: every external system the assets touch, configured in one place."""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from dagster import ConfigurableResource, EnvVar
from dagster_dbt import DbtCliResource
from packaging import version

from openmrr.settings import Settings


class OpenMRRWarehouse(ConfigurableResource):
    """The data folder and the embedded DuckDB warehouse a run reads and builds.

    `settings_json` holds the settings a run resolved when it started (`openmrr run` sets it): every
    step uses them, so an `openmrr.yml` changed or removed mid-run cannot change the numbers. Without
    it (runs launched from the UI or the schedule) each step reads the settings file."""

    data_dir: str
    warehouse: str
    config: str | None = None
    settings_json: str | None = None

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def warehouse_path(self) -> Path:
        return Path(self.warehouse)

    def settings(self) -> Settings:
        """The run's settings: those resolved at its start, else the settings file's now."""
        if self.settings_json is not None:
            return Settings.model_validate_json(self.settings_json)
        from openmrr.pipeline import resolve_settings

        return resolve_settings(self.data_path, Path(self.config) if self.config else None)


def default_warehouse_resource() -> OpenMRRWarehouse:
    """Configured from the environment of the Dagster process (`openmrr ui` sets these)."""
    return OpenMRRWarehouse(
        data_dir=EnvVar("OPENMRR_DATA_DIR"),
        warehouse=EnvVar("OPENMRR_WAREHOUSE"),
    )


class DestinationsResource(ConfigurableResource):
    """destinations.yml, and the process environment whose variables its `_env` settings name."""

    file: str

    def load(self):
        """The destinations as the file declares them now (an entry removed since load delivers nothing)."""
        from openmrr.destinations.config import load_destinations

        return load_destinations(Path(self.file), check_env=False)

    def environ(self) -> dict[str, str]:
        import os

        return dict(os.environ)


def default_destinations_resource() -> DestinationsResource:
    """From OPENMRR_DESTINATIONS (`openmrr ui --destinations` sets it)."""
    return DestinationsResource(file=EnvVar("OPENMRR_DESTINATIONS"))


# dbt of this environment: the interpreter's bin/ holds it, whether or not that folder is on PATH (a bare
# `.venv/bin/openmrr ui`, a service manager, cron). dagster-dbt would look for `dbt` on PATH.
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt")


class OpenMRRDbtCli(DbtCliResource):
    """The dbt of this environment (its `bin/dbt`), one subprocess per build, without two start-up costs
    `DbtCliResource` pays on every run and OpenMRR has no use for:

    - the version of the dbt executable, which it learns by running `dbt --version`: that imports every
      installed adapter and asks PyPI for the latest release (5-6 s, and a network request on every
      run). The executable is the dbt-core installed in this environment, so its metadata gives it.
    - a dbt adapter inside the Dagster process (the project's macros parsed again, about 1.3 s), used
      only to fetch row counts or column metadata, which these assets do not ask for.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:  # type: ignore[override]
        return None


def default_dbt_resource() -> OpenMRRDbtCli:
    """dbt of this environment, whether or not its bin/ is on PATH."""
    from orchestration.project import openmrr_dbt_project

    return OpenMRRDbtCli(project_dir=openmrr_dbt_project, dbt_executable=DBT_EXECUTABLE)
