"""Great Expectations suites for the input files, built from `openmrr.contract`.

`python -m openmrr.suites` rewrites `expectations/<file>.json`; a test keeps them current.
Cross-file value sets are GE suite parameters (`{"$PARAMETER": "keys:customers.external_id"}`),
filled at validation time from the warehouse; code lists are parameters filled from the
reference seeds. Every expectation's `meta` carries the quarantine `rule` and a `message`
template (`{value}` is the offending raw value).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from openmrr.contract import (
    BOOL_FALSE,
    BOOL_TRUE,
    INPUT_FILES,
    MONEY_PATTERN,
    Column,
    DerivedLimit,
    InputFile,
    Reference,
)
from openmrr.paths import EXPECTATIONS_DIR

TS_REGEX = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?$"
)
FORMATS: dict[str, tuple[str, str, str]] = {
    # type: (regex, rule, message)
    "ts": (TS_REGEX, "type_ts", "{column} '{value}' is not an ISO 8601 date or date-time"),
    "money": (
        r"^-?[0-9]+(\.[0-9]{1,2})?$",
        "type_money",
        "{column} '{value}' is not an amount with at most 2 decimals",
    ),
    "decimal": (r"^-?[0-9]+(\.[0-9]+)?$", "type_decimal", "{column} '{value}' is not a decimal number"),
    "int": (r"^-?[0-9]+$", "type_int", "{column} '{value}' is not an integer"),
    "email": (
        r"^[^@\s]+@[^@\s]+\.[^@\s.]+$",
        "email_format",
        "{column} '{value}' is not a valid e-mail address",
    ),
    "url": (
        r"^([A-Za-z][A-Za-z0-9+.-]*://)?([A-Za-z0-9-]+\.)+[A-Za-z]{2,}(/\S*)?$",
        "url_format",
        "{column} '{value}' does not end in a domain name",
    ),
    "attr_key": (
        r"^[A-Za-z0-9_]+$",
        "attr_key_format",
        "{column} '{value}' may contain only letters, digits and _",
    ),
}
CODE_LISTS: dict[str, tuple[str, str, str]] = {
    # type: (seed parameter, rule, message)
    "ccy": ("seed:iso_currencies", "currency_code", "{column} '{value}' is not an ISO 4217 currency code"),
    "country": ("seed:iso_countries", "country_code", "{column} '{value}' is not an ISO 3166-1 alpha-2 code"),
    "us_state": ("seed:us_states", "us_state_code", "{column} '{value}' is not a US state code"),
}
ATTRIBUTE_TYPES = {
    "String": "str",
    "Integer": "int",
    "Decimal": "decimal",
    "Timestamp": "ts",
    "Boolean": "bool",
}
# Range rules: a value of the right type that the models' column types or arithmetic could not hold
# (inputs.md "Bad input": a value that passes validation must never fail the build). Each is checked
# only on values of the right type, so a malformed value gets one message, its type's.
# type: (regex the value must also match, rule, message)
RANGES: dict[str, tuple[str, str, str]] = {
    # input money is decimal(18, 2) (staging, to_money); inputs.md: absolute value < 10^15
    "money": (
        MONEY_PATTERN,
        "money_range",
        "{column} '{value}' is out of range: amounts must be less than 10^15 in absolute value",
    ),
    # rates are decimal(38, 12); inputs.md: at most 12 decimals and 15 integer digits, so a positive
    # rate never rounds to 0 and keeps every digit it was given
    "decimal": (
        r"^-?0*[0-9]{1,15}(\.[0-9]{1,12}0*)?$",
        "rate_precision",
        "{column} '{value}' has more than 12 decimals or more than 15 integer digits",
    ),
    # inputs.md ts: years 1970-2199, as written (the date part of the text)
    "ts": (
        r"^(19[7-9][0-9]|2[01][0-9][0-9])-.*$",
        "ts_range",
        "{column} '{value}' is outside the years 1970 to 2199",
    ),
}
# `int` columns are integer (32-bit) in the models.
INT_RANGE = (-2147483648, 2147483647)
MINIMUM_MESSAGES = {
    "positive": "{column} must be greater than 0, got {value}",
    "non_negative": "{column} must not be negative, got {value}",
}


def _expectation(kind: str, rule: str, message: str, condition: tuple[str, str] | None = None,
                 **kwargs: Any) -> dict[str, Any]:
    if condition is not None:
        kwargs["row_condition"] = {
            "column": {"name": condition[0]},
            "operator": "==",
            "parameter": condition[1],
            "type": "comparison",
        }
        kwargs["condition_parser"] = "great_expectations"
    return {"type": kind, "kwargs": kwargs, "meta": {"rule": rule, "message": message}}


def _format_expectations(column: Column, column_type: str,
                         condition: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    name = column.name
    if column_type in FORMATS:
        regex, rule, message = FORMATS[column_type]
        found = _expectation("expect_column_values_to_match_regex", rule, message, condition,
                             column=name, regex=regex)
        if column_type == "ts":
            # The regex admits 2023-02-30; the compiler also parses the value.
            found["meta"]["parse_as"] = "timestamp"
        return [found]
    if column_type == "bool":
        found = _expectation(
            "expect_column_values_to_be_in_set", "type_bool",
            "{column} '{value}' is not a boolean (true/false/yes/no/1/0)", condition,
            column=name, value_set=[*BOOL_TRUE, *BOOL_FALSE],
        )
        found["meta"]["case_insensitive"] = True
        return [found]
    if column_type in CODE_LISTS:
        parameter, rule, message = CODE_LISTS[column_type]
        if column_type == "us_state":
            condition = ("country", "US")
        return [_expectation("expect_column_values_to_be_in_set", rule, message, condition,
                             column=name, value_set={"$PARAMETER": parameter})]
    return []


def _range_expectations(column: Column) -> list[dict[str, Any]]:
    """The range rule of a column's type, checked only on values of that type (see RANGES)."""
    name = column.name
    if column.type in RANGES:
        regex, rule, message = RANGES[column.type]
        found = _expectation("expect_column_values_to_match_regex", rule, message, column=name, regex=regex)
        found["meta"]["only_if_matches"] = FORMATS[column.type][0]
        return [found]
    if column.type == "int":
        low, high = INT_RANGE[0], column.maximum if column.maximum is not None else INT_RANGE[1]
        found = _expectation(
            "expect_column_values_to_be_between", "int_range",
            f"{{column}} '{{value}}' is out of range: at most {high}" if column.maximum is not None
            else f"{{column}} '{{value}}' is out of range ({low} to {high})",
            column=name, min_value=low, max_value=high,
        )
        found["meta"]["only_if_matches"] = FORMATS["int"][0]
        return [found]
    return []


