"""One small HTTP client for the HTTP destinations: retries with back-off, Retry-After and rate headers.

Why our own loop rather than a transport's retry option: the destinations need the same rules for
every service (5xx, 429, timeouts and connection errors are retried; other 4xx are final), `Retry-After`
and `X-RateLimit-*` honoured, and delays short enough in tests through settings rather than patches.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Annotated

import httpx
from pydantic import BaseModel, Field

from openmrr import __version__ as openmrr_version
from openmrr.errors import ConfigError

USER_AGENT = f"OpenMRR/{openmrr_version}"
RESET_MARGIN_SECONDS = 0.05
# Settings name environment variables that hold secrets, never the secrets themselves.
EnvVarName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class RetrySettings(BaseModel):
    """How hard to try one request; part of each HTTP destination's `settings:` block."""

    model_config = {"extra": "forbid"}

    timeout_seconds: float = Field(10.0, gt=0)
    max_attempts: int = Field(5, ge=1, le=20)
    base_delay_seconds: float = Field(1.0, ge=0)  # first back-off; doubles on each retry
    max_delay_seconds: float = Field(60.0, ge=0)  # cap of one back-off, and the longest Retry-After waited for


class HttpFailure(Exception):
    """A request that did not succeed: `final` when retrying cannot help (a 4xx other than 429)."""

    def __init__(self, message: str, status: int | None, final: bool, attempts: int):
        super().__init__(message)
        self.status, self.final, self.attempts = status, final, attempts


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """The wait a `Retry-After` header asks for: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def backoff_seconds(attempt: int, retry: RetrySettings) -> float:
    """Exponential back-off with equal jitter: half the doubled delay is kept, the other half is random.

    Keeping half guarantees a real pause; the random half spreads many clients apart."""
    delay = min(retry.max_delay_seconds, retry.base_delay_seconds * 2 ** (attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)


def seconds_until_reset(response: httpx.Response) -> float | None:
    """The wait until `X-RateLimit-Reset` (epoch seconds, as Intercom sends it); None if absent."""
    try:
        return max(0.0, float(response.headers["X-RateLimit-Reset"]) - time.time())
    except (KeyError, ValueError):
        return None


def describe(response: httpx.Response) -> str:
    body = response.text.strip().replace("\n", " ")
    return f"HTTP {response.status_code}" + (f": {body[:200]}" if body else "")


class HttpClient:
    """Sends requests with the retry rules above; paces itself from rate-limit headers between requests."""

    def __init__(self, retry: RetrySettings, headers: Mapping[str, str] | None = None,
                 min_interval_seconds: float = 0.0):
        self.retry = retry
        self.min_interval_seconds = min_interval_seconds
        self._client = httpx.Client(timeout=retry.timeout_seconds, follow_redirects=False,
                                    headers={"User-Agent": USER_AGENT, **(headers or {})})
        self.last_attempts = 0  # requests the last successful call took
        self._not_before = 0.0  # monotonic time before which the next request must not start

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def request(self, method: str, url: str, *, content: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> httpx.Response:
        """The 2xx response, after retries; raises HttpFailure otherwise."""
        attempt = 0
        while True:
            attempt += 1
            self._wait_turn()
            try:
                response = self._client.request(method, url, content=content, headers=headers)
            except httpx.TimeoutException as error:
                problem, status, wait = f"timed out after {self.retry.timeout_seconds:g} s ({error!r})", None, None
            except httpx.TransportError as error:
                problem, status, wait = f"connection failed ({error})", None, None
            else:
                self._note_rate_headers(response)
                if response.is_success:
                    self.last_attempts = attempt
                    return response
                problem, status = describe(response), response.status_code
                if (300 <= status < 500) and status != 429:  # redirects and client errors: a retry gets the same
                    raise HttpFailure(problem, status, True, attempt)
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                if wait is None and status == 429:
                    wait = seconds_until_reset(response)
            if attempt >= self.retry.max_attempts:
                raise HttpFailure(f"{problem} (gave up after {attempt} attempts)", status, False, attempt)
            if wait is not None and wait > self.retry.max_delay_seconds:
                # Honour Retry-After rather than retry early: stop now, the next run resumes.
                raise HttpFailure(f"{problem}; Retry-After {wait:g} s is longer than max_delay_seconds", status,
                                  False, attempt)
            time.sleep(wait if wait is not None else backoff_seconds(attempt, self.retry))

    def _wait_turn(self) -> None:
        pause = self._not_before - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        self._not_before = time.monotonic() + self.min_interval_seconds

    def _note_rate_headers(self, response: httpx.Response) -> None:
        """`X-RateLimit-Remaining: 0` with `X-RateLimit-Reset` (epoch seconds): hold the next request until then."""
        remaining = response.headers.get("X-RateLimit-Remaining", "")
        if not remaining.strip().isdigit() or int(remaining) > 0:
            return
        until_reset = seconds_until_reset(response)
        if until_reset is None:
            return
        # a little past the reset, so a clock a hair behind the server's does not land in the old window
        pause = min(until_reset + RESET_MARGIN_SECONDS, self.retry.max_delay_seconds)
        if pause > 0:
            self._not_before = max(self._not_before, time.monotonic() + pause)


LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def checked_url(url: str, setting: str, secret: bool = False) -> str:
    """`url` if it is HTTPS (plain HTTP only to this machine, for local receivers); ValueError otherwise.

    A `secret` URL (Slack's carries its token) is never repeated in the message."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = httpx.URL()
    if (parsed.scheme == "https" and parsed.host) or (parsed.scheme == "http" and parsed.host in LOOPBACK_HOSTS):
        return url
    shown = "" if secret else f", got {url!r}"
    raise ValueError(f"{setting} must be an https:// URL (http:// only to localhost){shown}")


def environ_secret(environ: Mapping[str, str], variable: str, destination: str, setting: str) -> str:
    """The value of the environment variable a setting names; ConfigError if it is unset or empty."""
    value = environ.get(variable, "")
    if not value:
        raise ConfigError(f"destination {destination}: environment variable {variable} (settings.{setting}) "
                          "is not set")
    return value
