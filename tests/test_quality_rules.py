"""inputs.md "Bad input": one test per rule, each with one broken row and everything else clean."""

from __future__ import annotations

import pytest

from tests.helpers import base_rows, check_folder, quarantined, write_folder


def test_the_base_folder_is_clean(tmp_path):
    _, reports = check_folder(write_folder(tmp_path, base_rows()))
    assert [r.rows_quarantined for r in reports] == [0] * len(reports)
    assert sum(r.rows_read for r in reports) == 15


# a prorated item at the amount bound over 1 second
SHORT_PRORATED = {"amount": "999999999999999.99", "prorated": "true", "service_period_start": "2023-01-01T00:00:00Z",
                  "service_period_end": "2023-01-01T00:00:01Z"}

# (file, row index, changes, rule, message fragment)
RULE_CASES = [
    ("app/customers", 0, {"external_id": " "}, "required", "external_id is required"),
    ("app/customers", 0, {"email": "not-an-email"}, "email_format", "email 'not-an-email' is not a valid e-mail"),
    ("app/customers", 0, {"country": "XX"}, "country_code", "country 'XX' is not an ISO 3166-1"),
    ("app/customers", 0, {"state": "ZZ"}, "us_state_code", "state 'ZZ' is not a US state code"),
    ("app/customers", 1, {"lead_status": "Hot Lead"}, "enum", "lead_status 'Hot Lead' is not one of"),
    ("app/customers", 0, {"company": "x" * 256}, "max_length", "company is longer than 255 characters"),
    ("app/customers", 0, {"lead_created_at": "2023-02-30"}, "type_ts", "'2023-02-30' is not an ISO 8601"),
    ("app/customers", 0, {"lead_created_at": "yesterday"}, "type_ts", "'yesterday' is not an ISO 8601"),
    ("app/contacts", 0, {"linkedin": "my profile"}, "url_format", "linkedin 'my profile' does not end in a domain"),
    ("app/contacts", 0, {"customer_external_id": "nobody"}, "reference",
     "customer_external_id 'nobody' not found in customers.csv"),
    ("app/plans", 0, {"interval_count": "0"}, "positive", "interval_count must be greater than 0, got 0"),
    ("app/plans", 0, {"interval_count": "1.5"}, "type_int", "interval_count '1.5' is not an integer"),
    ("app/plans", 0, {"interval_unit": "week"}, "enum", "interval_unit 'week' is not one of: day, month, year"),
    ("app/plans", 1, {"name": ""}, "required", "name is required"),
    ("app/invoices", 0, {"currency": "XYZ"}, "currency_code", "currency 'XYZ' is not an ISO 4217"),
    ("app/invoices", 0, {"customer_external_id": "ghost"}, "reference", "'ghost' not found in customers.csv"),
    ("app/invoices", 0, {"status": "lost"}, "enum", "status 'lost' is not one of"),
    ("app/line_items", 0, {"amount": "10.123"}, "type_money", "amount '10.123' is not an amount with at most 2"),
    ("app/line_items", 0, {"amount": "-5"}, "non_negative", "amount must not be negative, got -5"),
    ("app/line_items", 0, {"plan_external_id": ""}, "required",
     "plan_external_id is required when type is subscription"),
    ("app/line_items", 0, {"plan_external_id": "weekly"}, "reference", "'weekly' not found in plans.csv"),
    ("app/line_items", 0, {"invoice_external_id": "i9"}, "reference", "'i9' not found in invoices.csv"),
    ("app/line_items", 0, {"service_period_end": "2023-01-01"}, "period_order",
     "service_period_end must be after service_period_start"),
    ("app/line_items", 0, {"prorated": "maybe"}, "type_bool", "prorated 'maybe' is not a boolean"),
    ("app/line_items", 0, {"quantity": "0"}, "non_zero", "quantity must not be 0"),
    ("app/line_items", 0, {"proration_type": "half"}, "enum", "proration_type 'half' is not one of"),
    ("app/line_items", 0, {"discount_code": "D" * 65}, "max_length", "discount_code is longer than 64 characters"),
    ("app/line_items", 0, {"tax_amount": "-1"}, "non_negative", "tax_amount must not be negative"),
    ("app/transactions", 0, {"amount": "0"}, "positive", "amount must be greater than 0, got 0"),
    ("app/transactions", 0, {"result": "pending"}, "enum", "result 'pending' is not one of: successful, failed"),
    ("app/transactions", 0, {"date": ""}, "required", "date is required"),
    ("app/subscription_events", 0, {"amount": ""}, "required", "amount is required when is_amount_event is true"),
    ("app/subscription_events", 0, {"event_type": "subscription_event_retracted"}, "required",
     "retracted_event_id is required when event_type is subscription_event_retracted"),
    ("app/subscription_events", 0, {"event_type": "subscription_event_retracted", "retracted_event_id": "e404"},
     "reference", "retracted_event_id 'e404' not found in subscription_events.csv"),
    ("app/cancellations", 0, {"cancelled_at": ""}, "required", "cancelled_at is required"),
    ("currency_rates", 0, {"rate": "-1.2"}, "positive", "rate must be greater than 0"),
    ("currency_rates", 0, {"rate": "abc"}, "type_decimal", "rate 'abc' is not a decimal number"),
    ("currency_rates", 0, {"from_currency": "EURO"}, "currency_code", "from_currency 'EURO' is not an ISO 4217"),
    ("tags", 0, {"customer_external_id": "c404"}, "reference", "'c404' not found in customers.csv"),
    ("custom_attributes", 0, {"key": "seat count"}, "attr_key_format", "may contain only letters, digits and _"),
    ("custom_attributes", 0, {"value": "twelve"}, "value_type", "value 'twelve' is not a valid Integer"),
    ("custom_attributes", 0, {"type": "Float"}, "enum", "type 'Float' is not one of"),
    # range rules (inputs.md types; "Bad input": a value that passes must never fail the build)
    ("app/line_items", 0, {"amount": "12345678901234567.89"}, "money_range",
     "amount '12345678901234567.89' is out of range: amounts must be less than 10^15 in absolute value"),
    ("app/line_items", 0, {"amount": "-1000000000000000", "prorated": "true"}, "money_range",
     "amount '-1000000000000000' is out of range"),
    ("app/line_items", 0, {"tax_amount": "1000000000000000.00"}, "money_range", "tax_amount '1000000000000000.00'"),
    ("app/transactions", 0, {"amount": "99999999999999999999999999999999999999999"}, "money_range",
     "is out of range"),
    ("currency_rates", 0, {"rate": "120000000000000000000000000000"}, "rate_precision",
     "rate '120000000000000000000000000000' has more than 12 decimals or more than 15 integer digits"),
    ("currency_rates", 0, {"rate": "0.0000000000001"}, "rate_precision", "rate '0.0000000000001' has more than 12"),
    ("currency_rates", 0, {"rate": "1.0812000000001"}, "rate_precision", "has more than 12 decimals"),
    ("app/customers", 0, {"lead_created_at": "1969-12-31T23:59:59Z"}, "ts_range",
     "lead_created_at '1969-12-31T23:59:59Z' is outside the years 1970 to 2199"),
    ("app/invoices", 0, {"date": "2200-01-01"}, "ts_range", "date '2200-01-01' is outside the years 1970 to 2199"),
    ("app/line_items", 0, {"service_period_end": "9999-12-31"}, "ts_range", "service_period_end '9999-12-31'"),
    ("app/plans", 0, {"interval_count": "1001"}, "int_range", "interval_count '1001' is out of range: at most 1000"),
    ("app/line_items", 0, {"quantity": "2147483648"}, "int_range",
     "quantity '2147483648' is out of range (-2147483648 to 2147483647)"),
    ("app/subscription_events", 0, {"event_order": "-99999999999999999999999"}, "int_range", "is out of range"),
    # docs/reference.md: (|amount| + tax + fees) x 2,678,400 s (31 days) / the period's whole seconds < 10^17
    ("app/line_items", 0, {**SHORT_PRORATED, "service_period_end": "2023-01-01T07:26:23Z"}, "implied_mrr_range",
     "amount '999999999999999.99' is too large for its prorated service period (or the period is shorter than"
     " a second): normalised to a month it implies an MRR of 10^17 or more (an item's MRR must be less than 10^17)"),
    ("app/line_items", 0, {**SHORT_PRORATED, "amount": "-999999999999999.99"}, "implied_mrr_range",
     "amount '-999999999999999.99' is too large"),
    ("app/line_items", 0, {**SHORT_PRORATED, "amount": "1", "tax_amount": "999999999999999.99"}, "implied_mrr_range",
     "amount '1' is too large"),
    ("app/line_items", 0, {**SHORT_PRORATED, "amount": "0.01", "service_period_start": "2023-01-01T00:00:00.2Z",
                           "service_period_end": "2023-01-01T00:00:00.7Z"}, "implied_mrr_range",
     "amount '0.01' is too large for its prorated service period"),
    # inputs.md line_items: negative quantity only on a prorated differential item
    ("app/line_items", 0, {"quantity": "-1"}, "non_negative",
     "quantity must not be negative, got -1 (negative quantities are allowed only on prorated differential items)"),
    ("app/line_items", 0, {"quantity": "-1", "prorated": "true", "proration_type": "full"}, "non_negative",
     "negative quantities are allowed only on prorated differential items"),
    # inputs.md cancellations: a cancellation with no item starting on or before it is quarantined
    ("app/cancellations", 0, {"cancelled_at": "2022-12-31T23:59:59Z"}, "cancellation_before_start",
     "subscription_external_id 's1' has no item in line_items.csv with service_period_start on or before this"
     " row's cancelled_at"),
    ("app/cancellations", 0, {"subscription_external_id": "s404"}, "cancellation_before_start",
     "subscription_external_id 's404' has no item in line_items.csv"),
]


