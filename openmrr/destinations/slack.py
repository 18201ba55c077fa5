"""Slack destination: a Block Kit digest per run through an incoming webhook, and optionally one
message per movement at or above a threshold.

A digest covers the movements no earlier digest of this destination covered (so late-arriving,
back-dated movements are reported too): MRR now, net movement by type, and the top movers. State:
`delivery.slack_digests` (one row per run) and `delivery.slack_movements` (which run's digest claimed a
movement, and whether its own line went out). A re-run of a delivered run sends nothing again; a
digest that failed hands its movements to the next run's digest. Slack allows about one message per
second per webhook: messages are paced by `min_interval_seconds` and a 429's `Retry-After` is honoured.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal

import duckdb
from pydantic import Field

from openmrr.destinations.base import STATE_SCHEMA, Delivery, DeliveryContext
from openmrr.destinations.http import EnvVarName, HttpClient, HttpFailure, RetrySettings, checked_url, environ_secret
from openmrr.destinations.money import Cents
from openmrr.errors import ConfigError

DATASETS = ("mrr_activities",)
MOVEMENT_TYPES = {"new_biz": "New business", "expansion": "Expansion", "contraction": "Contraction",
                  "churn": "Churn", "reactivation": "Reactivation"}


class Settings(RetrySettings):
    """The `settings:` block of a Slack destination."""

    webhook_url_env: EnvVarName  # Slack's incoming-webhook URL carries its own secret: it stays in the environment
    movement_threshold: Decimal | None = Field(None, ge=0)  # account currency; None: digest only
    top_movers: int = Field(5, ge=0, le=20)
    min_interval_seconds: float = Field(1.0, ge=0)


STATE_DDL = [
    f"""create table if not exists {STATE_SCHEMA}.slack_digests (
        destination varchar not null,
        run_id varchar not null,
        status varchar not null,        -- pending, delivered, failed, superseded (its movements moved on)
        movements integer,
        last_error varchar,
        created_at timestamp not null,
        sent_at timestamp,
        primary key (destination, run_id)
    )""",
    f"""create table if not exists {STATE_SCHEMA}.slack_movements (
        destination varchar not null,
        activity_id varchar not null,
        run_id varchar not null,        -- the run whose digest covers it
        line_status varchar not null,   -- none (below threshold), pending, delivered, failed
        line_sent_at timestamp,
        primary key (destination, activity_id)
    )""",
]


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def claim_movements(con: duckdb.DuckDBPyConnection, context: DeliveryContext, settings: Settings) -> str:
    """Give this run's digest every movement no delivered digest covers; its digest's status."""
    params = {"destination": context.destination, "run_id": context.run_id}
    con.execute("begin transaction")
    try:
        row = con.execute(f"select status from {STATE_SCHEMA}.slack_digests"
                          " where destination = $destination and run_id = $run_id", params).fetchone()
        if row is not None and row[0] == "delivered":
            con.execute("commit")
            return "delivered"
        if row is None:
            con.execute(f"insert into {STATE_SCHEMA}.slack_digests (destination, run_id, status, created_at)"
                        " values ($destination, $run_id, 'pending', $now)", {**params, "now": now()})
        undelivered = (f"select run_id from {STATE_SCHEMA}.slack_digests where destination = $destination"
                       " and run_id <> $run_id and status in ('pending', 'failed')")
        con.execute(f"update {STATE_SCHEMA}.slack_movements set run_id = $run_id"
                    f" where destination = $destination and run_id in ({undelivered})", params)
        con.execute(f"update {STATE_SCHEMA}.slack_digests set status = 'superseded'"
                    f" where destination = $destination and run_id in ({undelivered})", params)
        con.execute(f"""
            insert into {STATE_SCHEMA}.slack_movements (destination, activity_id, run_id, line_status)
            select $destination, activities.activity_id, $run_id,
                case when $threshold is not null and abs(activities.mrr_movement) >= $threshold
                    then 'pending' else 'none' end
            from analytics.mrr_activities as activities
            where activities.activity_id not in (
                select activity_id from {STATE_SCHEMA}.slack_movements where destination = $destination
            )""", {**params, "threshold": settings.movement_threshold})
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return row[0] if row is not None else "pending"


def escape(text: str | None) -> str:
    """Slack mrkdwn needs &, < and > escaped in user text (names, descriptions)."""
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def money(cents: Cents, currency: str, signed: bool = False) -> str:
    return f"{cents.text(thousands=True, signed=signed)} {currency}".rstrip()


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def account_mrr(con: duckdb.DuckDBPyConnection) -> tuple[Cents, str]:
    """MRR now over all customers, and the account currency (as the movements state it)."""
    total, currency = con.execute(
        "select coalesce(sum(mrr), 0), (select any_value(account_currency) from analytics.mrr_activities)"
        " from analytics.customers").fetchone()
    return Cents.of(total), currency or ""


def claimed_by_type(con: duckdb.DuckDBPyConnection, params: dict) -> dict[str, tuple[int, Cents]]:
    """Count and net amount of this run's movements per movement type."""
    return {kind: (count, Cents.of(amount)) for kind, count, amount in con.execute(f"""
        select activities.type, count(*), sum(activities.mrr_movement)
        from analytics.mrr_activities as activities
        inner join {STATE_SCHEMA}.slack_movements as claims on claims.activity_id = activities.activity_id
        where claims.destination = $destination and claims.run_id = $run_id
        group by activities.type""", params).fetchall()}


