"""The repository's copy of the specification equals the shared one, wherever that folder exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import SCENARIOS_DIR, SHARED_SPEC_DIR, SPEC_DIR


def _files(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.skipif(not SHARED_SPEC_DIR.is_dir(), reason="no ../shared/spec beside this clone")
def test_spec_copy_equals_the_shared_specification():
    shared = _files(SHARED_SPEC_DIR)
    ours = {name: content for name, content in _files(SPEC_DIR).items()}
    ours |= {f"scenarios/{name}": content for name, content in _files(SCENARIOS_DIR).items()}
    assert sorted(ours) == sorted(shared), "docs/spec + tests/scenarios list other files than ../shared/spec"
    changed = [name for name in shared if ours[name] != shared[name]]
    assert not changed, f"copy out of date (cp ../shared/spec/*.md docs/spec; scenarios to tests/scenarios): {changed}"


def test_every_scenario_has_data_and_expected_outputs():
    scenarios = [p for p in SCENARIOS_DIR.iterdir() if p.is_dir()]
    assert scenarios
    for scenario in scenarios:
        assert (scenario / "data").is_dir() and any((scenario / "expected").glob("*.csv")), scenario.name