@pytest.mark.parametrize(
    ("file", "index", "changes", "rule", "message"), RULE_CASES,
    ids=[f"{case[0].split('/')[-1]}-{case[3]}-{'-'.join(case[2])}" for case in RULE_CASES],
)
def test_a_broken_row_is_quarantined_with_its_rule_and_message(tmp_path, file, index, changes, rule, message):
    rows = base_rows()
    rows[file][index] = {**rows[file][index], **changes}
    con, reports = check_folder(write_folder(tmp_path, rows))
    name = file.split("/")[-1]
    found = quarantined(con, name)
    assert [(line, found_rule) for _, line, found_rule, _ in found][:1] == [(index + 2, rule)]
    assert message in found[0][3]
    assert len(found) == 1, "the other rows of the file stay clean"
    # other files lose only rows that point at the broken one
    others = [r for r in reports if r.file != f"{name}.csv" and r.rows_quarantined]
    assert {rule for r in others for _, _, rule, _ in quarantined(con, r.file.removesuffix(".csv"))} <= {
        "reference", "depends_on_quarantined", "fx_rate"}


def test_second_and_later_rows_of_a_repeated_key_are_quarantined(tmp_path):
    rows = base_rows()
    rows["app/customers"].append({**rows["app/customers"][0], "company": "Again"})
    rows["app/customers"].append({**rows["app/customers"][0], "company": "And again"})
    con, _ = check_folder(write_folder(tmp_path, rows))
    assert [(line, rule) for _, line, rule, _ in quarantined(con, "customers")] == [
        (4, "unique_key"), (5, "unique_key"),
    ]


