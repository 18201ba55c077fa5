"""A real HTTP server on 127.0.0.1 for the HTTP destination tests: it records every request, answers
faults on purpose (5xx, slow answers past the client's timeout, 429 with Retry-After, a request held
open until the test lets go) and speaks the two Intercom endpoints the Intercom destination uses.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # time.monotonic() when the request arrived

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    """A planned answer: a status with headers and body, or `delay` seconds of silence first."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0
    hold: threading.Event | None = None  # answer only once the test sets it


class IntercomWorkspace:
    """Contacts and the subset of Intercom's REST API we call: POST /contacts/search, PUT /contacts/{id}.

    It checks the bearer token and limits requests per window like Intercom: `X-RateLimit-Limit`,
    `X-RateLimit-Remaining`, `X-RateLimit-Reset` (epoch seconds) on every answer, 429 past the limit."""

    def __init__(self, token: str, rate_limit: int = 1000, window_seconds: int = 1):
        self.token, self.rate_limit, self.window_seconds = token, rate_limit, window_seconds
        self.contacts: dict[str, dict] = {}
        self._window, self._used = -1, 0
        self.refused = 0  # requests answered 429 because the client did not wait for the reset

    def add_contact(self, contact_id: str, email: str | None = None, external_id: str | None = None) -> None:
        self.contacts[contact_id] = {"type": "contact", "id": contact_id, "role": "user", "email": email,
                                     "external_id": external_id, "custom_attributes": {}}

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        window = int(time.time()) // self.window_seconds
        if window != self._window:
            self._window, self._used = window, 0
        self._used += 1
        reset = str((window + 1) * self.window_seconds)
        rate = {"X-RateLimit-Limit": str(self.rate_limit), "X-RateLimit-Reset": reset,
                "X-RateLimit-Remaining": str(max(0, self.rate_limit - self._used))}
        if self._used > self.rate_limit:
            self.refused += 1
            return self._json(429, {"type": "error.list", "errors": [{"code": "rate_limit_exceeded"}]}, rate)
        if headers.get("authorization") != f"Bearer {self.token}":
            return self._json(401, {"type": "error.list", "errors": [{"code": "unauthorized"}]}, rate)
        if method == "POST" and path == "/contacts/search":
            found = [contact for contact in self.contacts.values() if matches(contact, json.loads(body)["query"])]
            return self._json(200, {"type": "list", "data": found, "total_count": len(found)}, rate)
        update = re.fullmatch(r"/contacts/([^/]+)", path)
        if method == "PUT" and update:
            contact = self.contacts.get(update.group(1))
            if contact is None:
                return self._json(404, {"type": "error.list", "errors": [{"code": "not_found"}]}, rate)
            contact["custom_attributes"].update(json.loads(body).get("custom_attributes", {}))
            return self._json(200, contact, rate)
        return self._json(404, {"type": "error.list", "errors": [{"code": "route_not_found"}]}, rate)

    @staticmethod
    def _json(status: int, payload: dict, headers: dict[str, str]) -> Reply:
        return Reply(status, {"Content-Type": "application/json", **headers}, json.dumps(payload).encode())


def matches(contact: dict, query: dict) -> bool:
    """Intercom's search query: a single `{field, operator: "=", value}` or nested AND/OR lists of them."""
    if query["operator"] in ("AND", "OR"):
        combine = all if query["operator"] == "AND" else any
        return combine(matches(contact, part) for part in query["value"])
    if query["operator"] != "=":
        raise ValueError(f"operator {query['operator']} not emulated")
    return contact.get(query["field"]) == query["value"]


class Receiver:
    """Records requests; answers with the planned replies first, then Intercom (if set) or `200 ok`."""

    def __init__(self, intercom: IntercomWorkspace | None = None):
        self.intercom = intercom
        self.requests: list[Received] = []
        self._planned: deque[Reply] = deque()
        self._lock = threading.Lock()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def plan(self, *replies: Reply | int) -> None:
        """Answer the next requests with these, in order (an int is a bare status)."""
        with self._lock:
            self._planned.extend(Reply(reply) if isinstance(reply, int) else reply for reply in replies)

    def received(self, method: str | None = None) -> list[Received]:
        with self._lock:
            return [request for request in self.requests if method is None or request.method == method]

    def _answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        with self._lock:
            self.requests.append(Received(method, path, headers, body, time.monotonic()))
            if self._planned:
                return self._planned.popleft()
            if self.intercom is not None:
                return self.intercom.answer(method, path, headers, body)
        return Reply()


def handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            reply = receiver._answer(self.command, self.path, headers, body)
            if reply.hold is not None:
                reply.hold.wait()
            if reply.delay:
                time.sleep(reply.delay)
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout) or was killed: nothing to answer

        do_POST = do_PUT = do_GET = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serving(receiver: Receiver) -> Iterator[Receiver]:
    """Run `receiver` on a free port of 127.0.0.1 for the block; stop it afterwards."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(receiver))
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
