"""Intercom destination: each changed customer's attributes on its Intercom contacts.

For every customer whose values (mrr, arr, status, plan, customer_since, subscriber, and the e-mail and
external id it is matched by) differ from what this destination last delivered, the contacts are
found with `POST /contacts/search` (external id or e-mail) and each is updated with
`PUT /contacts/{id}` and `custom_attributes`. What was sent is kept in `delivery.intercom_customers`
as a hash, so an unchanged customer costs no request. Rate limits: the client waits for
`X-RateLimit-Reset` when `X-RateLimit-Remaining` reaches 0, and on a 429.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Literal

import duckdb
from pydantic import Field, field_validator

from openmrr.destinations.base import STATE_SCHEMA, Delivery, DeliveryContext
from openmrr.destinations.http import EnvVarName, HttpClient, HttpFailure, RetrySettings, checked_url, environ_secret
from openmrr.destinations.money import Cents, cents_or_none, dumps

DATASETS = ("customers",)
# Answers that refuse every request alike (bad token, missing scope): stop instead of trying each customer.
ACCOUNT_REFUSALS = {401, 403}


class Settings(RetrySettings):
    """The `settings:` block of an Intercom destination."""

    access_token_env: EnvVarName
    api_url: str = "https://api.intercom.io"  # or https://api.eu.intercom.io, https://api.au.intercom.io
    api_version: str = "2.11"
    match_by: list[Literal["external_id", "email"]] = Field(["external_id", "email"], min_length=1)
    attribute_prefix: str = Field("", pattern=r"^[A-Za-z0-9_]*$")  # e.g. "openmrr_" -> openmrr_mrr

    @field_validator("api_url")
    @classmethod
    def _https(cls, url: str) -> str:
        return checked_url(url, "api_url").rstrip("/")


STATE_DDL = f"""
create table if not exists {STATE_SCHEMA}.intercom_customers (
    destination varchar not null,
    customer_id varchar not null,
    status varchar not null,        -- delivered, not_found (no contact matched yet), failed
    values_hash varchar not null,   -- sha256 of the attributes and match keys last attempted
    sent_values varchar,            -- the custom_attributes JSON last delivered
    contact_ids varchar,            -- the Intercom contacts updated, comma-separated
    last_error varchar,
    updated_at timestamp not null,
    primary key (destination, customer_id)
)
"""

CUSTOMER_VALUES = """
select
    customers.customer_id, customers.customer_external_id, customers.email,
    customers.mrr, customers.arr, customers.status, plans.plan, customers.customer_since,
    coalesce(customers.status in ('Active', 'Past Due'), false) as subscriber
from analytics.customers as customers
left join (
    select customer_id, string_agg(distinct plan_name, ', ' order by plan_name) as plan
    from analytics.subscriptions
    where status <> 'cancelled'
    group by customer_id
) as plans on customers.customer_id = plans.customer_id
order by customers.customer_id
"""

SAVE = f"""
insert into {STATE_SCHEMA}.intercom_customers
    (destination, customer_id, status, values_hash, sent_values, contact_ids, last_error, updated_at)
values ($destination, $customer_id, $status, $hash, $sent, $contacts, $error, $now)
on conflict (destination, customer_id) do update set
    status = excluded.status, values_hash = excluded.values_hash,
    sent_values = coalesce(excluded.sent_values, intercom_customers.sent_values),
    contact_ids = coalesce(excluded.contact_ids, intercom_customers.contact_ids),
    last_error = excluded.last_error, updated_at = excluded.updated_at