def claimed_top_movers(con: duckdb.DuckDBPyConnection, params: dict, limit: int) -> list[tuple[str, Cents, str]]:
    """Customers ranked by the absolute sum of this run's movements: name, amount, `,`-joined types."""
    rows = con.execute(f"""
        select
            coalesce(any_value(customers.company), any_value(customers.name), any_value(activities.customer_name))
                as name,
            sum(activities.mrr_movement) as movement,
            string_agg(distinct activities.type, ',' order by activities.type) as types
        from analytics.mrr_activities as activities
        inner join {STATE_SCHEMA}.slack_movements as claims on claims.activity_id = activities.activity_id
        left join analytics.customers as customers on activities.customer_id = customers.customer_id
        where claims.destination = $destination and claims.run_id = $run_id
        group by activities.customer_id
        order by abs(movement) desc, name
        limit {int(limit)}""", params).fetchall()
    return [(name, Cents.of(amount), types) for name, amount, types in rows]


def digest_message(con: duckdb.DuckDBPyConnection, context: DeliveryContext, top_movers: int) -> tuple[dict, int]:
    """The Block Kit digest of the movements this run claimed, and how many there are."""
    params = {"destination": context.destination, "run_id": context.run_id}
    mrr, currency = account_mrr(con)
    by_type = claimed_by_type(con, params)
    count = sum(number for number, _ in by_type.values())
    net = sum((amount for _, amount in by_type.values()), Cents(0))
    type_lines = []
    for kind, label in MOVEMENT_TYPES.items():
        number, amount = by_type.get(kind, (0, Cents(0)))
        type_lines.append(f"{label}: {money(amount, currency, signed=True)} ({number})")
    mover_lines = [f"{rank}. {escape(name)}: {money(amount, currency, signed=True)}"
                   f" ({', '.join(MOVEMENT_TYPES.get(kind, kind).lower() for kind in types.split(','))})"
                   for rank, (name, amount, types) in enumerate(claimed_top_movers(con, params, top_movers), 1)]
    title = f"MRR update {context.run_date.isoformat()}"
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": title}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*MRR*\n{money(mrr, currency)}"},
            {"type": "mrkdwn", "text": f"*Net movement*\n{money(net, currency, signed=True)}"}]},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Net movement by type*\n" + "\n".join(type_lines)}},
    ]
    if mover_lines:
        movers_text = "*Top movers*\n" + "\n".join(mover_lines)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": movers_text}})
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"{plural(count, 'movement')} since the last digest · OpenMRR"}]})
    fallback = (f"{title}: MRR {money(mrr, currency)}, net movement {money(net, currency, signed=True)}"
                f" from {plural(count, 'movement')}")
    return {"text": fallback, "blocks": blocks}, count


