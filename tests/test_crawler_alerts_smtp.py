"""The dispatcher against real aiosmtpd servers: AUTH, STARTTLS, implicit TLS, and .eml files."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest
import yaml
from sqlalchemy import select
from smtp_fixtures import PASSWORD, USER, SmtpSink, finding, make_cert, server_context, store_hits, verdict

from classifiers import CATEGORIES
from conftest import cli, json_lines
from crawler.alerts.models import OutboxMessage
from crawler.alerts.service import deliver
from crawler.config import load_config
from crawler.store.db import StateDB

NOW = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)


def write_config(tmp_path, smtp: dict | None, emails: tuple[str, ...]):
    document = {
        "state_dir": "state",
        "alerts": {"quiet_hours": None},
        "routing": {"units": {"cbrc": {"name": "江津银监分局", "emails": list(emails)}}},
        "targets": [{"id": "xyb", "name": "重庆鑫盈宝网络科技有限公司", "business": "p2p",
                     "urls": ["http://127.0.0.1:9/"]}],
    }
    if smtp:
        document["smtp"] = smtp
    path = tmp_path / "patrol.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return load_config(path)


def setup(tmp_path, smtp: dict | None, emails: tuple[str, ...] = ("duty@cbrc.test", "chief@cbrc.test")):
    config = write_config(tmp_path, smtp, emails)
    db = StateDB(config.db_url)
    store_hits(db, [("xyb", "http://127.0.0.1:9/a", "保本保息", verdict([finding("guaranteed_return", "保本保息")]))],
               when=NOW)
    return config, db


def db_hit_id(db: StateDB) -> int:
    from crawler.store.models import Hit

    with db.new_session() as session:
        (hit_id,) = session.scalars(select(Hit.id)).all()
    return hit_id


@pytest.fixture
def credentials(monkeypatch):
    monkeypatch.setenv("FINPATROL_SMTP_USER", USER)
    monkeypatch.setenv("FINPATROL_SMTP_PASSWORD", PASSWORD)


def test_plain_smtp_with_auth(tmp_path, credentials):
    with SmtpSink(auth=True) as sink:
        config, db = setup(tmp_path, {"host": "127.0.0.1", "port": sink.port, "security": "none"})
        assert deliver(config, db, now=NOW).sent
        (msg,) = sink.wait_for(1)
        assert sink.logins == [USER]
        assert set(sink.received[0][1]) == {"duty@cbrc.test", "chief@cbrc.test"}
        assert "江津银监分局" in str(msg["To"])


def test_wrong_password_is_retried_not_lost(tmp_path, monkeypatch):
    monkeypatch.setenv("FINPATROL_SMTP_USER", USER)
    monkeypatch.setenv("FINPATROL_SMTP_PASSWORD", "wrong")
    with SmtpSink(auth=True) as sink:
        config, db = setup(tmp_path, {"host": "127.0.0.1", "port": sink.port, "security": "none", "timeout": 5})
        result = deliver(config, db, now=NOW)
        assert not result.sent and result.failed
        assert sink.received == []
        monkeypatch.setenv("FINPATROL_SMTP_PASSWORD", PASSWORD)
        later = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
        assert deliver(config, db, now=later).sent
        sink.wait_for(1)


def test_starttls_with_auth_and_a_private_ca(tmp_path, credentials):
    cert, key = make_cert(tmp_path)
    with SmtpSink(auth=True, starttls=server_context(cert, key)) as sink:
        config, db = setup(tmp_path, {"host": "127.0.0.1", "port": sink.port, "security": "starttls",
                                      "ca_file": str(cert)})
        assert deliver(config, db, now=NOW).sent
        sink.wait_for(1)
        assert sink.tls_sessions == 1 and sink.logins == [USER]


def test_starttls_refuses_an_untrusted_certificate(tmp_path, credentials):
    cert, key = make_cert(tmp_path)
    with SmtpSink(auth=True, starttls=server_context(cert, key)) as sink:
        config, db = setup(tmp_path, {"host": "127.0.0.1", "port": sink.port, "security": "starttls"})
        result = deliver(config, db, now=NOW)
        assert not result.sent and "CERTIFICATE_VERIFY_FAILED" in next(iter(result.failed.values()))
        assert sink.received == []


def test_implicit_tls(tmp_path):
    cert, key = make_cert(tmp_path)
    with SmtpSink(implicit_tls=server_context(cert, key)) as sink:
        config, db = setup(tmp_path, {"host": "127.0.0.1", "port": sink.port, "security": "tls",
                                      "ca_file": str(cert)})
        assert deliver(config, db, now=NOW).sent
        sink.wait_for(1)


def test_without_smtp_messages_are_eml_files_and_retries_do_not_duplicate(tmp_path):
    config, db = setup(tmp_path, None)
    result = deliver(config, db, now=NOW)
    assert result.where == str(config.state_dir / "outbox")
    files = sorted((config.state_dir / "outbox").glob("*.eml"))
    assert len(files) == 1 and result.sent
    msg = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert msg["Subject"] == f"【高风险】{CATEGORIES['guaranteed_return'].name_zh} - 重庆鑫盈宝网络科技有限公司"
    db.execute("UPDATE outbox SET status='pending'")
    deliver(config, db, now=NOW)
    assert sorted((config.state_dir / "outbox").glob("*.eml")) == files


@pytest.mark.parametrize("with_smtp", [True, False])
def test_a_unit_without_an_address_keeps_its_message_as_a_file_not_sent(tmp_path, with_smtp):
    with SmtpSink() as sink:
        smtp = {"host": "127.0.0.1", "port": sink.port, "security": "none"} if with_smtp else None
        config, db = setup(tmp_path, smtp, emails=())
        result = deliver(config, db, now=NOW)
        assert result.sent == [] and not result.failed and len(result.unaddressed) == 1
        (eml,) = (config.state_dir / "outbox" / "unaddressed").glob("*.eml")
        assert "（未配置邮箱）" in message_from_bytes(eml.read_bytes(), policy=policy.default)["To"]
        assert not list((config.state_dir / "outbox").glob("*.eml")), "not among the delivered files"
        assert sink.received == []
        listed = json_lines(cli("alerts", "list", "--config", str(config.source), "--json").stdout)
        assert [(m["status"], m["sent_at"]) for m in listed] == [("unaddressed", None)], "reached nobody"
        hit_id = db_hit_id(db)
        assert [(a["kind"], a["category"], a["target"], a["hit_id"]) for a in listed[0]["alerts"]] == [
            ("hit", "guaranteed_return", "xyb", hit_id)], "the JSON says which hit the mail tells of"
        assert deliver(config, db, now=NOW).unaddressed == [], "kept once, not retried"
        send = cli("alerts", "send", "--config", str(config.source))
        assert send.returncode == 0 and "0 sent" in send.stdout


def test_a_kept_message_is_sent_with_send_unaddressed_once_its_unit_has_an_address(tmp_path):
    with SmtpSink() as sink:
        smtp = {"host": "127.0.0.1", "port": sink.port, "security": "none"}
        config, db = setup(tmp_path, smtp, emails=())
        (kept,) = deliver(config, db, now=NOW).unaddressed
        composed = message_from_bytes(outbox_row(db, kept).raw, policy=policy.default)
        unaddressed = config.state_dir / "outbox" / "unaddressed"
        send = ["alerts", "send", "--unaddressed", "--config", str(config.source)]

        still = cli(*send)
        assert still.returncode == 0 and sink.received == [] and outbox_row(db, kept).status == "unaddressed"
        said = " ".join(still.stdout.split())
        assert "0 kept message(s) addressed and queued, 1 still for units without an address (cbrc)" in said
        assert "set routing.units.<unit>.emails, then run `finpatrol alerts send --unaddressed`" in said

        config = write_config(tmp_path, smtp, emails=("duty@cbrc.test",))
        sent = cli(*send)
        assert sent.returncode == 0, sent.stderr
        assert "1 kept message(s) addressed and queued" in sent.stdout and "1 sent" in sent.stdout
        (msg,) = sink.wait_for(1)
        assert sink.received[0][1] == ["duty@cbrc.test"]
        assert str(msg["To"]) == "江津银监分局 <duty@cbrc.test>"
        assert msg["Message-ID"] == composed["Message-ID"]
        assert msg["Subject"] == composed["Subject"]
        assert msg.get_body(("plain",)).get_content() == composed.get_body(("plain",)).get_content()
        row = outbox_row(db, kept)
        assert (row.status, row.recipients) == ("sent", ["duty@cbrc.test"]) and row.sent_at is not None
        assert not list(unaddressed.glob("*.eml")), "no longer kept"

        again = cli(*send)
        assert again.returncode == 0 and "0 kept message(s)" in again.stdout and "0 sent" in again.stdout
        assert len(sink.received) == 1


def outbox_row(db, row_id):
    with db.new_session() as session:
        return session.get(OutboxMessage, row_id)


def test_a_sender_relays_refuse_is_warned_of_by_check_config_and_alerts_send_and_the_mail_is_unchanged(tmp_path, sink):
    smtp = {"host": "127.0.0.1", "port": sink.port, "security": "none"}
    config, db = setup(tmp_path, smtp)
    warning = (f"{config.source}: smtp.sender: mail to 127.0.0.1 goes out From finpatrol@localhost (smtp.sender is "
               "not set), which mail relays refuse or file as spam; set smtp.sender to an address of the office's "
               "own mail domain")
    checked = cli("check-config", "--config", str(config.source))
    assert checked.returncode == 0 and f"{config.source}: warning: {warning.split(': ', 1)[1]}" in checked.stderr
    sent = cli("alerts", "send", "--config", str(config.source))
    assert sent.returncode == 0 and "1 sent" in sent.stdout, sent.stderr
    assert [line.split(" WARNING crawler.commands.common: ", 1)[1] for line in sent.stderr.splitlines()
            if "smtp.sender" in line] == [warning], "logged once, naming the field"
    (received,) = sink.received
    with db.new_session() as session:
        (row,) = session.scalars(select(OutboxMessage)).all()
    assert message_from_bytes(row.raw, policy=policy.default)["From"].addresses[0].addr_spec == "finpatrol@localhost"
    assert received[2].replace(b"\r\n", b"\n") == row.raw.replace(b"\r\n", b"\n"), "sent as composed"

    for quiet in ({**smtp, "sender": "xuncha@jiangjin.example.cn"}, None):  # a real sender, or no SMTP: .eml files
        config = write_config(tmp_path, quiet, ("duty@cbrc.test",))
        assert "smtp.sender" not in cli("check-config", "--config", str(config.source)).stderr
        assert "smtp.sender" not in cli("alerts", "send", "--config", str(config.source)).stderr
