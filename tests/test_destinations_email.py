"""E-mail destination against a local SMTP server (aiosmtpd on 127.0.0.1, STARTTLS and login required).
spec/destinations.md: the chosen datasets as CSV attachments, zipped above a size, over SMTP."""

from __future__ import annotations

import csv
import email
import io
import zipfile
from email import policy
from pathlib import Path

import duckdb
import pytest
import yaml

from openmrr.destinations import log
from openmrr.destinations.config import load_destinations
from openmrr.destinations.service import check_connection, send
from openmrr.errors import DeliveryFailed
from tests.destination_fixtures import MailServer

pytestmark = pytest.mark.slow
ENV = {"RELAY_USER": "reports", "RELAY_PASSWORD": "s3cret-relay"}


def _destinations(tmp_path: Path, server: MailServer, **settings) -> Path:
    entry = {"name": "finance", "type": "email", "datasets": ["customers", "mrr_activities"],
             "schedule": "0 7 * * 1",
             "settings": {"host": "127.0.0.1", "port": server.port, "username_env": "RELAY_USER",
                          "password_env": "RELAY_PASSWORD", "ca_file": str(server.ca_file),
                          "sender": "openmrr@acme.example", "to": ["cfo@acme.example", "ops@acme.example"],
                          **settings}}
    path = tmp_path / "destinations.yml"
    path.write_text(yaml.safe_dump({"destinations": [entry]}))
    return path


def _attachments(envelope) -> dict[str, bytes]:
    message = email.message_from_bytes(envelope.content, policy=policy.default)
    return {part.get_filename(): part.get_content() for part in message.iter_attachments()}


def _csv_rows(data: bytes | str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data if isinstance(data, str) else data.decode())))


def _ids(warehouse: Path, column: str, table: str) -> list[str]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return sorted(i for (i,) in con.execute(f"select {column} from {table}").fetchall())
    finally:
        con.close()


def test_datasets_arrive_as_csv_attachments_and_the_large_one_zipped(smtp_server, warehouse, tmp_path):
    customers_csv_size = 2_000  # scenario 02: 5 customers fit; its 20+ movements do not
    path = _destinations(tmp_path, smtp_server, zip_above_bytes=customers_csv_size)
    run, deliveries = send(load_destinations(path, ENV).get("finance"), warehouse, ENV)

    (envelope, over_tls, login), = smtp_server.messages
    assert over_tls and login == "reports"
    assert envelope.mail_from == "openmrr@acme.example"
    assert envelope.rcpt_tos == ["cfo@acme.example", "ops@acme.example"]
    attachments = _attachments(envelope)
    assert sorted(attachments) == ["customers.csv", "mrr_activities.zip"]
    customers = _csv_rows(attachments["customers.csv"])
    assert customers[0][:2] == ["customer_id", "data_source"]
    assert sorted(row[0] for row in customers[1:]) == _ids(warehouse, "customer_id", "analytics.customers")
    with zipfile.ZipFile(io.BytesIO(attachments["mrr_activities.zip"])) as archive:
        assert archive.namelist() == ["mrr_activities.csv"]
        movements = _csv_rows(archive.read("mrr_activities.csv"))
    assert movements[0][0] == "activity_id"
    assert sorted(row[0] for row in movements[1:]) == _ids(warehouse, "activity_id", "analytics.mrr_activities")
    assert len(movements) > 10

    con = duckdb.connect(str(warehouse), read_only=True)
    logged = con.execute(f"select dataset, status, rows, run_id from {log.TABLE} order by dataset").fetchall()
    con.close()
    assert logged == [("customers", "delivered", len(customers) - 1, run.run_id),
                      ("mrr_activities", "delivered", len(movements) - 1, run.run_id)]
    assert {d.location for d in deliveries} == {"mailto:cfo@acme.example, ops@acme.example"}


def test_the_same_run_is_mailed_once_unless_forced(smtp_server, warehouse, tmp_path):
    destination = load_destinations(_destinations(tmp_path, smtp_server), ENV).get("finance")
    send(destination, warehouse, ENV)
    _, again = send(destination, warehouse, ENV)
    assert len(smtp_server.messages) == 1
    assert [d.status for d in again] == ["skipped", "skipped"]
    send(destination, warehouse, ENV, datasets=["customers"], force=True)
    assert len(smtp_server.messages) == 2
    assert sorted(_attachments(smtp_server.messages[1][0])) == ["customers.csv"]


def test_a_wrong_password_is_a_failed_delivery_and_nothing_is_sent(smtp_server, warehouse, tmp_path):
    destination = load_destinations(_destinations(tmp_path, smtp_server), ENV).get("finance")
    with pytest.raises(DeliveryFailed, match="SMTPAuthenticationError"):
        send(destination, warehouse, {**ENV, "RELAY_PASSWORD": "wrong"})
    assert smtp_server.messages == []
    con = duckdb.connect(str(warehouse), read_only=True)
    assert con.execute(f"select distinct status from {log.TABLE}").fetchall() == [("failed",)]
    con.close()


def test_a_relay_certificate_the_settings_do_not_trust_is_refused(smtp_server, warehouse, tmp_path):
    path = _destinations(tmp_path, smtp_server, ca_file=None)
    with pytest.raises(DeliveryFailed, match="CERTIFICATE_VERIFY_FAILED"):
        send(load_destinations(path, ENV).get("finance"), warehouse, ENV)
    assert smtp_server.messages == []


def test_connection_test_logs_in_over_starttls_and_sends_nothing(smtp_server, tmp_path):
    message = check_connection(load_destinations(_destinations(tmp_path, smtp_server), ENV).get("finance"), ENV)
    assert "starttls" in message and "NOOP 250" in message
    assert smtp_server.messages == []


def test_the_cli_connection_test_reports_a_refused_login_with_exit_code_3(smtp_server, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from openmrr.cli import app

    path = _destinations(tmp_path, smtp_server)
    monkeypatch.setenv("RELAY_USER", "reports")
    monkeypatch.setenv("RELAY_PASSWORD", "wrong")
    result = CliRunner().invoke(app, ["destinations", "test", "finance", "--file", str(path)])
    assert result.exit_code == 3
    assert "connection test failed: SMTPAuthenticationError" in result.output and "Traceback" not in result.output
    monkeypatch.setenv("RELAY_PASSWORD", smtp_server.password)
    assert CliRunner().invoke(app, ["destinations", "test", "finance", "--file", str(path)]).exit_code == 0