def _column_expectations(column: Column) -> list[dict[str, Any]]:
    name = column.name
    found: list[dict[str, Any]] = []
    if column.required:
        found.append(_expectation("expect_column_values_to_not_be_null", "required",
                                  "{column} is required", column=name))
    if column.required_when:
        when_column, when_value = column.required_when
        found.append(_expectation(
            "expect_column_values_to_not_be_null", "required",
            f"{{column}} is required when {when_column} is {when_value}", column.required_when,
            column=name,
        ))
    found += _format_expectations(column, column.type)
    found += _range_expectations(column)
    if column.type_from:
        for attribute_type, column_type in ATTRIBUTE_TYPES.items():
            for expectation in _format_expectations(column, column_type, (column.type_from, attribute_type)):
                expectation["meta"]["rule"] = "value_type"
                expectation["meta"]["message"] = f"{{column}} '{{value}}' is not a valid {attribute_type}"
                found.append(expectation)
    if column.enum:
        found.append(_expectation(
            "expect_column_values_to_be_in_set", "enum",
            "{column} '{value}' is not one of: " + ", ".join(column.enum),
            column=name, value_set=list(column.enum),
        ))
    if column.max_length is not None and column.type in ("str", "email", "url"):
        found.append(_expectation(
            "expect_column_value_lengths_to_be_between", "max_length",
            f"{{column}} is longer than {column.max_length} characters",
            column=name, max_value=column.max_length,
        ))
    if column.minimum == "non_zero":
        found.append(_expectation(
            "expect_column_values_to_match_regex", "non_zero", "{column} must not be 0",
            column=name, regex=r"^-?0*[1-9][0-9]*$",
        ))
    elif column.minimum:
        message = MINIMUM_MESSAGES[column.minimum]
        condition = None
        if column.minimum_unless:
            message += " (negative amounts are allowed only on prorated or one-time items)"
            condition = (column.minimum_unless, "false")
        found.append(_expectation(
            "expect_column_values_to_be_between", column.minimum, message, condition,
            column=name, min_value=0, strict_min=column.minimum == "positive",
        ))
    if column.negative_unless:
        found.append(_expectation(
            "expect_column_values_to_be_between", "non_negative",
            MINIMUM_MESSAGES["non_negative"] + " (negative quantities are allowed only on prorated differential items)",
            (column.negative_unless, "false"),
            column=name, min_value=0, strict_min=False,
        ))
    return found


