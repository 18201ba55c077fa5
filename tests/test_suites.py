"""expectations/: the Great Expectations suites are current and load in Great Expectations."""

from __future__ import annotations

import json

from openmrr.contract import INPUT_FILES
from openmrr.suites import build_suite, suite_path


def test_the_checked_in_suites_match_the_contract():
    for spec in INPUT_FILES:
        assert json.loads(suite_path(spec.name).read_text()) == build_suite(spec), (
            f"{suite_path(spec.name)} is stale: run `make suites`"
        )


def test_every_suite_is_a_valid_great_expectations_suite():
    from great_expectations.core import ExpectationSuite

    for spec in INPUT_FILES:
        suite = ExpectationSuite(**json.loads(suite_path(spec.name).read_text()))
        assert suite.name == spec.name
        assert len(suite.expectations) >= len([c for c in spec.columns if c.required])
        assert all(e.meta["rule"] and e.meta["message"] for e in suite.expectations)
