"""The integration harness itself: a private Postfix relaying to LMTP, and a private PostgreSQL.

Postfix tests put a real Postfix (tests/harness/postfix.py, configured from postfix/*.fragment)
in front of an aiosmtpd LMTP sink and check what mailhook relies on: delivery over LMTP,
4xx answers keep mail queued and retried, 5xx answers bounce, next-hops are tried in order.
The PostgreSQL test starts a cluster, queries it through SQLAlchemy + asyncpg and restarts it.
They skip only when the system packages are missing (not root, or scripts/system-deps.sh not
run); under CI (``CI=true``) a missing package fails the test instead.
"""

from __future__ import annotations

import os
import re
import smtplib
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.harness.ports import LOOPBACK, free_port
from tests.harness.postfix import (
    FRAGMENT_DIR,
    MAIN_CF_FRAGMENT,
    PostfixInstance,
    find_binary,
    read_main_cf,
)
from tests.harness.postgres import PostgresServer

IN_CI = os.environ.get("CI") == "true"
AGENT_DOMAIN = "agents.test"
SENDER = "alice@client.test"
WAIT = 20.0  # seconds to wait for anything that should happen in about one


def require(reason: str | None) -> None:
    """Skip when a system dependency is missing, but fail under CI where it must be present."""
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI must run scripts/system-deps.sh as root)")
    pytest.skip(reason)


# -- sinks: what stands in for mailhook's LMTP door and for the outside world ------------------


@dataclass(frozen=True)
class Delivery:
    """One DATA transaction as a sink saw it, with the reply the sink gave."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    reply: str


class RecordingHandler:
    """aiosmtpd handler that records every DATA and answers with ``reply`` (changeable)."""

    def __init__(self, reply: str = "250 2.0.0 Ok: stored") -> None:
        self.reply = reply
        self.attempts: list[Delivery] = []
        self._changed = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._changed:
            reply = self.reply
            self.attempts.append(
                Delivery(
                    mail_from=envelope.mail_from,
                    rcpt_tos=tuple(envelope.rcpt_tos),
                    content=bytes(envelope.original_content),
                    reply=reply,
                )
            )
            self._changed.notify_all()
        return reply

    @property
    def accepted(self) -> list[Delivery]:
        return [d for d in self.attempts if d.reply.startswith("250")]

    def wait_for(self, predicate: Callable[[RecordingHandler], bool], timeout: float = WAIT) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)


class LmtpController(Controller):
    """Threaded aiosmtpd server speaking LMTP (RFC 2033) instead of SMTP."""

    def factory(self) -> LMTP:
        return LMTP(self.handler, hostname="lmtp-sink.test")


class SmtpController(Controller):
    """Threaded aiosmtpd SMTP server (fixed hostname: no DNS lookup for the FQDN)."""

    def factory(self) -> SMTP:
        return SMTP(self.handler, hostname="relay-catch.test")


@pytest.fixture
def make_sink() -> Iterator[Callable[..., tuple[RecordingHandler, int]]]:
    """Factory of recording sinks on 127.0.0.1 (LMTP by default); all stopped at teardown."""
    controllers: list[Controller] = []

    def make(reply: str = "250 2.0.0 Ok: stored", *, lmtp: bool = True) -> tuple[RecordingHandler, int]:
        handler = RecordingHandler(reply)
        port = free_port()
        controller_class = LmtpController if lmtp else SmtpController
        controller = controller_class(handler, hostname=LOOPBACK, port=port)
        controller.start()
        controllers.append(controller)
        return handler, port

    yield make
    for controller in controllers:
        controller.stop()


@pytest.fixture
def postfix_factory(tmp_path: Path) -> Iterator[Callable[..., PostfixInstance]]:
    """Factory of started private Postfix instances; all stopped and removed at teardown."""
    require(PostfixInstance.unavailable_reason())
    instances: list[PostfixInstance] = []

    def make(
        lmtp_targets: list[tuple[str, int]],
        domains: tuple[str, ...] = (AGENT_DOMAIN,),
        relay_catch_port: int | None = None,
        **kwargs: Any,
    ) -> PostfixInstance:
        instance = PostfixInstance(
            tmp_path / f"postfix-{len(instances)}",
            lmtp_targets,
            list(domains),
            relay_catch_port,
            **kwargs,
        )
        instances.append(instance)
        instance.start()
        return instance

    yield make
    for instance in instances:
        instance.close()


def send(pf: PostfixInstance, rcpt: str, subject: str = "hello", sender: str = SENDER) -> str:
    """Submit one message to the instance over SMTP; return its Message-ID."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = rcpt
    msg["Subject"] = subject
    msg["Message-ID"] = message_id = f"<{uuid.uuid4().hex}@client.test>"
    msg.set_content(f"Body of {subject}.\n")
    # local_hostname: smtplib would otherwise look up this host's FQDN (slow without DNS).
    with smtplib.SMTP(LOOPBACK, pf.smtp_port, local_hostname="client.test", timeout=10) as smtp:
        smtp.send_message(msg, from_addr=sender, to_addrs=[rcpt])
    return message_id