def _limit_expectation(limit: DerivedLimit) -> dict[str, Any]:
    """A bound on a derived value (InputFile.limits); quarantine reports name the input column it comes from."""
    found = _expectation("expect_column_values_to_be_between", limit.rule, limit.message,
                         column=limit.derived, max_value=limit.limit, strict_max=True)
    found["meta"]["reported_column"] = limit.column
    return found


def _dated_reference_expectation(reference: Reference) -> dict[str, Any]:
    """A reference whose target row must also be dated on or before the referring row (cancellations)."""
    mine, theirs = reference.on_or_before or ("", "")
    found = _expectation(
        "expect_column_values_to_be_in_set", "cancellation_before_start",
        f"{{column}} '{{value}}' has no item in {reference.file}.csv with {theirs} on or before this row's"
        f" {mine}: the {mine} would cancel nothing",
        reference.when, column=reference.column,
        value_set={"$PARAMETER": f"keys:{reference.file}.{reference.target_column}"},
    )
    found["meta"]["reference"] = {
        "file": reference.file,
        "column": reference.target_column,
        "same_source": reference.same_source,
        "source_column": reference.source_column,
        "on_or_before": [mine, theirs],
    }
    return found


def build_suite(spec: InputFile) -> dict[str, Any]:
    """The GE suite (as its JSON dict) for one input file."""
    expectations: list[dict[str, Any]] = []
    for column in spec.columns:
        expectations += _column_expectations(column)
    for later, earlier in spec.ordered_pairs:
        expectations.append(_expectation(
            "expect_column_pair_values_a_to_be_greater_than_b", "period_order",
            f"{later} must be after {earlier}",
            column_A=later, column_B=earlier, or_equal=False, ignore_row_if="either_value_is_missing",
        ))
    expectations += [_limit_expectation(limit) for limit in spec.limits]
    for reference in spec.references:
        if reference.on_or_before:
            expectations.append(_dated_reference_expectation(reference))
            continue
        parameter = f"keys:{reference.file}.{reference.target_column}"
        found = _expectation(
            "expect_column_values_to_be_in_set", "reference",
            f"{{column}} '{{value}}' not found in {reference.file}.csv", reference.when,
            column=reference.column, value_set={"$PARAMETER": parameter},
        )
        found["meta"]["reference"] = {
            "file": reference.file,
            "column": reference.target_column,
            "same_source": reference.same_source,
            "source_column": reference.source_column,
        }
        expectations.append(found)
    if spec.convertible:
        currency, day = spec.convertible
        found = _expectation(
            "expect_column_values_to_be_in_set", "fx_rate",
            f"no rate in currency_rates.csv converts {{column}} '{{value}}' to the account currency"
            f" on or before {day}",
            column=currency, value_set={"$PARAMETER": f"convertible_currencies_on:{day}"},
        )
        found["meta"]["convertible_on"] = day
        expectations.append(found)
    if spec.acyclic:
        from_id = spec.acyclic[1]
        found = _expectation(
            "expect_column_values_to_not_be_in_set", "merge_cycle",
            "merging {value} leads back to itself: merge chains must not form a cycle",
            column=from_id, value_set={"$PARAMETER": "merge_cycle_members"},
        )
        found["meta"]["cycle_columns"] = list(spec.acyclic)
        expectations.append(found)
    key_kind = "expect_column_values_to_be_unique" if len(spec.key) == 1 else "expect_compound_columns_to_be_unique"
    key_kwargs: dict[str, Any] = {"column": spec.key[0]} if len(spec.key) == 1 else {"column_list": list(spec.key)}
    expectations.append(_expectation(
        key_kind, "unique_key",
        "duplicate key (" + ", ".join(spec.key) + ") in this file: the first row is kept",
        **key_kwargs,
    ))
    return {
        "name": spec.name,
        "expectations": expectations,
        "meta": {
            "openmrr": {
                "file": spec.filename,
                "level": spec.level,
                "key": list(spec.key),
                "fallback_key": list(spec.fallback_key),
                "columns": {c.name: c.type for c in spec.columns},
                "derived": spec.derived,
            }
        },
        "notes": f"Data-quality rules of {spec.filename} (spec/inputs.md). Generated by openmrr.suites.",
    }


def suite_path(name: str) -> Path:
    return EXPECTATIONS_DIR / f"{name}.json"


def load_suite(name: str) -> dict[str, Any]:
    return json.loads(suite_path(name).read_text())


def write_suites() -> list[Path]:
    written = []
    for spec in INPUT_FILES:
        path = suite_path(spec.name)
        path.write_text(json.dumps(build_suite(spec), indent=2) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_suites():
        print(written_path)