def pending_lines(con: duckdb.DuckDBPyConnection, destination: str) -> list[tuple]:
    return con.execute(f"""
        select activities.activity_id, activities.date, activities.type, activities.description,
            activities.mrr_movement, activities.account_currency,
            coalesce(customers.company, customers.name, activities.customer_name)
        from {STATE_SCHEMA}.slack_movements as claims
        inner join analytics.mrr_activities as activities on claims.activity_id = activities.activity_id
        left join analytics.customers as customers on activities.customer_id = customers.customer_id
        where claims.destination = $destination and claims.line_status in ('pending', 'failed')
        order by activities.date, activities.customer_id, activities.rank, activities.activity_id""",
                       {"destination": destination}).fetchall()


def movement_message(row: tuple) -> dict:
    _, moment, kind, description, amount, currency, name = row
    label = MOVEMENT_TYPES.get(kind, kind)
    text = (f"*{escape(name)}* · {label} *{money(Cents.of(amount), currency, signed=True)}*"
            f" · {escape(description)} · {moment:%Y-%m-%d}")
    plain = f"{name}: {label} {money(Cents.of(amount), currency, signed=True)} ({moment:%Y-%m-%d})"
    return {"text": plain, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def deliver(settings: Settings, context: DeliveryContext) -> list[Delivery]:
    """Send this run's digest (once), then the movement lines still owed; one Delivery for both."""
    url = environ_secret(context.environ, settings.webhook_url_env, context.destination, "webhook_url_env")
    try:
        checked_url(url, f"environment variable {settings.webhook_url_env}", secret=True)
    except ValueError as error:
        raise ConfigError(f"destination {context.destination}: {error}") from error
    started_at = datetime.now(UTC)
    con = context.connection
    con.execute(f"create schema if not exists {STATE_SCHEMA}")
    for ddl in STATE_DDL:
        con.execute(ddl)
    digest_status = claim_movements(con, context, settings)
    params = {"destination": context.destination, "run_id": context.run_id}
    sent_bytes, checksum, errors, rows, messages = 0, hashlib.sha256(), [], 0, 0
    with HttpClient(settings, min_interval_seconds=settings.min_interval_seconds) as client:
        def post(payload: dict) -> None:
            nonlocal sent_bytes, messages
            body = json.dumps(payload, ensure_ascii=False).encode()
            client.request("POST", url, content=body, headers={"Content-Type": "application/json"})
            sent_bytes, messages = sent_bytes + len(body), messages + 1
            checksum.update(body)

        if digest_status != "delivered":
            message, rows = digest_message(con, context, settings.top_movers)
            try:
                post(message)
            except HttpFailure as failure:
                errors.append(f"digest: {failure}")
                con.execute(f"update {STATE_SCHEMA}.slack_digests set status = 'failed', last_error = $error"
                            " where destination = $destination and run_id = $run_id",
                            {**params, "error": str(failure)})
            else:
                con.execute(f"update {STATE_SCHEMA}.slack_digests set status = 'delivered', movements = $rows,"
                            " sent_at = $now, last_error = null where destination = $destination and run_id = $run_id",
                            {**params, "rows": rows, "now": now()})
        for row in [] if errors else pending_lines(con, context.destination):
            try:
                post(movement_message(row))
            except HttpFailure as failure:
                errors.append(f"movement {row[0]}: {failure}")
                con.execute(f"update {STATE_SCHEMA}.slack_movements set line_status = 'failed'"
                            " where destination = $destination and activity_id = $id",
                            {"destination": context.destination, "id": row[0]})
                break  # Slack is down or refuses this webhook: the rest waits for the next run
            con.execute(f"update {STATE_SCHEMA}.slack_movements set line_status = 'delivered', line_sent_at = $now"
                        " where destination = $destination and activity_id = $id",
                        {"destination": context.destination, "id": row[0], "now": now()})
    status = "failed" if errors else ("delivered" if messages else "skipped")
    return [Delivery(context.destination, DATASETS[0], context.run_id, status, rows, sent_bytes,
                     checksum.hexdigest() if messages else None, started_at, datetime.now(UTC),
                     "; ".join(errors) or None)]