def test_rows_depending_on_a_quarantined_row_follow_it(tmp_path):
    rows = base_rows()
    rows["app/invoices"][0]["currency"] = "???"
    con, _ = check_folder(write_folder(tmp_path, rows))
    assert quarantined(con, "line_items") == [
        ("app", 2, "depends_on_quarantined", "depends on quarantined invoices row 'i1'"),
    ]
    assert [rule for *_, rule, _ in quarantined(con, "transactions")] == ["depends_on_quarantined"]


def test_negative_amounts_are_allowed_on_prorated_and_one_time_items(tmp_path):
    rows = base_rows()
    rows["app/line_items"][0] |= {"amount": "-5", "prorated": "true"}
    rows["app/line_items"].append({"invoice_external_id": "i1", "type": "one_time", "amount": "-20"})
    con, _ = check_folder(write_folder(tmp_path, rows))
    assert quarantined(con, "line_items") == []


def test_a_negative_quantity_is_allowed_on_a_prorated_differential_item(tmp_path):
    rows = base_rows()
    rows["app/line_items"][0] |= {"amount": "-5", "prorated": "true", "quantity": "-1"}
    rows["app/line_items"][1] |= {"prorated": "true", "proration_type": "differential", "quantity": "-2"}
    con, _ = check_folder(write_folder(tmp_path, rows))
    assert quarantined(con, "line_items") == []


def test_values_at_the_bounds_of_every_range_pass(tmp_path):
    rows = base_rows()
    rows["app/line_items"][0] |= {"amount": "999999999999999.99", "tax_amount": "0000999999999999999.99",
                                  "quantity": "2147483647", "service_period_start": "1970-01-01",
                                  "service_period_end": "2199-12-31T23:59:59.999Z"}
    rows["app/line_items"][1] |= {"amount": "-999999999999999.99", "prorated": "true"}
    rows["app/plans"][0]["interval_count"] = "1000"
    rows["currency_rates"].append({"date": "2023-01-02", "from_currency": "EUR", "to_currency": "USD",
                                   "rate": "999999999999999.999999999999"})
    rows["currency_rates"].append({"date": "2023-01-03", "from_currency": "EUR", "to_currency": "USD",
                                   "rate": "0.000000000001"})
    rows["app/subscription_events"][0] |= {"event_order": "-2147483648"}
    _, reports = check_folder(write_folder(tmp_path, rows))
    assert [r.rows_quarantined for r in reports] == [0] * len(reports)