def message_id_in(content: bytes) -> str:
    """The Message-ID header value of a raw message."""
    match = re.search(rb"^Message-ID: (<[^>]+>)", content, re.MULTILINE | re.IGNORECASE)
    assert match is not None, content
    return match[1].decode()


def queue_id_of(pf: PostfixInstance, message_id: str) -> str:
    """Postfix queue id of the message with ``message_id``, from the cleanup log line."""
    line = pf.wait_for_log(rf"cleanup\[\d+\]: \w+: message-id={re.escape(message_id)}", WAIT)
    assert line is not None, "\n".join(pf.log_lines())
    match = re.search(r": (\w+): message-id=", line)
    assert match is not None
    return match[1]


# -- Postfix ------------------------------------------------------------------------------------


@pytest.mark.postfix
def test_postfix_delivers_agent_mail_over_lmtp(
    make_sink: Callable[..., tuple[RecordingHandler, int]],
    postfix_factory: Callable[..., PostfixInstance],
) -> None:
    sink, port = make_sink()
    pf = postfix_factory([(LOOPBACK, port)])

    message_id = send(pf, f"bot@{AGENT_DOMAIN}", subject="first contact")

    assert sink.wait_for(lambda s: len(s.accepted) == 1), "\n".join(pf.log_lines())
    delivery = sink.accepted[0]
    assert delivery.mail_from == SENDER
    assert delivery.rcpt_tos == (f"bot@{AGENT_DOMAIN}",)
    assert f"Message-ID: {message_id}".encode() in delivery.content
    assert b"Subject: first contact" in delivery.content
    assert b"by mailhook-test.localdomain (Postfix)" in delivery.content  # passed through Postfix
    assert pf.wait_empty(WAIT)
    queue_id = queue_id_of(pf, message_id)
    sent = pf.wait_for_log(rf"lmtp\[\d+\]: {queue_id}: to=<bot@{AGENT_DOMAIN}>.*status=sent", WAIT)
    assert sent is not None
    assert f"relay={LOOPBACK}[{LOOPBACK}]:{port}" in sent
    assert "250 2.0.0 Ok: stored" in sent

    # Without relay_catch_port only the agent domains are accepted: no open relay.
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(pf, "someone@elsewhere.test")
    (code, reason) = refused.value.recipients["someone@elsewhere.test"]
    assert code == 554
    assert b"Relay access denied" in reason


@pytest.mark.postfix
def test_postfix_keeps_mail_queued_and_retries_after_lmtp_451(
    make_sink: Callable[..., tuple[RecordingHandler, int]],
    postfix_factory: Callable[..., PostfixInstance],
) -> None:
    sink, port = make_sink("451 4.3.0 Spool unavailable, try again")
    pf = postfix_factory([(LOOPBACK, port)])

    message_id = send(pf, f"bot@{AGENT_DOMAIN}", subject="patience")
    queue_id = queue_id_of(pf, message_id)

    assert sink.wait_for(lambda s: len(s.attempts) >= 1)
    deferred = pf.wait_for_log(rf"{queue_id}: to=<bot@{AGENT_DOMAIN}>.*status=deferred", WAIT)
    assert deferred is not None
    assert "451 4.3.0 Spool unavailable" in deferred
    assert queue_id in pf.queue_ids()  # not lost, not bounced: still in Postfix's queue
    # A second attempt comes by itself (minimal_backoff_time = 2s), still while we say 451.
    assert sink.wait_for(lambda s: len(s.attempts) >= 2), "\n".join(pf.log_lines())
    assert queue_id in pf.queue_ids()
    assert sink.accepted == []

    sink.reply = "250 2.0.0 Ok: stored"
    pf.flush()  # postqueue -f: no need to wait out the backoff
    assert sink.wait_for(lambda s: len(s.accepted) == 1, timeout=5), "\n".join(pf.log_lines())
    assert f"Message-ID: {message_id}".encode() in sink.accepted[0].content
    assert all(a.rcpt_tos == (f"bot@{AGENT_DOMAIN}",) for a in sink.attempts)
    assert pf.wait_empty(WAIT)
    assert pf.wait_for_log(rf"{queue_id}: to=<bot@{AGENT_DOMAIN}>.*status=sent", WAIT)


@pytest.mark.postfix
def test_postfix_bounces_on_lmtp_5xx_to_the_sender(
    make_sink: Callable[..., tuple[RecordingHandler, int]],
    postfix_factory: Callable[..., PostfixInstance],
) -> None:
    sink, port = make_sink("550 5.1.1 No such agent mailbox")
    outside, catch_port = make_sink(lmtp=False)
    pf = postfix_factory([(LOOPBACK, port)], relay_catch_port=catch_port)

    message_id = send(pf, f"nobody@{AGENT_DOMAIN}", subject="unknown")

    # The bounce (a DSN from the null sender) leaves through relayhost = the catch sink.
    assert outside.wait_for(lambda s: len(s.accepted) == 1), "\n".join(pf.log_lines())
    dsn = outside.accepted[0]
    assert dsn.mail_from == "<>"  # the null sender, as aiosmtpd reports it
    assert dsn.rcpt_tos == (SENDER,)
    assert b"550 5.1.1 No such agent mailbox" in dsn.content
    assert message_id.encode() in dsn.content
    assert len(sink.attempts) == 1  # 5xx is final: no retry
    assert pf.wait_empty(WAIT)
    queue_id = queue_id_of(pf, message_id)
    assert pf.wait_for_log(rf"{queue_id}: to=<nobody@{AGENT_DOMAIN}>.*status=bounced", WAIT)


