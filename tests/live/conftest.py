"""Fixtures for the live readers: plan sections, and small real HTTP(S) servers on loopback.

``serve_emulator`` (an emulator served by uvicorn on a real socket) comes from
``tests/conftest.py``. ``http_server`` is the stdlib HTTP server in a
thread, answering canned responses and recording the requests it saw: the
simplest real server that can answer 500, 401, or nothing at all.
"""

from __future__ import annotations

import datetime
import http.server
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from elax_plan.spec.model import AttributesSpec, SourceSpec, TargetSpec


def target_spec(url: str, store: str = "memory://unused", **overrides: Any) -> TargetSpec:
    """A loaded ``target`` section with the defaults of SPEC §3."""
    values: dict[str, Any] = {
        "url": url,
        "api_key": None,
        "store": store,
        "storage_options": MappingProxyType({}),
        "namespace": "products",
        "distance_metric": "cosine",
        "vector_dims": None,
        "max_request_bytes": 2 * 1024 * 1024,
        "timeout": 5.0,
    }
    values.update(overrides)
    return TargetSpec(**values)


def source_spec(*uris: str, **overrides: Any) -> SourceSpec:
    """A loaded ``source`` section with the defaults of SPEC §3."""
    values: dict[str, Any] = {
        "uris": uris,
        "format": "ndjson",
        "compression": "infer",
        "storage_options": MappingProxyType({}),
        "id_field": "id",
        "vector_field": "vector",
        "attributes": AttributesSpec(include=None, rename=MappingProxyType({})),
    }
    values.update(overrides)
    return SourceSpec(**values)


@dataclass
class CannedServer:
    """A stdlib HTTP server answering every GET with ``status`` and ``body``."""

    url: str
    status: int = 200
    body: bytes = b""
    seen: list[dict[str, str]] = field(default_factory=list)


def _handler(server: CannedServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.seen.append(
                {"path": self.path, **{k.lower(): v for k, v in self.headers.items()}}
            )
            self.send_response(server.status)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(server.body)))
            self.end_headers()
            self.wfile.write(server.body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler


@pytest.fixture
def http_server() -> Iterator[Callable[..., CannedServer]]:
    """Factory: a canned-answer HTTP (or, with ``tls=``, HTTPS) server on a free loopback port."""
    started: list[tuple[http.server.ThreadingHTTPServer, threading.Thread]] = []

    def start(
        status: int = 200, body: bytes = b"", tls: ssl.SSLContext | None = None
    ) -> CannedServer:
        canned = CannedServer(url="", status=status, body=body)
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(canned))
        httpd.daemon_threads = True
        if tls is not None:
            httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        canned.url = f"{scheme}://127.0.0.1:{httpd.server_address[1]}"
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        started.append((httpd, thread))
        return canned

    yield start
    for httpd, thread in started:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections (kernel backlog) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@pytest.fixture(scope="session")
def self_signed_tls(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A server TLS context with a freshly made self-signed certificate for 127.0.0.1."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "elax-plan test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    directory: Path = tmp_path_factory.mktemp("tls")
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context
