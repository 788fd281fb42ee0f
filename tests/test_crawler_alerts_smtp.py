"""The dispatcher against real aiosmtpd servers: AUTH, STARTTLS, implicit TLS, and .eml files."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
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


def write_units(tmp_path, port: int, cbrc: list[str]):
    """The config of ``setup`` with the operator unit addressed, so its notices arrive too."""
    config = write_config(tmp_path, {"host": "127.0.0.1", "port": port, "security": "none"}, tuple(cbrc))
    document = yaml.safe_load(config.source.read_text(encoding="utf-8"))
    document["routing"]["units"]["operator"] = {"emails": ["ops@jiangjin.test"]}
    config.source.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return load_config(config.source)


def operator_alerts(db) -> list:
    from crawler.alerts.models import Alert

    with db.new_session() as session:
        return list(session.scalars(select(Alert).where(Alert.kind == "operator")))


def without_to(raw: bytes) -> list[bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"to:")]
    return [*lines, body]


def test_a_queued_message_follows_its_units_corrected_address_keeping_every_other_byte(tmp_path):
    with SmtpSink() as probe:
        port = probe.port
    config = write_units(tmp_path, port, ["duty@pboc-old.test"])
    db = StateDB(config.db_url)
    store_hits(db, [("xyb", "http://127.0.0.1:9/a", "保本保息", verdict([finding("guaranteed_return", "保本保息")]))],
               when=NOW)
    (queued,) = deliver(config, db, now=NOW).failed  # SMTP is down: the message waits
    composed = outbox_row(db, queued).raw
    write_units(tmp_path, port, ["newduty@cbrc.test"])
    with SmtpSink(port=port) as up:
        sent = cli("alerts", "send", "--config", str(config.source))
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "1 queued message(s) given their unit's changed addresses" in sent.stdout
        assert "readdressed and queued" in sent.stderr and "duty@pboc-old.test" in sent.stderr
        (msg,) = up.wait_for(1)
        assert up.received[0][1] == ["newduty@cbrc.test"], "the corrected address, not the old one"
        assert str(msg["To"]) == "江津银监分局 <newduty@cbrc.test>"
    row = outbox_row(db, queued)
    assert (row.status, row.recipients, row.delivered_to) == ("sent", ["newduty@cbrc.test"], ["newduty@cbrc.test"])
    assert without_to(row.raw) == without_to(composed), "every byte but the To header as composed"
    readdressed, delivered = row.history
    assert readdressed["event"] == "readdressed" and readdressed["from"] == ["duty@pboc-old.test"]
    assert readdressed["to_header_before"].encode() in composed, "the replaced header, verbatim"
    assert readdressed["sha256_before"] == hashlib.sha256(composed).hexdigest()
    assert delivered == {"at": delivered["at"], "event": "delivered", "to": ["newduty@cbrc.test"],
                         "sha256": hashlib.sha256(row.raw).hexdigest()}
    assert up.received[0][2].replace(b"\r\n", b"\n") == row.raw.replace(b"\r\n", b"\n"), "the outbox keeps what went"


def test_a_permanently_refused_address_is_kept_told_once_and_sent_once_corrected(tmp_path):
    with SmtpSink(refuse={"bad@cbrc.test"}) as sink:
        config = write_units(tmp_path, sink.port, ["bad@cbrc.test"])
        db = StateDB(config.db_url)
        store_hits(db, [("xyb", "http://127.0.0.1:9/a", "保本保息",
                         verdict([finding("guaranteed_return", "保本保息")]))], when=NOW)
        first = deliver(config, db, now=NOW)
        (row_id,) = first.refused
        row = outbox_row(db, row_id)
        assert (row.status, row.refused, row.delivered_to) == ("refused", {"bad@cbrc.test": "550 No such user"}, [])
        assert "refused permanently: bad@cbrc.test: 550 No such user" in row.last_error
        assert "routing.units.cbrc.emails" in row.last_error and row.sent_at is None
        attempts = row.attempts
        for hours in (1, 5, 30):  # not retried blindly; the operator's notice goes out once
            assert deliver(config, db, now=NOW + timedelta(hours=hours)).refused == {}
        assert outbox_row(db, row_id).attempts == attempts
        (notice,) = [m for m in sink.wait_for(1) if "ops@jiangjin.test" in str(m["To"])]
        assert "预警邮件被拒收" in notice["Subject"] and "bad@cbrc.test" in notice["Subject"]
        listed = json_lines(cli("alerts", "list", "--status", "refused", "--json",
                                "--config", str(config.source)).stdout)
        assert [(m["id"], m["refused"]) for m in listed] == [(row_id, {"bad@cbrc.test": "550 No such user"})]

        retry = cli("alerts", "send", "--retry-now", "--config", str(config.source))
        assert retry.returncode == 1 and "refused for good" in retry.stdout, "the address still refused"
        assert len(operator_alerts(db)) == 1, "told once"

        write_units(tmp_path, sink.port, ["duty@cbrc.test"])
        fixed = cli("alerts", "send", "--config", str(config.source))
        assert fixed.returncode == 0 and "1 sent" in fixed.stdout, fixed.stdout + fixed.stderr
        alerts_to_cbrc = [r for r in sink.received if r[1] != ["ops@jiangjin.test"]]
        assert [r[1] for r in alerts_to_cbrc] == [["duty@cbrc.test"]]
        row = outbox_row(db, row_id)
        assert (row.status, row.last_error, row.refused) == ("sent", None, None)
        assert [e["event"] for e in row.history] == ["refused", "refused", "readdressed", "delivered"]


def test_a_partly_refused_message_is_recorded_told_and_sent_to_the_corrected_address_only(tmp_path):
    with SmtpSink(refuse={"bad@cbrc.test"}) as sink:
        config = write_units(tmp_path, sink.port, ["bad@cbrc.test", "duty@cbrc.test"])
        db = StateDB(config.db_url)
        store_hits(db, [("xyb", "http://127.0.0.1:9/a", "保本保息",
                         verdict([finding("guaranteed_return", "保本保息")]))], when=NOW)
        (row_id,) = deliver(config, db, now=NOW).refused
        assert [r[1] for r in sink.received] == [["duty@cbrc.test"]], "the accepting mailbox got it"
        (listed,) = [m for m in json_lines(cli("alerts", "list", "--json", "--config", str(config.source)).stdout)
                     if m["id"] == row_id]
        assert listed["status"] == "refused" and listed["sent_at"] is not None
        assert listed["delivered_to"] == ["duty@cbrc.test"]
        assert listed["refused"] == {"bad@cbrc.test": "550 No such user"}
        assert "bad@cbrc.test: 550 No such user" in listed["last_error"]
        assert "already delivered to duty@cbrc.test" in listed["last_error"]
        table = cli("alerts", "list", "--config", str(config.source))
        assert "refused" in table.stdout and "bad@cbrc.test" in table.stdout
        deliver(config, db, now=NOW + timedelta(hours=1))
        assert len(operator_alerts(db)) == 1

        write_units(tmp_path, sink.port, ["good@cbrc.test", "duty@cbrc.test"])
        assert cli("alerts", "send", "--config", str(config.source)).returncode == 0
        to_cbrc = [r[1] for r in sink.received if r[1] != ["ops@jiangjin.test"]]
        assert to_cbrc == [["duty@cbrc.test"], ["good@cbrc.test"]], "duty@ is not sent it again"
        row = outbox_row(db, row_id)
        assert (row.status, row.delivered_to) == ("sent", ["duty@cbrc.test", "good@cbrc.test"])
        assert "good@cbrc.test" in str(message_from_bytes(row.raw, policy=policy.default)["To"])
