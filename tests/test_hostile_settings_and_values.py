"""inputs.md "Bad input" and "Settings" (issue 13): settings text never becomes SQL, settings are read
once per run, a settings mistake is exit 2 naming the file and key, and a value validation accepts
never aborts the build."""

from __future__ import annotations

import decimal
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


# --- money the models derive from valid values never overflows (docs/reference.md, "Money beyond the
# inputs' range"). One data folder holds every extreme case, each on a customer of its own, and one CLI run
# builds it; the tests below read that warehouse. ---------------------------------------------------------

BOUND = "999999999999999.99"  # the largest valid amount (inputs.md money: |x| < 10^15)
MAX_RATE = "999999999999999.999999999999"  # the largest valid rate (15 integer digits, 12 decimals)
SUMMED = 20  # customers at the bound whose MRR adds up in every total


def _customer_with_item(rows: dict, customer: str, **item: str) -> None:
    """A customer with one invoice and one monthly subscription item from 2023-01-01 to 2023-02-01."""
    currency = item.pop("currency", "USD")
    rows["app/customers"].append({"external_id": customer})
    rows["app/invoices"].append({"external_id": f"i_{customer}", "customer_external_id": customer,
                                 "date": "2023-01-01", "currency": currency})
    rows["app/line_items"].append({
        "invoice_external_id": f"i_{customer}", "external_id": f"l_{customer}", "type": "subscription",
        "amount": BOUND, "subscription_external_id": f"s_{customer}", "plan_external_id": "m",
        "service_period_start": "2023-01-01", "service_period_end": "2023-02-01", "prorated": "false",
        "quantity": "1", **item})


@pytest.fixture(scope="module")
def extremes(tmp_path_factory) -> Path:
    """The warehouse of `openmrr run` over base_rows() plus every extreme customer below."""
    tmp_path = tmp_path_factory.mktemp("extremes")
    rows = base_rows()
    rows["app/plans"].append({"external_id": "d", "name": "Daily", "interval_count": "1", "interval_unit": "day"})
    # a daily plan at the bound: MRR = amount x 30.4375
    _customer_with_item(rows, "daily", plan_external_id="d", service_period_end="2023-01-02")
    # a prorated item at the bound over one day of a 31-day month: MRR = amount x 31, under the limit
    _customer_with_item(rows, "one_day", prorated="true", service_period_end="2023-01-02")
    # a prorated item at the bound over 1 second: an implied MRR of ~2.7 x 10^21, quarantined
    _customer_with_item(rows, "one_second", prorated="true", service_period_start="2023-01-01T00:00:00Z",
                        service_period_end="2023-01-01T00:00:01Z")
    # a prorated item shorter than a whole second: the models' seconds are 0, quarantined
    _customer_with_item(rows, "instant", amount="1", prorated="true", service_period_start="2023-01-01T00:00:00.2Z",
                        service_period_end="2023-01-01T00:00:00.7Z")
    # the largest amount at the largest rate
    _customer_with_item(rows, "fx", currency="GBP")
    rows["currency_rates"].append({"date": "2023-01-01", "from_currency": "GBP", "to_currency": "USD",
                                   "rate": MAX_RATE})
    for n in range(SUMMED):  # many amounts at the bound summed in every total
        _customer_with_item(rows, f"sum{n}")
    folder = write_folder(tmp_path / "data", rows)
    write_settings(folder, {"as_of": "2023-07-15T00:00:00Z", "max_bad_row_share": 0.1})
    warehouse = tmp_path / "w.duckdb"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
        result = invoke("run", "--data", str(folder), "--warehouse", str(warehouse))
    assert result.exit_code == 0, result.output
    return warehouse


def _rows(warehouse: Path, sql: str) -> list[tuple]:
    con = pipeline.connect(warehouse)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


EXACT = decimal.Context(prec=80, rounding=decimal.ROUND_HALF_UP)  # half away from zero, like the models


def _cents(value: D) -> D:
    return value.quantize(D("0.01"), context=EXACT)


