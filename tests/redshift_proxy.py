"""Test support: a PostgreSQL server that the real Redshift driver (redshift_connector) can talk to.

redshift_connector, which dbt-redshift uses, differs from a PostgreSQL client in two ways this
proxy bridges, and only these: its startup packet carries Redshift-only parameters (PostgreSQL
rejects unknown ones), and it cannot parse PostgreSQL's `server_version` (it accepts Redshift's
`8.0.2`). The proxy listens on 127.0.0.1, answers an SSL request with "no", keeps only the startup
parameters PostgreSQL knows, rewrites the `server_version` parameter status, and passes every
other byte through untouched — queries are never rewritten, so what runs is the SQL dbt-redshift
and our models send.

`REDSHIFT_STUBS_SQL` creates, in the test database, the Redshift system objects dbt-redshift
introspects (empty: the stand-in has no late-binding views, external tables or table statistics).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
from collections.abc import Iterator

REDSHIFT_SERVER_VERSION = b"8.0.2"
PROTOCOL_V3 = 196608
SSL_REQUEST, GSS_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102
STARTUP_PARAMETERS_KEPT = {b"user", b"database", b"application_name", b"client_encoding", b"options"}

REDSHIFT_STUBS_SQL = """
create or replace function public.pg_get_late_binding_view_cols() returns setof record
    language sql stable as $$ select null::name, null::name, null::name, null::varchar, null::int where false $$;
set allow_system_table_mods = on;
create or replace view pg_catalog.svv_table_info as
    select null::text as "schema", null::text as "table", null::oid as table_id, null::text as encoded,
           null::text as diststyle, null::text as sortkey1, null::int as max_varchar, null::text as sortkey1_enc,
           null::int as sortkey_num, null::bigint as size, null::numeric(10, 4) as pct_used,
           null::numeric(5, 2) as unsorted, null::numeric(5, 2) as stats_off, null::numeric(38, 0) as tbl_rows,
           null::numeric(19, 2) as skew_sortkey1, null::numeric(19, 2) as skew_rows
    where false;
create or replace view pg_catalog.svv_external_schemas as
    select null::int as esoid, null::name as schemaname, null::int as esowner, null::text as databasename,
           null::text as esoptions, null::int as eskind
    where false;
create or replace view pg_catalog.svv_external_tables as
    select null::text as redshift_database_name, null::name as schemaname, null::name as tablename,
           null::text as tabletype, null::text as location, null::text as input_format,
           null::text as output_format, null::text as serialization_lib, null::text as serde_parameters,
           null::int as compressed, null::text as parameters
    where false;
create or replace view pg_catalog.svv_external_columns as
    select null::name as schemaname, null::name as tablename, null::name as columnname,
           null::text as external_type, null::int as columnnum, null::int as part_key, null::int as is_nullable
    where false;
reset allow_system_table_mods;
-- Redshift's datediff/dateadd with a quoted datepart (the form our redshift__ macros emit), with
-- Redshift's documented semantics: datediff counts unit boundaries crossed, dateadd keeps the day of month.
create or replace function public.datediff(part text, first_value timestamp, second_value timestamp)
    returns bigint language sql immutable as $$
    select cast(case lower(part)
        when 'second' then floor(extract(epoch from second_value)) - floor(extract(epoch from first_value))
        when 'minute' then floor(extract(epoch from second_value) / 60) - floor(extract(epoch from first_value) / 60)
        when 'hour' then floor(extract(epoch from second_value) / 3600) - floor(extract(epoch from first_value) / 3600)
        when 'day' then cast(second_value as date) - cast(first_value as date)
        when 'month' then (extract(year from second_value) * 12 + extract(month from second_value))
            - (extract(year from first_value) * 12 + extract(month from first_value))
        when 'year' then extract(year from second_value) - extract(year from first_value)
    end as bigint) $$;
create or replace function public.dateadd(part text, amount bigint, value timestamp)
    returns timestamp language sql immutable as $$
    select value + amount * case lower(part)
        when 'second' then interval '1 second' when 'minute' then interval '1 minute'
        when 'hour' then interval '1 hour' when 'day' then interval '1 day' when 'week' then interval '7 days'
        when 'month' then interval '1 month' when 'year' then interval '1 year'
    end $$;
"""


def rewrite_startup_packet(body: bytes) -> bytes:
    """A v3 startup packet (without its length word) keeping only the parameters PostgreSQL knows."""
    fields = body[4:].split(b"\x00")
    pairs = [(fields[i], fields[i + 1]) for i in range(0, len(fields) - 1, 2) if fields[i]]
    kept = b"".join(key + b"\x00" + value + b"\x00" for key, value in pairs if key in STARTUP_PARAMETERS_KEPT)
    payload = body[:4] + kept + b"\x00"
    return struct.pack("!I", len(payload) + 4) + payload


def rewrite_server_message(kind: bytes, body: bytes) -> bytes:
    """One backend message; a `server_version` ParameterStatus reports Redshift's version instead."""
    if kind == b"S" and body.startswith(b"server_version\x00"):
        body = b"server_version\x00" + REDSHIFT_SERVER_VERSION + b"\x00"
    return kind + struct.pack("!I", len(body) + 4) + body


async def _client_to_server(client: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                            server_port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """Read the client's startup (answering SSL/GSS requests with "no"), connect upstream, send it."""
    while True:
        length = struct.unpack("!I", await client.readexactly(4))[0]
        body = await client.readexactly(length - 4)
        code = struct.unpack("!I", body[:4])[0]
        if code in (SSL_REQUEST, GSS_REQUEST):
            client_writer.write(b"N")
            await client_writer.drain()
            continue
        server, server_writer = await asyncio.open_connection("127.0.0.1", server_port)
        if code == CANCEL_REQUEST:
            server_writer.write(struct.pack("!I", length) + body)
        elif code == PROTOCOL_V3:
            server_writer.write(rewrite_startup_packet(body))
        else:
            server_writer.close()
            return None
        await server_writer.drain()
        return server, server_writer


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1 << 16):
        writer.write(data)
        await writer.drain()


async def _server_to_client(server: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Backend messages, framed (type byte, length word), with server_version rewritten."""
    while True:
        header = await server.read(1)
        if not header:
            return
        length = struct.unpack("!I", await server.readexactly(4))[0]
        writer.write(rewrite_server_message(header, await server.readexactly(length - 4)))
        await writer.drain()  # waits only while the client lags behind


async def _handle(client: asyncio.StreamReader, client_writer: asyncio.StreamWriter, server_port: int) -> None:
    server_writer = None
    try:
        upstream = await _client_to_server(client, client_writer, server_port)
        if upstream is None:
            return
        server, server_writer = upstream
        tasks = [asyncio.create_task(_pipe(client, server_writer)),
                 asyncio.create_task(_server_to_client(server, client_writer))]
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
        pass  # a side hung up, or the proxy stops: close both ends
    finally:
        for writer in (client_writer, server_writer):
            if writer is not None:
                writer.close()


@contextlib.contextmanager
def redshift_proxy(server_port: int) -> Iterator[int]:
    """Run the proxy in a background thread for PostgreSQL on 127.0.0.1:`server_port`; yields its port."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    box: dict[str, asyncio.base_events.Server] = {}

    async def start() -> None:
        box["server"] = await asyncio.start_server(lambda r, w: _handle(r, w, server_port), "127.0.0.1", 0)
        started.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield box["server"].sockets[0].getsockname()[1]
    finally:
        async def stop() -> None:
            box["server"].close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
