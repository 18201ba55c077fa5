"""E-mail destination: the chosen datasets as CSV attachments in one message over SMTP.

An attachment larger than `zip_above_bytes` goes as `<dataset>.zip` holding `<dataset>.csv`.
`security` is `starttls` (default: plain connection upgraded before login), `ssl` (TLS from the first
byte, port 465) or `none` (a relay on a trusted network). A dataset already delivered to this
destination for this run is left out unless forced, so a schedule firing twice sends one message.
"""

from __future__ import annotations

import hashlib
import io
import smtplib
import ssl
import tempfile
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from openmrr.destinations import log
from openmrr.destinations.base import Delivery, DeliveryContext
from openmrr.destinations.objectstore import export

DATASETS: tuple[str, ...] = ()  # any dataset


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username_env: str | None = None  # both unset: no login
    password_env: str | None = None
    ca_file: str | None = None  # a CA bundle to trust instead of the system's (a private relay)
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    to: list[str] = Field(min_length=1)
    subject: str = "OpenMRR {destination}: {datasets} for {run_date}"
    zip_above_bytes: int = Field(default=5_000_000, ge=0)
    timeout_seconds: float = Field(default=60, gt=0)


def _tls_context(settings: Settings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.ca_file)


def _connect(settings: Settings, environ: Mapping[str, str]) -> smtplib.SMTP:
    """An open, upgraded and logged-in SMTP session."""
    if settings.security == "ssl":
        session: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout_seconds,
                                                 context=_tls_context(settings))
    else:
        session = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds)
    try:
        session.ehlo()
        if settings.security == "starttls":
            session.starttls(context=_tls_context(settings))
            session.ehlo()
        if settings.username_env:
            password = environ[settings.password_env] if settings.password_env else ""
            session.login(environ[settings.username_env], password)
    except BaseException:
        session.close()
        raise
    return session


def _attachment(name: str, csv_path: Path, zip_above: int) -> tuple[str, bytes, str, str]:
    """(file name, bytes, maintype, subtype) of one dataset's attachment."""
    data = csv_path.read_bytes()
    if len(data) <= zip_above:
        return f"{name}.csv", data, "text", "csv"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{name}.csv", data)
    return f"{name}.zip", buffer.getvalue(), "application", "zip"


def deliver(settings: Settings, context: DeliveryContext) -> list[Delivery]:
    started = datetime.now(UTC)
    done = set() if context.force else log.delivered_datasets(context.connection, context.destination,
                                                              context.run_id)
    pending = [d for d in context.datasets if d not in done]
    skipped = [Delivery(context.destination, d, context.run_id, "skipped", 0, 0, None, started, started,
                        error="already delivered for this run (send --force to send again)")
               for d in context.datasets if d in done]
    if not pending:
        return skipped
    attachments: list[tuple[str, bytes, str, str]] = []
    sent: list[tuple[str, int, int, str]] = []  # dataset, rows, bytes, sha256 of the attachment
    lines = [f"OpenMRR delivery '{context.destination}', run {context.run_id} ({context.run_date:%Y-%m-%d}).", ""]
    with tempfile.TemporaryDirectory(prefix="openmrr-email-") as scratch:
        for dataset in pending:
            path = Path(scratch) / f"{dataset}.csv"
            rows = export(context, dataset, path, "csv")
            attachment = _attachment(dataset, path, settings.zip_above_bytes)
            attachments.append(attachment)
            sent.append((dataset, rows, len(attachment[1]), hashlib.sha256(attachment[1]).hexdigest()))
            lines.append(f"- {attachment[0]}: {rows:,} rows")
    message = EmailMessage()
    message["From"], message["To"] = settings.sender, ", ".join(settings.to)
    message["Subject"] = settings.subject.format(destination=context.destination, datasets=", ".join(pending),
                                                 run_date=f"{context.run_date:%Y-%m-%d}", run_id=context.run_id)
    message["Message-ID"] = make_msgid(domain=settings.sender.split("@")[-1])
    message.set_content("\n".join(lines) + "\n")
    for name, data, maintype, subtype in attachments:
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    with _connect(settings, context.environ) as session:
        session.send_message(message)
    finished = datetime.now(UTC)
    recipients = ", ".join(settings.to)
    return skipped + [Delivery(context.destination, dataset, context.run_id, "delivered", rows, size, checksum,
                               started, finished, location=f"mailto:{recipients}")
                      for dataset, rows, size, checksum in sent]


def check(settings: Settings, environ: Mapping[str, str]) -> str:
    """Connect, upgrade to TLS and log in as configured; send nothing."""
    with _connect(settings, environ) as session:
        code, _ = session.noop()
    return f"SMTP {settings.host}:{settings.port} accepted the connection ({settings.security}, NOOP {code})"
