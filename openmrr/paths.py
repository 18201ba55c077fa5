"""Where the project's own files live, for code that runs from an installed checkout."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
REFERENCE_SEEDS_DIR = PROJECT_ROOT / "seeds" / "reference"
DEMO_DATA_DIR = PROJECT_ROOT / "seeds" / "demo"
