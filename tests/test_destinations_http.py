"""Webhook, Slack and Intercom destinations against a real HTTP server on 127.0.0.1 (spec/destinations.md).

The warehouse is the 02-lifecycle scenario, built once per module; each test delivers from its own copy.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from openmrr.destinations import intercom, slack, webhook
from openmrr.destinations.base import DeliveryContext
from openmrr.destinations.money import Cents
from orchestration.refresh import refresh
from tests.destination_fixtures import LIFECYCLE_DATA
from tests.helpers import PROJECT_ROOT
from tests.http_receiver import IntercomWorkspace, Receiver, Reply, serving
from tests.servers import free_port

pytestmark = pytest.mark.slow

SECRET = "whsec-test-secret"
TOKEN = "intercom-test-token"
FAST_RETRIES = {"base_delay_seconds": 0.05, "max_delay_seconds": 5, "timeout_seconds": 2, "max_attempts": 5}


@pytest.fixture
def receiver() -> Receiver:
    with serving(Receiver()) as server:
        yield server


def deliver(module, settings: dict, warehouse: Path, run_id: str = "run-1", destination: str = "dest",
            environ: dict[str, str] | None = None):
    con = duckdb.connect(str(warehouse))
    try:
        context = DeliveryContext(destination, run_id, date(2023, 10, 15), list(module.DATASETS), con,
                                  environ or {"HOOK_SECRET": SECRET, "SLACK_URL": "", "INTERCOM_TOKEN": TOKEN})
        return module.deliver(module.Settings.model_validate(settings), context)
    finally:
        con.close()


def query(warehouse: Path, sql: str, params: dict | None = None) -> list[tuple]:
    con = duckdb.connect(str(warehouse))
    try:
        return con.execute(sql, params or {}).fetchall()
    finally:
        con.close()


def activity_ids(warehouse: Path) -> set[str]:
    return {row[0] for row in query(warehouse, "select activity_id from analytics.mrr_activities")}


def webhook_settings(receiver: Receiver, **overrides: object) -> dict:
    return {"url": f"{receiver.base_url}/hooks/openmrr", "secret_env": "HOOK_SECRET", **FAST_RETRIES, **overrides}


# --- webhook -----------------------------------------------------------------------------------------


def test_webhook_posts_each_movement_once_as_documented_json_signed_with_hmac_of_the_body(warehouse, receiver):
    [delivery] = deliver(webhook, webhook_settings(receiver), warehouse)

    posts = receiver.received("POST")
    assert delivery.status == "delivered" and delivery.rows == len(posts) == len(activity_ids(warehouse))
    assert {post.json()["id"] for post in posts} == activity_ids(warehouse)
    for post in posts:
        expected = "sha256=" + hmac.new(SECRET.encode(), post.body, hashlib.sha256).hexdigest()
        assert post.headers["x-openmrr-signature"] == expected
        assert abs(int(post.headers["x-openmrr-timestamp"]) - time.time()) < 120
        assert post.headers["idempotency-key"] == post.json()["id"]
        assert post.headers["content-type"] == "application/json"
    # scenario 02: acme's annual Gold, 2,000 for 12 months = 166.67 MRR of new business
    [acme_new] = [post for post in posts if post.json()["description"].startswith("purchased the Gold Yearly")]
    body = acme_new.json()
    assert body["type"] == "mrr_movement" and body["movement_type"] == "new_biz"
    assert body["date"] == "2023-01-10T00:00:00Z"
    assert b'"mrr_movement": 166.67' in acme_new.body  # exact two decimals, not a float's repr
    assert body["account_currency"] == "USD" and body["billing_currency"] == "USD"
    assert body["subscription"]["plan_external_id"] and body["subscription"]["external_id"]
    customer = body["customer"]
    assert (customer["external_id"], customer["name"], customer["status"]) == ("acme", "Acme", "Active")
    assert b'"mrr": 150.00, "arr": 1800.00' in acme_new.body
    # movements go out in date order
    dates = [post.json()["date"] for post in posts]
    assert dates == sorted(dates)


def test_webhook_rerun_never_resends_a_delivered_movement(warehouse, receiver):
    deliver(webhook, webhook_settings(receiver), warehouse, run_id="run-1")
    first = len(receiver.received())
    [again] = deliver(webhook, webhook_settings(receiver), warehouse, run_id="run-1")
    [later] = deliver(webhook, webhook_settings(receiver), warehouse, run_id="run-2")
    assert len(receiver.received()) == first
    assert (again.status, again.rows, later.status, later.rows) == ("skipped", 0, "skipped", 0)


def test_webhook_retries_5xx_and_timeouts_with_exponential_backoff(warehouse, receiver):
    settings = webhook_settings(receiver, base_delay_seconds=0.2, timeout_seconds=0.5)
    receiver.plan(500, 503, Reply(200, delay=1.5))  # the third answer comes after the client's timeout

    [delivery] = deliver(webhook, settings, warehouse)

    posts = receiver.received("POST")
    first_id = posts[0].json()["id"]
    tries = [post for post in posts if post.json()["id"] == first_id]
    assert len(tries) == 4 and delivery.status == "delivered"
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(tries)]
    # equal jitter keeps at least half of base × 2^(n-1): 0.1, 0.2, then the 0.5 s timeout plus 0.4
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2 and gaps[2] >= 0.5 + 0.4
    assert {post.json()["id"] for post in posts} == activity_ids(warehouse)
    assert query(warehouse, "select status, attempts from delivery.webhook_movements where activity_id = $id",
                 {"id": first_id}) == [("delivered", 4)]


def test_webhook_honours_retry_after_on_429(warehouse, receiver):
    receiver.plan(Reply(429, {"Retry-After": "1"}, b"slow down"))
    deliver(webhook, webhook_settings(receiver, base_delay_seconds=0.01), warehouse)
    first, second = receiver.received("POST")[:2]
    assert first.json()["id"] == second.json()["id"]
    assert second.at - first.at >= 1.0


def test_webhook_since_limits_the_history_sent(warehouse, receiver):
    deliver(webhook, webhook_settings(receiver, since="2023-06-01"), warehouse)
    expected = {row[0] for row in query(warehouse, "select activity_id from analytics.mrr_activities"
                                                   " where date >= '2023-06-01'")}
    assert {post.json()["id"] for post in receiver.received("POST")} == expected
    assert 0 < len(expected) < len(activity_ids(warehouse))


def test_webhook_stops_rather_than_retry_early_when_retry_after_is_longer_than_max_delay(warehouse, receiver):
    receiver.plan(Reply(503, {"Retry-After": "3600"}, b"maintenance"))
    [delivery] = deliver(webhook, webhook_settings(receiver), warehouse)
    assert len(receiver.received()) == 1 and delivery.status == "failed" and delivery.rows == 0
    assert "Retry-After 3600 s is longer than max_delay_seconds" in delivery.error


def test_webhook_does_not_retry_a_4xx_and_sends_it_again_on_the_next_run(warehouse, receiver):
    receiver.plan(Reply(422, body=b"unprocessable"))
    [first_run] = deliver(webhook, webhook_settings(receiver), warehouse, run_id="run-1")

    refused = receiver.received("POST")[0].json()["id"]
    ids = [post.json()["id"] for post in receiver.received("POST")]
    assert ids.count(refused) == 1 and set(ids) == activity_ids(warehouse)  # the others still went out
    assert first_run.status == "failed" and "HTTP 422" in first_run.error
    assert query(warehouse, "select status, attempts, last_error from delivery.webhook_movements"
                 " where activity_id = $id", {"id": refused}) == [("failed", 1, "HTTP 422: unprocessable")]

    [second_run] = deliver(webhook, webhook_settings(receiver), warehouse, run_id="run-2")
    assert [post.json()["id"] for post in receiver.received("POST")[len(ids):]] == [refused]
    assert (second_run.status, second_run.rows) == ("delivered", 1)


def test_webhook_stops_when_the_receiver_is_unreachable_and_resumes_later(warehouse, receiver):
    nobody = f"http://127.0.0.1:{free_port()}/hooks/openmrr"
    [down] = deliver(webhook, {**webhook_settings(receiver), "url": nobody, "max_attempts": 2}, warehouse)
    assert down.status == "failed" and "connection failed" in down.error and down.rows == 0
    states = query(warehouse, "select status, attempts from delivery.webhook_movements")
    assert states == [("failed", 2)]  # the batch stopped at the first movement

    [up] = deliver(webhook, webhook_settings(receiver), warehouse, run_id="run-2")
    assert up.status == "delivered" and up.rows == len(activity_ids(warehouse))


def test_webhook_killed_mid_batch_resumes_and_delivers_every_movement_exactly_once_by_id(warehouse, receiver):
    in_flight = 6
    hold = threading.Event()
    receiver.plan(*[Reply()] * (in_flight - 1), Reply(hold=hold))
    command = [sys.executable, "-m", "tests.destination_runner", "webhook", str(warehouse), "dest", "run-1",
               json.dumps(webhook_settings(receiver, timeout_seconds=30))]
    environment = {**os.environ, "HOOK_SECRET": SECRET}
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment)
    try:
        deadline = time.monotonic() + 60
        while len(receiver.received("POST")) < in_flight:
            assert process.poll() is None and time.monotonic() < deadline, "the runner never reached the held POST"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)  # mid-batch, with one request on the wire
        assert process.wait(timeout=10) == -signal.SIGKILL
    finally:
        hold.set()
        if process.poll() is None:
            process.kill()
    states = Counter(status for (status,) in query(warehouse, "select status from delivery.webhook_movements"))
    assert states == {"delivered": in_flight - 1, "sending": 1}

    rerun = subprocess.run(command, cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    ids = [post.json()["id"] for post in receiver.received("POST")]
    assert set(ids) == activity_ids(warehouse)
    duplicates = [activity_id for activity_id, seen in Counter(ids).items() if seen > 1]
    assert duplicates == [ids[in_flight - 1]]  # only the movement in flight crossed the wire twice
    assert query(warehouse, "select count(*) filter (where status = 'delivered'), count(*)"
                 " from delivery.webhook_movements") == [(len(activity_ids(warehouse)),) * 2]


def test_webhook_state_survives_a_rebuild_of_the_marts(warehouse, receiver):
    deliver(webhook, webhook_settings(receiver), warehouse)
    sent = len(receiver.received())
    refresh(LIFECYCLE_DATA, warehouse)  # dbt rebuilds every mart; delivery.* is not dbt's
    [after] = deliver(webhook, webhook_settings(receiver), warehouse, run_id="run-2")
    assert (after.status, len(receiver.received())) == ("skipped", sent)


# --- Slack -------------------------------------------------------------------------------------------


def slack_settings(**overrides: object) -> dict:
    return {"webhook_url_env": "SLACK_URL", "min_interval_seconds": 0, **FAST_RETRIES, **overrides}


def slack_environ(receiver: Receiver) -> dict[str, str]:
    return {"SLACK_URL": f"{receiver.base_url}/services/T000/B000/XXXX"}


def money(amount: Decimal, signed: bool = True) -> str:
    return Cents.of(amount).text(thousands=True, signed=signed) + " USD"


def test_slack_digest_per_run_has_mrr_net_movement_by_type_and_top_five_movers(warehouse, receiver):
    [delivery] = deliver(slack, slack_settings(), warehouse, environ=slack_environ(receiver))

    [post] = receiver.received("POST")
    assert post.path == "/services/T000/B000/XXXX" and delivery.status == "delivered"
    message = post.json()
    text = json.dumps(message["blocks"], ensure_ascii=False)
    [(mrr,)] = query(warehouse, "select sum(mrr) from analytics.customers")
    assert f"*MRR*\\n{money(mrr, signed=False)}" in text
    [(net,)] = query(warehouse, "select sum(mrr_movement) from analytics.mrr_activities")
    assert f"*Net movement*\\n{money(net)}" in text
    labels = {"new_biz": "New business", "expansion": "Expansion", "contraction": "Contraction",
              "churn": "Churn", "reactivation": "Reactivation"}
    for kind, count, amount in query(warehouse, "select type, count(*), sum(mrr_movement)"
                                                " from analytics.mrr_activities group by type"):
        assert f"{labels[kind]}: {money(amount)} ({count})" in text
    movers = query(warehouse, "select customer_name, sum(mrr_movement) as movement from analytics.mrr_activities"
                              " group by customer_name order by abs(movement) desc, customer_name limit 5")
    movers_block = next(block["text"]["text"] for block in message["blocks"]
                        if block.get("text", {}).get("text", "").startswith("*Top movers*"))
    lines = movers_block.split("\n")[1:]
    assert [line.split(":")[0] for line in lines] == [f"{rank}. {name}" for rank, (name, _) in
                                                      enumerate(movers, start=1)]
    assert all(money(amount) in line for line, (_, amount) in zip(lines, movers, strict=True))
    assert message["text"].startswith("MRR update 2023-10-15")
    assert delivery.rows == len(activity_ids(warehouse))

    # the same run again sends nothing; the next run's digest has no movement left to report
    deliver(slack, slack_settings(), warehouse, environ=slack_environ(receiver))
    assert len(receiver.received("POST")) == 1
    [next_run] = deliver(slack, slack_settings(), warehouse, run_id="run-2", environ=slack_environ(receiver))
    assert next_run.rows == 0 and "0 movements since the last digest" in receiver.received("POST")[1].body.decode()


def test_slack_sends_one_line_per_movement_at_or_above_the_threshold(warehouse, receiver):
    [delivery] = deliver(slack, slack_settings(movement_threshold="100"), warehouse, environ=slack_environ(receiver))
    lines = receiver.received("POST")[1:]
    big = query(warehouse, "select customer_name, mrr_movement from analytics.mrr_activities"
                           " where abs(mrr_movement) >= 100 order by date, customer_id, rank, activity_id")
    assert len(lines) == len(big) > 0 and delivery.status == "delivered"
    for line, (name, amount) in zip(lines, big, strict=True):
        assert line.json()["text"].startswith(f"{name}: ") and money(amount) in line.json()["text"]
    deliver(slack, slack_settings(movement_threshold="100"), warehouse, run_id="run-2",
            environ=slack_environ(receiver))
    assert len(receiver.received("POST")) == 1 + len(big) + 1  # only the new run's digest


def test_slack_is_rate_limit_aware_paces_messages_and_honours_retry_after(warehouse, receiver):
    receiver.plan(Reply(429, {"Retry-After": "1"}, b"rate_limited"))
    deliver(slack, slack_settings(movement_threshold="100", min_interval_seconds=0.3), warehouse,
            environ=slack_environ(receiver))
    posts = receiver.received("POST")
    assert posts[0].body == posts[1].body and posts[1].at - posts[0].at >= 1.0
    assert all(later.at - earlier.at >= 0.29 for earlier, later in itertools.pairwise(posts))


def test_slack_failed_digest_hands_its_movements_to_the_next_run(warehouse, receiver):
    receiver.plan(*[500] * 2)
    [failed] = deliver(slack, slack_settings(max_attempts=2), warehouse, environ=slack_environ(receiver))
    assert failed.status == "failed" and "HTTP 500" in failed.error
    [retried] = deliver(slack, slack_settings(), warehouse, run_id="run-2", environ=slack_environ(receiver))
    assert retried.status == "delivered" and retried.rows == len(activity_ids(warehouse))
    assert query(warehouse, "select run_id, status from delivery.slack_digests order by run_id") == [
        ("run-1", "superseded"), ("run-2", "delivered")]


# --- Intercom ----------------------------------------------------------------------------------------


@pytest.fixture
def workspace() -> IntercomWorkspace:
    workspace = IntercomWorkspace(TOKEN)
    workspace.add_contact("c-acme", email="billing@acme.example.com", external_id="acme")
    workspace.add_contact("c-berlin", external_id="berlin")
    workspace.add_contact("c-adam", email="adam@example.com", external_id="app-user-17")
    return workspace


@pytest.fixture
def intercom_server(workspace: IntercomWorkspace) -> Receiver:
    with serving(Receiver(workspace)) as server:
        yield server


def intercom_settings(server: Receiver, **overrides: object) -> dict:
    return {"access_token_env": "INTERCOM_TOKEN", "api_url": server.base_url, **FAST_RETRIES, **overrides}


def give_adam_an_email(warehouse: Path) -> None:
    """Scenario 02 has no e-mails; a changed mart row stands in for a rebuild with one."""
    query(warehouse, "update analytics.customers set email = 'adam@example.com' where customer_external_id = 'adam'")


def test_intercom_updates_contacts_matched_by_external_id_or_email(warehouse, intercom_server, workspace):
    give_adam_an_email(warehouse)
    [delivery] = deliver(intercom, intercom_settings(intercom_server), warehouse)

    acme = workspace.contacts["c-acme"]["custom_attributes"]
    since = int(datetime(2023, 1, 10, tzinfo=UTC).timestamp())
    assert acme == {"mrr": 150.0, "arr": 1800.0, "status": "Active", "plan": "Gold Monthly",
                    "customer_since": since, "subscriber": True}
    assert workspace.contacts["c-berlin"]["custom_attributes"]["mrr"] == 150.0
    assert workspace.contacts["c-adam"]["custom_attributes"]["plan"] == "Bronze Monthly"
    puts = intercom_server.received("PUT")
    assert sorted(put.path for put in puts) == ["/contacts/c-acme", "/contacts/c-adam", "/contacts/c-berlin"]
    acme_put = next(put for put in puts if put.path == "/contacts/c-acme")
    assert b'"mrr": 150.00, "arr": 1800.00' in acme_put.body  # exact cents on the wire
    for request in intercom_server.received():
        assert request.headers["authorization"] == f"Bearer {TOKEN}" and request.headers["intercom-version"]
    [adam_search] = [request.json()["query"] for request in intercom_server.received("POST")
                     if b"adam" in request.body]
    assert adam_search == {"operator": "OR", "value": [
        {"field": "external_id", "operator": "=", "value": "adam"},
        {"field": "email", "operator": "=", "value": "adam@example.com"}]}
    assert delivery.status == "delivered" and delivery.rows == 3
    assert "2 customers without a matching Intercom contact" in delivery.error  # twin and evt
    states = dict(query(warehouse, "select customer_id, status from delivery.intercom_customers"))
    assert Counter(states.values()) == {"delivered": 3, "not_found": 2}


def test_intercom_sends_only_customers_whose_values_changed(warehouse, intercom_server, workspace):
    deliver(intercom, intercom_settings(intercom_server), warehouse)
    before = len(intercom_server.received("PUT"))
    [unchanged] = deliver(intercom, intercom_settings(intercom_server), warehouse, run_id="run-2")
    assert len(intercom_server.received("PUT")) == before and unchanged.rows == 0

    query(warehouse, "update analytics.customers set mrr = 175.5, arr = 2106 where customer_external_id = 'berlin'")
    [changed] = deliver(intercom, intercom_settings(intercom_server), warehouse, run_id="run-3")
    [put] = intercom_server.received("PUT")[before:]
    assert put.path == "/contacts/c-berlin" and changed.rows == 1
    assert b'"mrr": 175.50, "arr": 2106.00' in put.body
    assert workspace.contacts["c-berlin"]["custom_attributes"]["mrr"] == 175.5


def test_intercom_waits_for_the_rate_limit_reset_instead_of_hitting_429(warehouse, intercom_server, workspace):
    workspace.rate_limit = 2  # two requests per second
    give_adam_an_email(warehouse)
    [delivery] = deliver(intercom, intercom_settings(intercom_server), warehouse)
    assert delivery.status == "delivered" and delivery.rows == 3
    requests = intercom_server.received()
    assert len(requests) == 5 + 3 and workspace.refused == 0  # five searches, three updates, no 429
    assert requests[-1].at - requests[0].at >= 2.0  # at most two a second: eight take three window changes


def test_intercom_honours_429_with_retry_after(warehouse, intercom_server):
    intercom_server.plan(Reply(429, {"Retry-After": "1"}, b'{"type": "error.list"}'))
    [delivery] = deliver(intercom, intercom_settings(intercom_server, base_delay_seconds=0.01), warehouse)
    first, second = intercom_server.received()[:2]
    assert first.body == second.body and second.at - first.at >= 1.0 and delivery.status == "delivered"


def test_intercom_bad_token_stops_the_batch_and_is_reported(warehouse, intercom_server):
    [delivery] = deliver(intercom, intercom_settings(intercom_server), warehouse,
                         environ={"INTERCOM_TOKEN": "wrong"})
    assert delivery.status == "failed" and "HTTP 401" in delivery.error
    assert len(intercom_server.received()) == 1  # a refused token is not retried, nor tried per customer
    assert query(warehouse, "select status from delivery.intercom_customers") == [("failed",)]
