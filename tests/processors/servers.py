"""Local servers the processor tests talk to (loopback only): an HTTP server whose answers may carry
headers (Retry-After, Location), SMTP with STARTTLS and AUTH, and a TLS certificate made on the spot."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.receivers import Request, free_port

Reply = tuple[int, Any] | tuple[int, Any, dict[str, str]]
"""(status, body) or (status, body, headers); a dict or list body goes as JSON, bytes and str as they are."""


@dataclass
class HttpServer:
    url: str
    respond: Callable[[Request], Reply]
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def paths(self) -> list[str]:
        with self.lock:
            return [request.path for request in self.requests]


@contextmanager
def http_server(respond: Callable[[Request], Reply] = lambda request: (200, {})) -> Iterator[HttpServer]:
    """An HTTP/1.1 server on 127.0.0.1 recording every request and answering with `respond(request)`."""
    server = HttpServer("", respond)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("content-length", 0))
            request = Request(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length),
            )
            with server.lock:
                server.requests.append(request)
            reply = server.respond(request)
            status, body = reply[0], reply[1]
            headers = reply[2] if len(reply) == 3 else {}
            if isinstance(body, dict | list):
                data, content_type = json.dumps(body).encode(), "application/json"
            elif isinstance(body, bytes):
                data, content_type = body, "application/octet-stream"
            else:
                data, content_type = str(body).encode(), "text/plain"
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_GET = do_PUT = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, signed by its own key: (certificate, key) PEM files.
    Trust it by pointing SSL_CERT_FILE at the certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jobkeeper test SMTP")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@dataclass
class Delivery:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None
    tls: bool


@dataclass
class SmtpServer:
    host: str
    port: int
    deliveries: list[Delivery] = field(default_factory=list)
    refused_logins: list[str] = field(default_factory=list)
    reply_to_data: str = "250 OK"
    """What the server answers to DATA, e.g. `451 4.3.0 try again later`."""
    refuse_recipients: set[str] = field(default_factory=set)
    """Recipients answered `550 5.1.1 no such user`."""


@contextmanager
def smtp_server(
    *, tls: tuple[Path, Path] | None = None, users: dict[str, str] | None = None
) -> Iterator[SmtpServer]:
    """An SMTP server on 127.0.0.1. With `tls` (certificate, key) it offers STARTTLS and requires it; with
    `users`, it offers AUTH (PLAIN, LOGIN) and requires it."""
    server = SmtpServer("127.0.0.1", free_port())
    logins: dict[int, str] = {}

    class Handler:
        async def handle_RCPT(
            self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
        ) -> str:
            if address in server.refuse_recipients:
                return "550 5.1.1 no such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
            if not server.reply_to_data.startswith("250"):
                return server.reply_to_data
            content = envelope.original_content or b""
            message = message_from_bytes(content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            server.deliveries.append(
                Delivery(
                    str(envelope.mail_from),
                    list(envelope.rcpt_tos),
                    message,
                    logins.get(id(session)),
                    session.ssl is not None,
                )
            )
            return "250 OK"

    def authenticator(
        smtp: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login, password = auth_data.login.decode(), auth_data.password.decode()
            if users is not None and users.get(login) == password:
                logins[id(session)] = login
                return AuthResult(success=True)
            server.refused_logins.append(login)
        return AuthResult(success=False, handled=False)

    options: dict[str, Any] = {}
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        options |= {"tls_context": context, "require_starttls": True}
    if users is not None:
        # AUTH is offered either way; it is required only over TLS (aiosmtpd warns otherwise).
        options |= {
            "authenticator": authenticator,
            "auth_require_tls": tls is not None,
            "auth_required": tls is not None,
        }
    controller = Controller(Handler(), hostname=server.host, port=server.port, **options)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