@pytest.mark.postfix
def test_postfix_tries_lmtp_next_hops_in_order(
    make_sink: Callable[..., tuple[RecordingHandler, int]],
    postfix_factory: Callable[..., PostfixInstance],
) -> None:
    dead_port = free_port()  # nothing listens here: a mailhook node that is down
    first, first_port = make_sink()
    second, second_port = make_sink()
    pf = postfix_factory([(LOOPBACK, dead_port), (LOOPBACK, first_port), (LOOPBACK, second_port)])

    ids = {send(pf, f"bot{n}@{AGENT_DOMAIN}", subject=f"hop {n}") for n in range(3)}

    assert first.wait_for(lambda s: len(s.accepted) == 3), "\n".join(pf.log_lines())
    assert pf.wait_empty(WAIT)
    assert {message_id_in(d.content) for d in first.accepted} == ids
    assert second.attempts == []  # in order, not load-balanced
    assert pf.wait_for_log(rf"connect to {LOOPBACK}\[{LOOPBACK}\]:{dead_port}: Connection refused", WAIT)


@pytest.mark.postfix
def test_postfix_config_is_the_documented_fragment(postfix_factory: Callable[..., PostfixInstance]) -> None:
    pf = postfix_factory([(LOOPBACK, free_port())])
    documented = read_main_cf(MAIN_CF_FRAGMENT)
    site_specific = {"relay_domains", "transport_maps"}
    for name, value in documented.items():
        if name not in site_specific:
            assert pf.postconf(name) == value, name
    assert pf.postconf("lmtp_destination_recipient_limit") == "1"
    assert pf.postconf("lmtp_data_done_timeout") == "120s"
    assert pf.postconf("milter_default_action") == "tempfail"
    assert pf.postconf("inet_interfaces") == "loopback-only"
    # Every setting is one this Postfix knows (postconf warns about unknown/unused ones).
    postconf = subprocess.run(
        [str(find_binary("postconf")), "-c", str(pf.config_dir), "-n"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "warning" not in postconf.stderr, postconf.stderr
    lmtp_service = subprocess.run(
        [str(find_binary("postconf")), "-c", str(pf.config_dir), "-M", "lmtp/unix"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert lmtp_service == ["lmtp", "unix", "-", "-", "n", "-", "20", "lmtp"]
    # The documented transport map parses, and multi-hop lines use the syntax the harness uses.
    example = FRAGMENT_DIR / "transport.example"
    for key in ("agents.example.com", "assistant@example.com", "team.example.com"):
        looked_up = subprocess.run(
            [str(find_binary("postmap")), "-c", str(pf.config_dir), "-q", key, f"texthash:{example}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert looked_up.startswith("lmtp:inet:[127.0.0.1]:8024"), looked_up
        assert looked_up.count("inet:") == 1, looked_up


# -- PostgreSQL ---------------------------------------------------------------------------------


@pytest.mark.postgres
async def test_postgres_server_serves_sqlalchemy_and_survives_restarts(tmp_path: Path) -> None:
    require(PostgresServer.unavailable_reason())
    server = PostgresServer(tmp_path)
    try:
        server.start()
        server.create_database("harness")
        assert server.psql("SHOW listen_addresses") == LOOPBACK
        assert server.psql("SHOW fsync") == "off"
        assert server.psql("SHOW synchronous_commit") == "on"
        url = server.url("harness")
        assert url == f"postgresql+asyncpg://postgres@127.0.0.1:{server.port}/harness"

        async def rows(insert: str | None = None) -> list[str]:
            engine = create_async_engine(url)
            try:
                async with engine.begin() as conn:
                    assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
                    await conn.execute(text("CREATE TABLE IF NOT EXISTS t (v text)"))
                    if insert is not None:
                        await conn.execute(text("INSERT INTO t VALUES (:v)"), {"v": insert})
                    return list((await conn.execute(text("SELECT v FROM t ORDER BY v"))).scalars())
            finally:
                await engine.dispose()

        assert await rows("a-before-restart") == ["a-before-restart"]
        server.restart()  # pg_ctl stop -m fast, then start
        assert server.is_running()
        assert await rows("b-after-restart") == ["a-before-restart", "b-after-restart"]
        server.kill_and_restart()  # -m immediate: crash recovery must keep acknowledged commits
        assert await rows() == ["a-before-restart", "b-after-restart"]
        assert any("database system was interrupted" in line for line in server.log_lines())
    finally:
        server.close()
    assert not server.is_running()
