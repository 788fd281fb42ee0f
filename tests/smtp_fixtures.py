"""Test fixtures for alerts: a real aiosmtpd server on 127.0.0.1 and synthetic stored hits.

``SmtpSink`` runs aiosmtpd in a thread (plain, with AUTH, STARTTLS or implicit
TLS; certificates are generated here with ``cryptography``) and collects every
accepted message. ``store_hit`` writes a page with a given verdict into the
state DB the way the store pipeline does, inside a patrol run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import ssl
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from crawler.items import PageItem
from crawler.store.db import StateDB
from crawler.store.pages import save_pages
from crawler.store.runs import finish_run, start_run

USER, PASSWORD = "duty", "s3cret-pw"


class _Controller(Controller):
    """aiosmtpd's Controller, bound to port 0: learn the real port before the readiness probe."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpSink:
    """A real SMTP server that keeps what it accepts; ``wait_for(n)`` waits with a deadline."""

    def __init__(self, *, auth: bool = False, starttls: ssl.SSLContext | None = None,
                 implicit_tls: ssl.SSLContext | None = None, port: int = 0, refuse: set[str] | None = None):
        self.auth, self.starttls, self.implicit_tls = auth, starttls, implicit_tls
        self.refuse = refuse if refuse is not None else set()
        """Addresses answered ``550 No such user`` at RCPT TO (a set: change it while the server runs)."""
        self.port = port
        self.received: list[tuple[str, list[str], bytes]] = []
        self.logins: list[str] = []
        self.tls_sessions = 0
        self._cond = threading.Condition()
        self.controller: Controller | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self._cond:
            self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
            if session.ssl is not None:
                self.tls_sessions += 1
            self._cond.notify_all()
        return "250 OK"

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == USER \
            and auth_data.password.decode() == PASSWORD
        if ok:
            self.logins.append(USER)
        return AuthResult(success=ok)

    def start(self) -> "SmtpSink":
        kwargs = {}
        if self.auth:
            kwargs.update(authenticator=self._authenticate, auth_required=True,
                          auth_require_tls=self.starttls is not None)
        if self.starttls is not None:
            kwargs.update(tls_context=self.starttls, require_starttls=True)
        self.controller = _Controller(self, hostname="127.0.0.1", port=self.port,
                                      ssl_context=self.implicit_tls, **kwargs)
        self.controller.start()
        self.port = self.controller.port
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def __enter__(self) -> "SmtpSink":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        with self._cond:
            return [message_from_bytes(raw, policy=policy.default) for _f, _r, raw in self.received]

    def wait_for(self, count: int, timeout: float = 30) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} message(s), got {len(self.received)}")
                self._cond.wait(left)
        return self.messages


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1; returns (cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def finding(category: str, text: str, snippet: str | None = None, negated: bool = False) -> dict:
    return {"category": category, "rule_id": f"{category}.{text}", "text": text, "start": 0,
            "end": len(text), "field": "text", "snippet": snippet or text, "weight": 1.0,
            "negated": negated, "negated_by": None}


def verdict(findings: list[dict], risk: str = "high", yields: list[dict] | None = None) -> dict:
    labels = sorted({f["category"] for f in findings if not f["negated"]})
    return {"labels": labels, "score": 0.9 if risk == "high" else 0.5, "risk": risk,
            "findings": findings, "yields": yields or [], "context": "advertisement"}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store_hits(db: StateDB, pages: list[tuple[str, str, str, dict]], when: dt.datetime | None = None,
               finish: bool = True, verdict_by: str | None = None) -> int:
    """Store (target_id, url, text, verdict) pages in one new patrol run; return the run id.

    ``verdict_by``: the stamp of the rules that gave the verdicts (``crawler.items.verdict_stamp``)."""
    when = (when or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    run_id = start_run(db, "site_patrol", when)
    items = []
    for target_id, url, text, v in pages:
        items.append(PageItem(
            target_id=target_id, url=url, final_url=url, status=200, headers={}, body=text.encode(),
            encoding="utf-8", fetched_at=when.isoformat(), sha256=_sha(text.encode()), title=text[:30],
            text=text, text_fingerprint=_sha(text.encode()), verdict=v, verdict_by=verdict_by,
        ))
    save_pages(db, items, run_id)
    if finish:
        per_target = {t: {"pages": 1, "failed": 0, "hits": 1, "new_hits": 1, "errors": {}}
                      for t, *_ in pages}
        finish_run(db, run_id, "finished", {}, per_target)
    return run_id
