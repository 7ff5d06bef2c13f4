"""The milter session state machine: negotiation, collection with caps, verdict replies, failures.

The checker here is a stand-in that returns a fixed verdict (the real one needs a database;
tests/integration/milter/test_milter_checks.py runs it).
"""

from __future__ import annotations

import struct
from collections.abc import Coroutine
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailhook.doors.milter import protocol as p
from mailhook.doors.milter.session import MilterSession
from mailhook.doors.milter.verdict import Collected, Verdict

EVERY_ACTION = 0x1FF
EVERY_STEP = 0x1FFFFF


class FixedChecker:
    def __init__(self, verdict: Verdict | None = None, *, fail: bool = False) -> None:
        self.verdict_to_give = verdict or Verdict()
        self.fail = fail
        self.seen: list[Collected] = []

    async def verdict(self, message: Collected) -> Verdict:
        self.seen.append(message)
        if self.fail:
            raise RuntimeError("database is down")
        return self.verdict_to_give


def run(coroutine: Coroutine[Any, Any, list[bytes]]) -> list[bytes]:
    """Drive a coroutine that never suspends (the fixed checker awaits nothing)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return list(done.value)
    raise AssertionError("the session suspended")


def send(session: MilterSession, command: bytes, data: bytes = b"") -> list[bytes]:
    return run(session.handle(p.Packet(command, data)))


def negotiated(checker: FixedChecker, *, actions: int = EVERY_ACTION, **options: Any) -> MilterSession:
    session = MilterSession(checker, max_message_bytes=options.pop("max_message_bytes", 10_000), **options)
    [reply] = send(session, p.SMFIC_OPTNEG, struct.pack(">III", 6, actions, EVERY_STEP))
    assert reply == p.optneg_reply(6, actions & 0x31, 0x300)
    return session


def deliver(session: MilterSession, body: bytes = b"hello\r\n") -> list[bytes]:
    send(session, p.SMFIC_MACRO, b"Mi\0Q1D2\0")
    for command, data in [
        (p.SMFIC_CONNECT, b"client.test\x004\x00\x19127.0.0.1\0"),
        (p.SMFIC_HELO, b"client.test\0"),
        (p.SMFIC_MAIL, b"<alice@example.org>\0SIZE=12\0"),
        (p.SMFIC_RCPT, b"<bot@agents.test>\0"),
        (p.SMFIC_RCPT, b"<hidden@example.org>\0"),
        (p.SMFIC_HEADER, b"From\0alice@example.org\0"),
        (p.SMFIC_HEADER, b"X-Mailhook-Score\0-100\0"),
        (p.SMFIC_EOH, b""),
        (p.SMFIC_BODY, body),
    ]:
        assert send(session, command, data) == [p.CONTINUE]
    return send(session, p.SMFIC_BODYEOB)


def test_negotiation_asks_only_for_what_it_uses() -> None:
    session = negotiated(FixedChecker())
    assert session.actions == p.SMFIF_ADDHDRS | p.SMFIF_CHGHDRS | p.SMFIF_QUARANTINE


def test_older_versions_are_answered_with_their_version_and_v1_is_refused() -> None:
    session = MilterSession(FixedChecker(), max_message_bytes=100)
    [reply] = send(session, p.SMFIC_OPTNEG, struct.pack(">III", 2, 0x3F, 0x7F))
    assert reply == p.optneg_reply(2, 0x31, 0)
    with pytest.raises(p.ProtocolError):
        send(
            MilterSession(FixedChecker(), max_message_bytes=100), p.SMFIC_OPTNEG, struct.pack(">III", 1, 0, 0)
        )


def test_commands_before_negotiation_are_a_protocol_error() -> None:
    with pytest.raises(p.ProtocolError):
        send(MilterSession(FixedChecker(), max_message_bytes=100), p.SMFIC_HELO, b"x\0")


def test_the_checker_sees_the_envelope_and_message_and_its_verdict_is_sent() -> None:
    verdict = Verdict(delete=((b"X-Mailhook-Score", 1),), add=(("X-Mailhook-Score", "5"),), quarantine="why")
    checker = FixedChecker(verdict)
    replies = deliver(negotiated(checker))
    assert replies == [
        p.change_header(1, b"X-Mailhook-Score"),
        p.add_header("X-Mailhook-Score", "5"),
        p.quarantine("why"),
        p.CONTINUE,
    ]
    [seen] = checker.seen
    assert seen.sender == "alice@example.org"
    assert seen.recipients == ["bot@agents.test", "hidden@example.org"], "envelope-only (Bcc) kept"
    assert seen.queue_id == "Q1D2" and not seen.truncated
    assert seen.raw() == b"From: alice@example.org\r\nX-Mailhook-Score: -100\r\n\r\nhello\r\n"


def test_a_refusal_is_one_reply_code_and_nothing_else() -> None:
    checker = FixedChecker(
        Verdict(delete=((b"X-A", 1),), add=(("X-B", "1"),), reject="mailhook outbound guard: x")
    )
    assert deliver(negotiated(checker)) == [p.reply_code("550", "5.7.1", "mailhook outbound guard: x")]


def test_modifications_the_mta_did_not_grant_are_not_sent() -> None:
    checker = FixedChecker(Verdict(delete=((b"X-A", 1),), add=(("X-B", "1"),), quarantine="why"))
    replies = deliver(negotiated(checker, actions=p.SMFIF_ADDHDRS))
    assert replies == [p.add_header("X-B", "1"), p.CONTINUE]


def test_body_beyond_the_cap_is_not_kept_and_the_message_is_marked_truncated() -> None:
    checker = FixedChecker()
    session = negotiated(checker, max_message_bytes=1000)
    deliver(session, body=b"x" * 5000)
    [seen] = checker.seen
    assert seen.truncated and seen.size > 5000
    assert len(seen.raw()) <= 1000 + 2 * len(seen.headers) + 2


@pytest.mark.parametrize(("on_error", "reply"), [("continue", p.CONTINUE), ("tempfail", p.TEMPFAIL)])
def test_a_failing_checker_gets_the_configured_reply(on_error: Any, reply: bytes) -> None:
    session = negotiated(FixedChecker(fail=True), on_error=on_error)
    assert deliver(session) == [reply]
    assert deliver(session) == [reply], "the next message on the connection is handled too"


def test_abort_forgets_the_message_and_quit_closes() -> None:
    checker = FixedChecker()
    session = negotiated(checker)
    send(session, p.SMFIC_MAIL, b"<a@b>\0")
    send(session, p.SMFIC_BODY, b"secret")
    assert send(session, p.SMFIC_ABORT) == []
    assert send(session, p.SMFIC_BODYEOB) == [p.CONTINUE]
    assert checker.seen[0].sender == "" and checker.seen[0].body == b""
    assert send(session, p.SMFIC_QUIT_NC) == [] and not session.closed
    assert send(session, p.SMFIC_QUIT) == [] and session.closed


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(sorted(p.COMMANDS - {p.SMFIC_OPTNEG})), st.binary(max_size=200)),
        max_size=40,
    )
)
def test_any_command_sequence_is_answered_or_refused_never_crashes(
    packets: list[tuple[bytes, bytes]],
) -> None:
    checker = FixedChecker(Verdict(add=(("X-A", "1"),)))
    session = negotiated(checker, max_message_bytes=300)
    for command, data in packets:
        try:
            replies = send(session, command, data)
        except p.ProtocolError:
            return  # the server closes the connection
        for reply in replies:
            assert reply[4:5] in {b"c", b"t", b"h", b"m", b"q", b"y"}
        assert len(session.message.body) <= 300
        if session.closed:
            return
