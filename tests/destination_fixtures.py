"""Fixtures the destination tests share: a built warehouse and the local storage and mail servers.

Every server binds 127.0.0.1 on a free port and stops with its fixture. tests/conftest.py loads this
module as a plugin, so any test module can ask for these fixtures by name.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest

from openmrr.paths import PROJECT_ROOT
from orchestration.refresh import refresh
from tests.helpers import SCENARIOS_DIR
from tests.servers import free_port, running

LIFECYCLE_DATA = SCENARIOS_DIR / "02-lifecycle" / "data"
BIN = Path(sys.executable).parent
AZURITE = PROJECT_ROOT / "tests" / "node" / "node_modules" / ".bin" / "azurite-blob"
# Azurite's documented development account (public, the same in every Azurite)
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@pytest.fixture(scope="session")
def built_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Scenario 02 built once per session; tests that change it work on a copy (`warehouse`)."""
    path = tmp_path_factory.mktemp("built") / "warehouse.duckdb"
    refresh(LIFECYCLE_DATA, path)
    con = duckdb.connect(str(path))
    con.execute("checkpoint")  # everything in the file itself (no .wal), so a copy is complete
    con.close()
    return path


@pytest.fixture
def warehouse(built_warehouse: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(built_warehouse, copy)
    return copy


def set_run(warehouse: Path, checked_at: str) -> None:
    """Make the warehouse's latest refresh happen at `checked_at` (a new run for the delivery code)."""
    con = duckdb.connect(str(warehouse))
    try:
        con.execute("update source.import_reports set checked_at = ?::timestamp", [checked_at])
    finally:
        con.close()


@dataclass(frozen=True)
class Server:
    endpoint: str
    env: dict[str, str]  # variables a destinations.yml entry names for it


@pytest.fixture(scope="module")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with running([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], port, log):
        yield Server(f"http://127.0.0.1:{port}", {"TEST_S3_KEY": "testing", "TEST_S3_SECRET": "testing"})


@pytest.fixture(scope="module")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    log = tmp_path_factory.mktemp("gcs") / "gcs.log"
    command = [str(BIN / "gcp-storage-emulator"), "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"]
    with running(command, port, log):
        yield Server(f"http://127.0.0.1:{port}", {})


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not AZURITE.exists():
        subprocess.run([str(PROJECT_ROOT / "scripts" / "install-test-servers")], check=True)
    port = free_port()
    workdir = tmp_path_factory.mktemp("azurite")
    # node directly (not npx), so stopping the process group frees the port
    command = ["node", str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(workdir),
               "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"]
    with running(command, port, workdir / "azurite.log"):
        connection = (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
                      f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};")
        yield Server(f"http://127.0.0.1:{port}", {"TEST_AZURE_CONNECTION": connection})


@dataclass
class MailServer:
    """aiosmtpd on 127.0.0.1: STARTTLS with a self-signed certificate, then login, both required."""

    port: int
    ca_file: Path  # the certificate a client must trust
    user: str
    password: str
    messages: list = field(default_factory=list)  # (envelope, tls was on, login) per message received


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, valid for a day."""
    from datetime import UTC, datetime, timedelta
    from ipaddress import IPv4Address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "openmrr test relay")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "relay.pem", folder / "relay.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[MailServer]:
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert_file, key_file = _self_signed_certificate(tmp_path)
    server = MailServer(port=free_port(), ca_file=cert_file, user="reports", password="s3cret-relay")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)

    def authenticate(smtp, session, envelope, mechanism, data) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == (
            server.user, server.password)
        return AuthResult(success=ok, handled=False, auth_data=data)

    class Handler:
        async def handle_DATA(self, smtp, session, envelope) -> str:
            login = session.auth_data.login.decode() if session.authenticated else None
            server.messages.append((envelope, session.ssl is not None, login))
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=server.port, tls_context=tls,
                            require_starttls=True, authenticator=authenticate, auth_require_tls=True)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