"""


def unix_seconds(moment: datetime | None) -> int | None:
    """Intercom date attributes are Unix timestamps; the warehouse keeps UTC without a zone."""
    if moment is None:
        return None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def attributes(row: dict, prefix: str) -> dict[str, object]:
    values: dict[str, object] = {
        "mrr": cents_or_none(row["mrr"]) or Cents(0), "arr": cents_or_none(row["arr"]) or Cents(0),
        "status": row["status"], "plan": row["plan"], "customer_since": unix_seconds(row["customer_since"]),
        "subscriber": bool(row["subscriber"]),
    }
    return {prefix + name: value for name, value in values.items()}


def search_query(row: dict, match_by: list[str]) -> dict | None:
    """Intercom's search query for the customer's contacts; None if it has none of the match keys."""
    keys = {"external_id": row["customer_external_id"], "email": row["email"]}
    terms = [{"field": field, "operator": "=", "value": keys[field]} for field in match_by if keys[field]]
    if not terms:
        return None
    return terms[0] if len(terms) == 1 else {"operator": "OR", "value": terms}


def values_hash(custom_attributes: dict, query: dict | None) -> str:
    return hashlib.sha256(dumps({"attributes": custom_attributes, "query": query}).encode()).hexdigest()


def changed_customers(con: duckdb.DuckDBPyConnection, destination: str) -> tuple[list[dict], dict[str, tuple]]:
    """Every customer with its values, and this destination's state by customer id."""
    cursor = con.execute(CUSTOMER_VALUES)
    columns = [column[0] for column in cursor.description]
    customers = [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]
    state = {customer_id: (status, digest) for customer_id, status, digest in con.execute(
        f"select customer_id, status, values_hash from {STATE_SCHEMA}.intercom_customers"
        " where destination = $destination", {"destination": destination}).fetchall()}
    return customers, state


def deliver(settings: Settings, context: DeliveryContext) -> list[Delivery]:
    """Update the contacts of every customer whose values changed since the last delivery."""
    token = environ_secret(context.environ, settings.access_token_env, context.destination, "access_token_env")
    started_at = datetime.now(UTC)
    con = context.connection
    con.execute(f"create schema if not exists {STATE_SCHEMA}")
    con.execute(STATE_DDL)
    customers, state = changed_customers(con, context.destination)
    headers = {"Authorization": f"Bearer {token}", "Intercom-Version": settings.api_version,
               "Accept": "application/json", "Content-Type": "application/json"}
    updated, not_found, sent_bytes, checksum, errors = 0, 0, 0, hashlib.sha256(), []

    def save(row: dict, status: str, digest: str, sent: str | None = None, contacts: str | None = None,
             error: str | None = None) -> None:
        con.execute(SAVE, {"destination": context.destination, "customer_id": row["customer_id"], "status": status,
                           "hash": digest, "sent": sent, "contacts": contacts, "error": error,
                           "now": datetime.now(UTC).replace(tzinfo=None)})

    with HttpClient(settings, headers=headers) as client:
        for row in customers:
            custom_attributes = attributes(row, settings.attribute_prefix)
            query = search_query(row, settings.match_by)
            digest = values_hash(custom_attributes, query)
            if state.get(row["customer_id"]) == ("delivered", digest):
                continue
            if query is None:
                not_found += 1
                save(row, "not_found", digest, error="no e-mail or external id to match a contact by")
                continue
            body = dumps({"custom_attributes": custom_attributes}).encode()
            try:
                found = client.request("POST", f"{settings.api_url}/contacts/search",
                                       content=dumps({"query": query, "pagination": {"per_page": 50}}).encode())
                contact_ids = [contact["id"] for contact in found.json().get("data", [])]
                for contact_id in contact_ids:
                    client.request("PUT", f"{settings.api_url}/contacts/{contact_id}", content=body)
            except HttpFailure as failure:
                save(row, "failed", digest, error=str(failure))
                errors.append(f"customer {row['customer_external_id']}: {failure}")
                if not failure.final or failure.status in ACCOUNT_REFUSALS:
                    break  # Intercom is down, rate-limits past max_delay_seconds, or refuses the token
                continue
            if not contact_ids:
                not_found += 1
                save(row, "not_found", digest, error="no Intercom contact matches")
                continue
            save(row, "delivered", digest, body.decode(), ",".join(contact_ids))
            updated, sent_bytes = updated + 1, sent_bytes + len(body) * len(contact_ids)
            checksum.update(body)
    status = "failed" if errors else ("delivered" if updated else "skipped")
    error = "; ".join(errors[:3]) or None
    if not_found:
        error = (error + "; " if error else "") + f"{not_found} customers without a matching Intercom contact"
    return [Delivery(context.destination, DATASETS[0], context.run_id, status, updated, sent_bytes,
                     checksum.hexdigest() if updated else None, started_at, datetime.now(UTC), error)]
