"""inputs.md "Bad input" and "Settings" (issue 13): settings text never becomes SQL, settings are read
once per run, a settings mistake is exit 2 naming the file and key, and a value validation accepts
never aborts the build."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from openmrr import pipeline
from openmrr.cli import app
from openmrr.errors import ConfigError
from orchestration.refresh import refresh
from tests.helpers import base_rows, write_csv, write_folder

runner = CliRunner()
INJECTION = "x') or true or ('"


@pytest.fixture(autouse=True)
def _dagster_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def write_settings(folder: Path, settings: dict) -> Path:
    path = folder / "openmrr.yml"
    path.write_text(yaml.safe_dump(settings, allow_unicode=True))
    return path


def write_source(folder: Path, source: str, amount: str, fees: str, currency: str = "USD",
                 start: str = "2024-01-01", end: str = "2024-02-01") -> None:
    """One customer `c` with one monthly item on one invoice, in source folder `source`."""
    write_csv(folder / source / "customers.csv", [{"external_id": "c"}])
    write_csv(folder / source / "plans.csv",
              [{"external_id": "m", "name": "Monthly", "interval_count": 1, "interval_unit": "month"}])
    write_csv(folder / source / "invoices.csv",
              [{"external_id": "i", "customer_external_id": "c", "date": start, "currency": currency}])
    write_csv(folder / source / "line_items.csv", [
        {"invoice_external_id": "i", "type": "subscription", "subscription_external_id": "s",
         "plan_external_id": "m", "service_period_start": start, "service_period_end": end,
         "amount": amount, "prorated": "false", "transaction_fees": fees}])


def customer_mrr(warehouse: Path) -> dict[str, D]:
    con = pipeline.connect(warehouse)  # dbt-duckdb may still hold the file open in this process
    try:
        rows = con.execute("select data_source, customer_external_id, mrr from analytics.customers").fetchall()
    finally:
        con.close()
    return {f"{source}/{customer}": mrr for source, customer, mrr in rows}


# --- item 1: no SQL injection through settings -------------------------------------------------------

def test_a_sources_key_that_is_not_a_source_folder_is_a_settings_error_naming_file_key_and_folders(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    path = write_settings(folder, {"sources": {INJECTION: {"deduct_transaction_fees": True}}})
    for command in (("run", "--data", str(folder), "--warehouse", str(tmp_path / "w.duckdb")),
                    ("validate", "--data", str(folder))):
        result = invoke(*command)
        assert result.exit_code == 2, result.output
        flat = " ".join(result.output.split())
        assert str(path) in flat and f"sources: {INJECTION!r}" in flat
        assert "source folders found: 'app'" in flat
        assert "Traceback" not in result.output
    assert not (tmp_path / "w.duckdb").exists()


def test_source_folders_named_like_sql_get_exactly_their_own_fees_deducted(tmp_path):
    folder = tmp_path / "data"
    write_source(folder, "app", "100", "3")
    write_source(folder, "o'reilly", "200", "5")
    write_source(folder, INJECTION, "300", "7")
    write_settings(folder, {"as_of": "2024-01-15", "sources": {
        "o'reilly": {"deduct_transaction_fees": True}, INJECTION: {"deduct_transaction_fees": True}}})
    refresh(folder, tmp_path / "w.duckdb")
    assert customer_mrr(tmp_path / "w.duckdb") == {
        "app/c": D("100.00"), "o'reilly/c": D("195.00"), f"{INJECTION}/c": D("293.00")}


def test_sources_that_keep_their_fees_under_an_account_wide_deduction_are_quoted_too(tmp_path):
    folder = tmp_path / "data"
    write_source(folder, "app", "100", "3")
    write_source(folder, "o'reilly", "200", "5")
    write_settings(folder, {"as_of": "2024-01-15", "deduct_transaction_fees": True,
                            "sources": {"o'reilly": {"deduct_transaction_fees": False}}})
    refresh(folder, tmp_path / "w.duckdb")
    assert customer_mrr(tmp_path / "w.duckdb") == {"app/c": D("97.00"), "o'reilly/c": D("200.00")}


# --- item 2: a value that passes validation never aborts the build ------------------------------------

def test_overflowing_values_are_quarantined_and_the_run_builds_the_rest_exactly(tmp_path):
    clean = write_folder(tmp_path / "clean", base_rows())
    write_settings(clean, {"as_of": "2024-06-01T00:00:00Z", "max_bad_row_share": 0.6})
    assert invoke("run", "--data", str(clean), "--warehouse", str(tmp_path / "clean.duckdb")).exit_code == 0

    rows = base_rows()
    rows["app/customers"].append({"external_id": "c3", "company": "Huge"})
    rows["app/invoices"].append({"external_id": "i3", "customer_external_id": "c3", "date": "2023-01-01",
                                 "currency": "USD"})
    rows["app/line_items"].append({**rows["app/line_items"][0], "invoice_external_id": "i3", "external_id": "l3",
                                   "subscription_external_id": "s3", "amount": "12345678901234567.89"})
    rows["currency_rates"].append({"date": "2023-01-01", "from_currency": "GBP", "to_currency": "USD",
                                   "rate": "120000000000000000000000000000"})
    folder = write_folder(tmp_path / "data", rows)
    write_settings(folder, {"as_of": "2024-06-01T00:00:00Z", "max_bad_row_share": 0.6})
    warehouse = tmp_path / "w.duckdb"
    for _ in range(2):  # and every later run
        result = invoke("run", "--data", str(folder), "--warehouse", str(warehouse))
        assert result.exit_code == 0, result.output
    con = pipeline.connect(warehouse)
    assert con.execute("select line, rule, message from quarantine.line_items").fetchall() == [
        (4, "money_range",
         "amount '12345678901234567.89' is out of range: amounts must be less than 10^15 in absolute value")]
    assert con.execute("select line, rule from quarantine.currency_rates").fetchall() == [(3, "rate_precision")]
    con.close()
    assert customer_mrr(warehouse) == {**customer_mrr(tmp_path / "clean.duckdb"), "app/c3": D("0.00")}


def test_values_at_the_bounds_pass_and_compute_exactly(tmp_path):
    folder = tmp_path / "data"
    write_source(folder, "big", "999999999999999.99", "", start="1970-01-01", end="1970-02-01")
    write_source(folder, "eur", "0.01", "", currency="EUR")
    write_source(folder, "gbp", "999999999999999.99", "", currency="GBP", start="2199-11-01",
                 end="2199-12-01T00:00:00Z")
    write_csv(folder / "currency_rates.csv", [
        {"date": "2024-01-01", "from_currency": "EUR", "to_currency": "USD", "rate": "999999999999999.999999999999"},
        {"date": "2199-11-01", "from_currency": "GBP", "to_currency": "USD", "rate": "0.000000000001"},
    ])
    write_settings(folder, {"as_of": "2199-11-15"})
    result = refresh(folder, tmp_path / "w.duckdb")
    assert sum(report.rows_quarantined for report in result.reports) == 0
    assert customer_mrr(tmp_path / "w.duckdb") == {
        "big/c": D("999999999999999.99"),
        "eur/c": D("10000000000000.00"),  # 0.01 x 999999999999999.999999999999, to the cent
        "gbp/c": D("1000.00"),  # 999999999999999.99 x 0.000000000001
    }


# --- item 5: settings read once per run ---------------------------------------------------------------

@pytest.mark.parametrize("change", ["remove", "rewrite"])
def test_settings_changed_mid_run_do_not_change_the_numbers(tmp_path, change):
    folder = tmp_path / "data"
    write_source(folder, "app", "100", "4")
    settings = write_settings(folder, {"as_of": "2024-01-15", "deduct_transaction_fees": True})

    def on_step(step: str) -> None:
        if step == "validate":  # after the run read its settings, before the dbt step
            if change == "remove":
                settings.unlink()
            else:
                write_settings(folder, {"as_of": "2024-01-15", "deduct_transaction_fees": False})

    result = refresh(folder, tmp_path / "w.duckdb", progress=pipeline.Progress(on_step=on_step))
    assert settings.exists() is (change == "rewrite")
    assert customer_mrr(tmp_path / "w.duckdb") == {"app/c": D("96.00")}
    assert result.summary is not None and result.summary.mrr == D("96.00")


# --- item 7: settings mistakes are exit 2, and two more rules -----------------------------------------

@pytest.mark.parametrize(("settings", "fragments"), [
    ({"as_of": "2024-02-30"}, ["as_of", "day value is outside expected range"]),
    ("as_of: 2024-02-30\n", ["as_of", "day value is outside expected range"]),
    ({"account_currency": "XYZ"}, ["account_currency", "'XYZ' is not an ISO 4217 currency code"]),
    ({"days_per_month": 1e30}, ["days_per_month", "less than or equal to 31"]),
])
def test_a_settings_mistake_is_exit_2_naming_the_file_and_key(tmp_path, settings, fragments):
    folder = write_folder(tmp_path / "data", base_rows())
    path = folder / "openmrr.yml"
    path.write_text(settings) if isinstance(settings, str) else write_settings(folder, settings)
    for command in (("validate", "--data", str(folder)),
                    ("run", "--data", str(folder), "--warehouse", str(tmp_path / "w.duckdb"))):
        result = invoke(*command)
        assert result.exit_code == 2, result.output
        flat = " ".join(result.output.split())
        assert str(path) in flat and all(fragment in flat for fragment in fragments), flat
        assert "Internal error" not in flat and "Traceback" not in flat


def test_settings_reject_the_injection_key_before_anything_runs(tmp_path):
    folder = write_folder(tmp_path / "data", base_rows())
    write_settings(folder, {"sources": {INJECTION: {}}})
    with pytest.raises(ConfigError, match="is not a source folder"):
        pipeline.resolve_settings(folder, None)


def test_validate_quarantines_a_cancellation_dated_before_its_subscription_starts(tmp_path):
    rows = base_rows()
    rows["app/cancellations"][0]["cancelled_at"] = "2022-12-31"
    folder = write_folder(tmp_path / "data", rows)
    result = invoke("validate", "--data", str(folder))
    assert result.exit_code == 1
    flat = " ".join(result.output.split())
    assert ("app/cancellations.csv: 1 of 1 rows quarantined (100.0%), top rules: cancellation_before_start (1)"
            in flat)


def test_validate_accepts_a_negative_quantity_only_on_a_prorated_differential_item(tmp_path):
    rows = base_rows()
    rows["app/line_items"][0] |= {"quantity": "-1", "prorated": "true", "proration_type": "differential"}
    rows["app/line_items"][1] |= {"quantity": "-1", "prorated": "true", "proration_type": "full"}
    folder = write_folder(tmp_path / "data", rows)
    result = invoke("validate", "--data", str(folder))
    assert result.exit_code == 1
    flat = " ".join(result.output.split())
    assert "app/line_items.csv: 1 of 2 rows quarantined (50.0%), top rules: non_negative (1)" in flat
