"""Resources: every external system the assets touch, configured in one place."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource, EnvVar

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