def test_a_cancellation_of_a_subscription_whose_items_are_all_quarantined_follows_them(tmp_path):
    rows = base_rows()
    rows["app/line_items"][0]["amount"] = "1.234"
    con, _ = check_folder(write_folder(tmp_path, rows))
    assert quarantined(con, "cancellations") == [
        ("app", 2, "depends_on_quarantined", "depends on quarantined line_items row 's1'"),
    ]


def test_state_is_only_checked_for_us_customers(tmp_path):
    rows = base_rows()
    rows["app/customers"][1]["state"] = "Bavaria"
    con, _ = check_folder(write_folder(tmp_path, rows))
    assert quarantined(con, "customers") == []


def test_a_row_breaking_several_rules_reports_all_of_them(tmp_path):
    rows = base_rows()
    rows["app/line_items"][0] |= {"amount": "1.234", "quantity": "0", "prorated": "perhaps"}
    con, _ = check_folder(write_folder(tmp_path, rows))
    [(_, _, rule, message)] = quarantined(con, "line_items")
    assert rule == "type_money"
    assert "quantity must not be 0" in message and "prorated 'perhaps'" in message


def test_an_invoice_whose_currency_has_no_rate_yet_is_quarantined_never_converted_at_one(tmp_path):
    rows = base_rows()
    rows["app/invoices"][1]["date"] = "2022-12-31"  # EUR, but the first EUR rate is 2023-01-01
    con, _ = check_folder(write_folder(tmp_path, rows))
    assert quarantined(con, "invoices") == [(
        "app", 3, "fx_rate",
        "no rate in currency_rates.csv converts currency 'EUR' to the account currency on or before date",
    )]
    assert [rule for *_, rule, _ in quarantined(con, "line_items")] == ["depends_on_quarantined"]


def test_an_inverse_rate_makes_a_currency_convertible(tmp_path):
    rows = base_rows()
    rows["currency_rates"] = [{"date": "2023-01-01", "from_currency": "USD", "to_currency": "EUR", "rate": "0.92"}]
    con, _ = check_folder(write_folder(tmp_path, rows))
    assert quarantined(con, "invoices") == []


def test_customer_merges_that_form_a_cycle_are_quarantined(tmp_path):
    rows = base_rows()
    rows["app/customers"].append({"external_id": "c3", "company": "Three"})
    rows["customer_merges"] = [
        {"from_source": "app", "from_external_id": "c1", "into_source": "app", "into_external_id": "c2"},
        {"from_source": "app", "from_external_id": "c2", "into_source": "app", "into_external_id": "c1"},
        {"from_source": "app", "from_external_id": "c3", "into_source": "app", "into_external_id": "c1"},
    ]
    con, _ = check_folder(write_folder(tmp_path, rows))
    assert [(line, rule) for _, line, rule, _ in quarantined(con, "customer_merges")] == [
        (2, "merge_cycle"), (3, "merge_cycle"),
    ]
    assert "merging c1 leads back to itself" in quarantined(con, "customer_merges")[0][3]


def test_a_prorated_item_just_within_the_implied_mrr_limit_passes(tmp_path):
    """999,999,999,999,999.99 x 2,678,400 s / 26,784 s is just under 10^17; 26,783 s is over (RULE_CASES)."""
    rows = base_rows()
    rows["app/line_items"][0] |= {**SHORT_PRORATED, "service_period_end": "2023-01-01T07:26:24Z"}
    _, reports = check_folder(write_folder(tmp_path, rows))
    assert [r.rows_quarantined for r in reports] == [0] * len(reports)


def test_a_malformed_amount_gets_its_type_message_alone_not_the_implied_mrr_one(tmp_path):
    rows = base_rows()
    rows["app/line_items"][0] |= {**SHORT_PRORATED, "amount": "9999999999999999999.999"}
    con, _ = check_folder(write_folder(tmp_path, rows))
    assert [(rule, message) for _, _, rule, message in quarantined(con, "line_items")] == [
        ("type_money", "amount '9999999999999999999.999' is not an amount with at most 2 decimals")]
