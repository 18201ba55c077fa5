"""The reference lists (`seeds/reference/*.csv`) as source assets of the graph.

Two readers use these files: validation (each Great Expectations suite that checks a code against a
list, e.g. `seed:iso_currencies`, reads the CSV itself) and the dbt seeds, which load them into the
`reference` schema for analysts. Both depend on the *file*, not on each other, so the graph says so:
files → quarantine tables and files → seed tables. (When validation depended on the dbt seed assets,
Dagster had to run dbt twice per refresh: the seeds before ingestion, then the models after it.)
"""

from __future__ import annotations

from functools import cache

from dagster import AssetKey, AssetSpec, MetadataValue

from openmrr.paths import PROJECT_ROOT, REFERENCE_SEEDS_DIR
from openmrr.suites import load_suite

SEED_PARAMETER_PREFIX = "seed:"


def reference_lists() -> list[str]:
    """The names of the lists, one per CSV file in seeds/reference."""
    return sorted(path.stem for path in REFERENCE_SEEDS_DIR.glob("*.csv"))


def reference_file_key(name: str) -> AssetKey:
    """`seeds/reference/<name>`: the file in the repository, beside the table `reference/<name>` it seeds."""
    return AssetKey(["seeds", "reference", name])


@cache
def reference_lists_checked_by(file: str) -> tuple[str, ...]:
    """The lists a file's suite checks values against (its `{"$PARAMETER": "seed:<list>"}` value sets)."""
    used = set()
    for expectation in load_suite(file)["expectations"]:
        value_set = expectation.get("kwargs", {}).get("value_set")
        if isinstance(value_set, dict) and str(value_set.get("$PARAMETER", "")).startswith(SEED_PARAMETER_PREFIX):
            used.add(value_set["$PARAMETER"].removeprefix(SEED_PARAMETER_PREFIX))
    return tuple(sorted(used))


reference_files = [
    AssetSpec(
        reference_file_key(name), group_name="reference",
        description=f"seeds/reference/{name}.csv, part of the repository: validation checks codes against it"
                    f" and the dbt seed loads it into reference.{name}.",
        metadata={"path": MetadataValue.path(str((REFERENCE_SEEDS_DIR / f"{name}.csv").relative_to(PROJECT_ROOT)))},
    )
    for name in reference_lists()
]
