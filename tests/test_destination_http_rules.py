"""The small rules under the HTTP destinations: exact money text, retry timing, URLs, secrets, settings."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime

import duckdb
import pytest
from pydantic import ValidationError

from openmrr.destinations import intercom, slack, webhook
from openmrr.destinations.base import DeliveryContext
from openmrr.destinations.http import RetrySettings, backoff_seconds, checked_url, retry_after_seconds
from openmrr.destinations.money import Cents, dumps
from openmrr.errors import ConfigError


def test_money_is_written_from_exact_cents_with_two_decimals():
    assert Cents.of(Decimal("166.67")).text() == "166.67"
    assert Cents.of(Decimal("100")).text() == "100.00"
    assert Cents.of(Decimal("-0.05")).text() == "-0.05"
    assert Cents.of(0.1 + 0.2).text() == "0.30"  # a float's 0.30000000000000004 never reaches the wire
    assert Cents.of(Decimal("1234567.5")).text(thousands=True, signed=True) == "+1,234,567.50"
    assert Cents.of(Decimal("0.005")).value == 1 and Cents.of(Decimal("-0.005")).value == -1  # half away from 0


def test_json_bodies_carry_money_as_numbers_that_parse_back_to_the_same_decimal():
    text = dumps({"mrr_movement": Cents.of(Decimal("166.67")), "name": "Zoë \"Z\"", "items": [Cents(5), None, True]})
    assert text == '{"mrr_movement": 166.67, "name": "Zoë \\"Z\\"", "items": [0.05, null, true]}'
    assert json.loads(text, parse_float=Decimal)["mrr_movement"] == Decimal("166.67")


def test_retry_after_accepts_seconds_and_http_dates():
    now = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_backoff_doubles_with_jitter_and_is_capped():
    retry = RetrySettings(base_delay_seconds=1, max_delay_seconds=5)
    for attempt, full in [(1, 1), (2, 2), (3, 4), (4, 5), (9, 5)]:
        delays = [backoff_seconds(attempt, retry) for _ in range(200)]
        assert all(full / 2 <= delay <= full for delay in delays)
        assert len(set(delays)) > 1  # jittered


def test_urls_must_be_https_except_to_this_machine():
    assert checked_url("https://hooks.example.com/x", "url") == "https://hooks.example.com/x"
    assert checked_url("http://127.0.0.1:8080/x", "url")
    with pytest.raises(ValueError, match="url must be an https:// URL"):
        checked_url("http://hooks.example.com/x", "url")
    with pytest.raises(ValueError) as error:
        checked_url("ftp://T000/secret-token", "SLACK_URL", secret=True)
    assert "secret-token" not in str(error.value)


def test_webhook_signature_is_the_hmac_sha256_hex_of_the_exact_body():
    body = b'{"type": "mrr_movement"}'
    assert webhook.signature("s3cret", body) == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(("module", "settings", "variable"), [
    (webhook, {"url": "https://hooks.example.com", "secret_env": "HOOK_SECRET"}, "HOOK_SECRET"),
    (slack, {"webhook_url_env": "SLACK_URL"}, "SLACK_URL"),
    (intercom, {"access_token_env": "INTERCOM_TOKEN"}, "INTERCOM_TOKEN"),
])
def test_a_missing_secret_is_a_configuration_error_naming_the_variable(module, settings, variable):
    context = DeliveryContext("crm", "run-1", date(2024, 1, 1), [], duckdb.connect(), environ={})
    with pytest.raises(ConfigError, match=f"destination crm: environment variable {variable} .* is not set"):
        module.deliver(module.Settings.model_validate(settings), context)


def test_settings_reject_unknown_keys_secrets_in_place_of_names_and_plain_http():
    with pytest.raises(ValidationError, match="retries"):
        webhook.Settings.model_validate({"url": "https://x.example.com", "secret_env": "S", "retries": 3})
    with pytest.raises(ValidationError, match="secret_env"):
        webhook.Settings.model_validate({"url": "https://x.example.com", "secret_env": "whsec 123"})
    with pytest.raises(ValidationError, match="api_url must be an https:// URL"):
        intercom.Settings.model_validate({"access_token_env": "T", "api_url": "http://api.intercom.io"})
    with pytest.raises(ValidationError, match="movement_threshold"):
        slack.Settings.model_validate({"webhook_url_env": "SLACK_URL", "movement_threshold": -1})


def test_a_slack_webhook_url_that_is_not_https_is_a_configuration_error_that_hides_the_url():
    context = DeliveryContext("team", "run-1", date(2024, 1, 1), [], duckdb.connect(),
                              environ={"SLACK_URL": "http://hooks.slack.example/services/T0/B0/token123"})
    with pytest.raises(ConfigError, match="environment variable SLACK_URL must be an https:// URL") as error:
        slack.deliver(slack.Settings(webhook_url_env="SLACK_URL"), context)
    assert "token123" not in str(error.value)
