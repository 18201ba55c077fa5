"""Webhook destination: one signed JSON POST per MRR movement, each movement delivered once.

State lives in `delivery.webhook_movements`, one row per (destination, movement). A movement is marked
`sending` (its first request counted) before its request and `delivered` after the 2xx, each in its own
commit; a run sends every movement not yet `delivered`, oldest first. So a run killed mid-batch resumes
where it stopped: only the movement in flight can reach the receiver twice, under the same `id`
(at-least-once on the wire, exactly-once by idempotency id). The table is outside `analytics`, so a
dbt rebuild of the marts keeps it; `activity_id` is stable across rebuilds.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, date, datetime

import duckdb
from pydantic import field_validator

from openmrr.destinations.base import STATE_SCHEMA, Delivery, DeliveryContext
from openmrr.destinations.http import EnvVarName, HttpClient, HttpFailure, RetrySettings, checked_url, environ_secret
from openmrr.destinations.money import cents_or_none, dumps

DATASETS = ("mrr_activities",)
SIGNATURE_HEADER = "X-OpenMRR-Signature"
TIMESTAMP_HEADER = "X-OpenMRR-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# A receiver answering these refuses every movement alike (wrong URL or credentials): stop the batch.
ENDPOINT_REFUSALS = {401, 403, 404, 405, 410}


class Settings(RetrySettings):
    """The `settings:` block of a webhook destination."""

    url: str
    secret_env: EnvVarName  # the environment variable holding the HMAC secret
    since: date | None = None  # only movements dated on or after this day; default: the whole history

    @field_validator("url")
    @classmethod
    def _https(cls, url: str) -> str:
        return checked_url(url, "url")


STATE_DDL = f"""
create table if not exists {STATE_SCHEMA}.webhook_movements (
    destination varchar not null,
    activity_id varchar not null,
    status varchar not null,            -- sending, delivered, failed
    attempts integer not null,          -- requests started over all runs, retries included
    last_error varchar,
    last_run_id varchar,
    updated_at timestamp not null,
    delivered_at timestamp,
    primary key (destination, activity_id)
)
"""

PENDING_MOVEMENTS = f"""
select
    activities.activity_id, activities.date, activities.type, activities.description,
    activities.mrr_movement, activities.account_currency,
    activities.mrr_movement_billing_currency, activities.billing_currency,
    activities.subscription_external_id, activities.plan_external_id,
    activities.customer_id, customers.customer_external_id,
    coalesce(customers.company, customers.name, activities.customer_name) as customer_name,
    customers.email, customers.status, customers.mrr, customers.arr
from analytics.mrr_activities as activities
left join analytics.customers as customers on activities.customer_id = customers.customer_id
left join {STATE_SCHEMA}.webhook_movements as state
    on state.destination = $destination and activities.activity_id = state.activity_id
where coalesce(state.status, '') <> 'delivered'
    and ($since is null or activities.date >= $since)
order by activities.date, activities.customer_id, activities.rank, activities.activity_id
"""

MARK = f"""
insert into {STATE_SCHEMA}.webhook_movements
    (destination, activity_id, status, attempts, last_error, last_run_id, updated_at, delivered_at)
values ($destination, $activity_id, $status, $extra_attempts, $error, $run_id, $now,
        case when $status = 'delivered' then $now end)
on conflict (destination, activity_id) do update set
    status = excluded.status,
    attempts = webhook_movements.attempts + excluded.attempts,
    last_error = excluded.last_error,
    last_run_id = excluded.last_run_id,
    updated_at = excluded.updated_at,
    delivered_at = excluded.delivered_at
"""


def utc_text(moment: datetime) -> str:
    """`2023-10-01T00:00:00Z`; the warehouse keeps timestamps in UTC without a zone."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def movement_body(row: dict) -> bytes:
    """The documented JSON of one movement (spec/destinations.md), money as exact two-decimal numbers."""
    body = {
        "type": "mrr_movement",
        "id": row["activity_id"],
        "date": utc_text(row["date"]),
        "movement_type": row["type"],
        "description": row["description"],
        "mrr_movement": cents_or_none(row["mrr_movement"]),
        "account_currency": row["account_currency"],
        "mrr_movement_billing_currency": cents_or_none(row["mrr_movement_billing_currency"]),
        "billing_currency": row["billing_currency"],
        "subscription": {"external_id": row["subscription_external_id"],
                         "plan_external_id": row["plan_external_id"]},
        "customer": {"id": row["customer_id"], "external_id": row["customer_external_id"],
                     "name": row["customer_name"], "email": row["email"], "status": row["status"],
                     "mrr": cents_or_none(row["mrr"]), "arr": cents_or_none(row["arr"])},
    }
    return dumps(body).encode()


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of the exact body bytes, keyed with the shared secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def pending_movements(con: duckdb.DuckDBPyConnection, destination: str, since: date | None) -> list[dict]:
    cursor = con.execute(PENDING_MOVEMENTS, {"destination": destination, "since": since})
    columns = [column[0] for column in cursor.description]
    return [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]


def mark(con: duckdb.DuckDBPyConnection, context: DeliveryContext, activity_id: str, status: str,
         extra_attempts: int = 0, error: str | None = None) -> None:
    con.execute(MARK, {"destination": context.destination, "activity_id": activity_id, "status": status,
                       "extra_attempts": extra_attempts, "error": error, "run_id": context.run_id,
                       "now": datetime.now(UTC).replace(tzinfo=None)})


def deliver(settings: Settings, context: DeliveryContext) -> list[Delivery]:
    """POST every movement not yet delivered to this destination; one Delivery for the batch."""
    secret = environ_secret(context.environ, settings.secret_env, context.destination, "secret_env")
    started_at = datetime.now(UTC)
    con = context.connection
    con.execute(f"create schema if not exists {STATE_SCHEMA}")
    con.execute(STATE_DDL)
    movements = pending_movements(con, context.destination, settings.since)
    sent, sent_bytes, digest, errors = 0, 0, hashlib.sha256(), []
    with HttpClient(settings) as client:
        for row in movements:
            body = movement_body(row)
            headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(secret, body),
                       TIMESTAMP_HEADER: str(int(time.time())), IDEMPOTENCY_HEADER: row["activity_id"]}
            mark(con, context, row["activity_id"], "sending", extra_attempts=1)
            try:
                client.request("POST", settings.url, content=body, headers=headers)
            except HttpFailure as failure:
                mark(con, context, row["activity_id"], "failed", extra_attempts=failure.attempts - 1,
                     error=str(failure))
                errors.append(f"movement {row['activity_id']}: {failure}")
                if not failure.final or failure.status in ENDPOINT_REFUSALS:
                    break  # the receiver is down or refuses everything: later movements wait for the next run
                continue  # this movement alone was refused; it is retried on the next run
            mark(con, context, row["activity_id"], "delivered", extra_attempts=client.last_attempts - 1)
            sent, sent_bytes = sent + 1, sent_bytes + len(body)
            digest.update(body)
    status = "failed" if errors else ("delivered" if sent else "skipped")
    error = None
    if errors:
        left = len(movements) - sent
        error = f"{left} of {len(movements)} movements not delivered; " + "; ".join(errors[:3])
    return [Delivery(context.destination, DATASETS[0], context.run_id, status, sent, sent_bytes,
                     digest.hexdigest() if sent else None, started_at, datetime.now(UTC), error)]
