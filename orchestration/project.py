"""The dbt project as Dagster sees it."""

from __future__ import annotations

from dagster._utils import run_with_concurrent_update_guard
from dagster_dbt import DbtProject
from dagster_dbt.dbt_project import DagsterDbtProjectPreparer

from openmrr.paths import DBT_PROJECT_DIR
from openmrr.transform import ensure_manifest
from orchestration.resources import DBT_EXECUTABLE, OpenMRRDbtCli


class OpenMRRProjectPreparer(DagsterDbtProjectPreparer):
    """dagster-dbt's preparer (`dbt parse` when the code location loads under `dagster dev`, so the asset
    graph follows edits to the models), run with the dbt of this environment: the stock preparer calls
    `dbt` from PATH, so `openmrr ui` failed to load the code location unless the virtualenv was
    activated. The project has no packages, so there is no `dbt deps` step."""

    def prepare(self, project: DbtProject) -> None:
        run_with_concurrent_update_guard(project.manifest_path, self._parse, project=project)

    def _parse(self, project: DbtProject) -> None:
        dbt = OpenMRRDbtCli(project_dir=project, dbt_executable=DBT_EXECUTABLE)
        dbt.cli(["parse", "--quiet"], target_path=project.target_path).wait()


openmrr_dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# `dagster dev` re-parses on change; every other load (tests, `openmrr run`) needs a manifest too.
OpenMRRProjectPreparer().prepare_if_dev(openmrr_dbt_project)
MANIFEST_PATH = ensure_manifest()