FX_MRR = _cents(EXACT.multiply(D(BOUND), D(MAX_RATE)))
EXPECTED_MRR = {
    "app/c1": D("0.00"),  # untouched: cancelled on 2023-06-01
    "app/c2": D("90.15"),  # untouched: 1000.50 EUR a year / 12 = 83.38 EUR x 1.0812
    "app/daily": _cents(EXACT.multiply(D(BOUND), D("30.4375"))),
    "app/one_day": EXACT.multiply(D(BOUND), 31),
    "app/one_second": D("0.00"),
    "app/instant": D("0.00"),
    "app/fx": FX_MRR,
    **{f"app/sum{n}": D(BOUND) for n in range(SUMMED)},
}


def test_untouched_customers_keep_their_exact_mrr(extremes):
    mrr = customer_mrr(extremes)
    assert (mrr["app/c1"], mrr["app/c2"]) == (D("0.00"), D("90.15"))


def test_a_daily_plan_at_the_amount_bound_computes_its_mrr_exactly(extremes):
    assert customer_mrr(extremes)["app/daily"] == D("30437499999999999.70")


def test_a_short_prorated_item_at_the_bound_computes_exactly_below_the_implied_mrr_limit(extremes):
    assert customer_mrr(extremes)["app/one_day"] == D("30999999999999999.69")


def test_a_one_second_prorated_item_at_the_bound_is_quarantined_with_implied_mrr_range(extremes):
    quarantined = _rows(extremes, "select line, amount, rule, message from quarantine.line_items order by line")
    assert quarantined[0] == (
        6, BOUND, "implied_mrr_range",
        f"amount '{BOUND}' is too large for its prorated service period (or the period is shorter than a second):"
        " normalised to a month it implies an MRR of 10^17 or more (an item's MRR must be less than 10^17)")
    assert customer_mrr(extremes)["app/one_second"] == D("0.00")


def test_a_prorated_item_shorter_than_a_second_is_quarantined_with_implied_mrr_range(extremes):
    quarantined = _rows(extremes, "select line, rule from quarantine.line_items order by line")
    assert quarantined == [(6, "implied_mrr_range"), (7, "implied_mrr_range")]
    assert customer_mrr(extremes)["app/instant"] == D("0.00")


def test_the_largest_amount_at_the_largest_rate_converts_exactly(extremes):
    mrr = D("999999999999999989999999999000.00")  # (10^15 - 0.01) x (10^15 - 10^-12), to the cent
    assert mrr == FX_MRR
    assert customer_mrr(extremes)["app/fx"] == mrr
    assert _rows(extremes, "select arr from analytics.customers where customer_external_id = 'fx'") == [
        (EXACT.multiply(mrr, 12),)]


def test_totals_of_many_amounts_at_the_bound_are_exact(extremes):
    assert customer_mrr(extremes) == EXPECTED_MRR
    months = {month.isoformat(): rest for month, *rest in _rows(
        extremes, "select month, mrr, arr, customers, arpa, customer_churn_rate, gross_mrr_churn_rate, ltv"
        " from analytics.metrics_monthly where month in ('2023-05-01', '2023-06-01') order by month")}
    with decimal.localcontext(EXACT):
        total = sum(EXPECTED_MRR.values()) + D("100.00")  # c1 was live until June
        live = len([v for v in EXPECTED_MRR.values() if v]) + 1
        assert months["2023-05-01"] == [total, total * 12, live, _cents(total / live), D("0.000000"),
                                        D("0.000000"), None]
        june_total, june_live = total - D("100.00"), live - 1
        june_arpa = _cents(june_total / june_live)
        churn_rate = (D(1) / live).quantize(D("0.000001"))
        # ltv = arpa / the mean customer churn rate of the months that have one (February to June)
        assert months["2023-06-01"] == [june_total, june_total * 12, june_live, june_arpa, churn_rate,
                                        D("0.000000"), _cents(june_arpa * 5 / churn_rate)]
