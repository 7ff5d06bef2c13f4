"""Fuzzing with hypothesis: the message logic before the model, and the LMTP door's session.

1. Mutations of the malformed corpus (bytes flipped, cut, spliced, lines duplicated) go through
   everything the pipeline does to a message before the model: parse, loop rules, threat
   scoring, reply-all and threading headers. The only exception allowed is ``MalformedMessage``
   (the message is then skipped); header values never carry NUL or line breaks into a reply.
2. Random LMTP sessions (valid and garbage command lines, data phases with random bodies)
   against the running door: every reply is a well-formed RFC 5321 reply, the session never
   hangs, an internal error (the door's ``451 4.3.0 Temporary failure`` catch-all, or
   aiosmtpd's ``500 Error: (...)``) never happens, and every ``250`` after DATA is a job that ends
   accounted for.

``max_examples`` is modest so the whole file runs in seconds; ``database=None`` keeps runs
independent of a local example database.
"""

from __future__ import annotations

import asyncio
import re
import socket
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailhook.errors import MalformedMessage
from mailhook.guard.inbound import score_inbound
from mailhook.mail.loop_rules import auto_reply_refusal
from mailhook.mail.parse import ParsedMessage, message_id_of, parse_message
from mailhook.mail.reply_all import reply_recipients
from mailhook.mail.thread import reply_subject, threading_headers
from mailhook.services import Services
from tests.reliability.accounting import FAST_RETRIES, SQLITE_ONLY, accounted_for
from tests.reliability.corpus import corpus

SEEDS = [raw for raw in corpus().values() if len(raw) < 20_000]
REPLY_LINE = re.compile(rb"^[2-5][0-9][0-9][ -]")

# --- 1. the message logic --------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A corpus message with a few random edits."""
    raw = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        if not raw:
            break
        at = draw(st.integers(0, len(raw) - 1))
        edit = draw(st.sampled_from(["flip", "cut", "insert", "dup_line", "truncate"]))
        if edit == "flip":
            raw[at] = draw(st.integers(0, 255))
        elif edit == "cut":
            del raw[at : at + draw(st.integers(1, 200))]
        elif edit == "insert":
            fragment = draw(
                st.one_of(
                    st.binary(max_size=30),
                    st.sampled_from(
                        [b"\r\n\r\n", b"\r\n--b0\r\n", b"=?utf-8?b?", b"\x00", b"\r\n ", b"Content-Type: "]
                    ),
                )
            )
            raw[at:at] = fragment
        elif edit == "dup_line":
            end = raw.find(b"\n", at)
            raw[at:at] = raw[at : end + 1 if end >= 0 else len(raw)]
        else:
            del raw[at:]
    return bytes(raw)


def pre_model_steps(message: ParsedMessage) -> None:
    """What the pipeline computes from a parsed message before any model call."""
    auto_reply_refusal(message, envelope_sender="sender@example.org", mailbox_address="bot@agents.test")
    score_inbound(message)
    recipients = reply_recipients(message, mailbox_address="bot@agents.test")
    in_reply_to, references = threading_headers(message)
    for value in (reply_subject(message.subject), in_reply_to or "", *references, *recipients.to):
        assert not set(value) & {"\x00", "\r", "\n"}, "a header value of the reply must be one clean line"


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_corpus_never_breaks_the_pre_model_steps(raw: bytes) -> None:
    message_id_of(raw)
    try:
        message = parse_message(raw)
    except MalformedMessage:
        return
    pre_model_steps(message)


# --- 2. the LMTP door ------------------------------------------------------------------------

_VERBS = ["LHLO", "HELO", "EHLO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "VRFY", "HELP", "AUTH", "BDAT"]
_COMMANDS = st.one_of(
    st.just(b"LHLO fuzz.example"),
    st.just(b"MAIL FROM:<fuzz@example.org>"),
    st.sampled_from(
        [
            b"MAIL FROM:<>",
            b"MAIL FROM:<fuzz@example.org> SIZE=99999999999999999999",
            b"MAIL FROM:<fuzz@example.org> BODY=8BITMIME SMTPUTF8",
            b"MAIL FROM:fuzz@example.org",
            b"RCPT TO:<bot@agents.test>",
            b"RCPT TO:<BOT@AGENTS.TEST>",
            b"RCPT TO:<nobody@agents.test>",
            b"RCPT TO:<\xc3\xa9t\xc3\xa9@agents.test>",
            b"RCPT TO:<bot@agents.test> NOTIFY=NEVER",
            b"RCPT TO:<" + b"a" * 400 + b"@agents.test>",
            b"RCPT TO:<>",
            b"STARTTLS",
            b"QUIT_NOT",
            b"",
        ]
    ),
    st.builds(
        lambda verb, arg: verb.encode() + b" " + arg,
        st.sampled_from(_VERBS),
        st.binary(max_size=60).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    ),
    st.binary(min_size=1, max_size=80).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    st.just(b"X" * 1500),  # longer than the 1000-octet line limit (RFC 5321 4.5.3.1.6)
)
_BODIES = st.one_of(
    st.sampled_from(SEEDS),
    st.binary(max_size=2000),
    st.lists(
        st.sampled_from([b".", b"..", b". ", b"From: x@y", b"", b"\x00", b"\xff" * 10]), max_size=10
    ).map(b"\r\n".join),
)


class SessionClosed(Exception):
    """The server said 221 (a fuzzed line that happened to be QUIT)."""


class DoorSession:
    """A raw LMTP session that reads exactly the replies the protocol promises."""

    def __init__(self, port: int) -> None:
        # Bounded: a server that stops answering fails the test instead of hanging it.
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.file = self.sock.makefile("rb")
        self.replies: list[bytes] = []
        self.accepted_rcpts = 0

    def reply(self) -> bytes:
        lines = []
        while True:
            line = self.file.readline()  # a hang is a socket timeout: the test fails
            assert line.endswith(b"\r\n"), f"reply line not CRLF-terminated: {line!r}"
            assert REPLY_LINE.match(line), f"not an RFC 5321 reply: {line!r}"
            lines.append(line)
            if line[3:4] == b" ":
                reply = b"".join(lines)
                self.replies.append(reply)
                return reply

    def command(self, line: bytes) -> bytes:
        self.sock.sendall(line + b"\r\n")
        reply = self.reply()
        if reply.startswith(b"354"):  # a fuzzed "DATA ..." line the server took as DATA
            self.sock.sendall(b".\r\n")
            for _ in range(max(1, self.accepted_rcpts)):
                self.reply()
            self.accepted_rcpts = 0
            return reply
        if reply.startswith(b"221"):
            raise SessionClosed
        if line.upper().startswith((b"RSET", b"MAIL")) and reply.startswith(b"250"):
            self.accepted_rcpts = 0
        elif line.upper().startswith(b"RCPT") and reply.startswith(b"250"):
            self.accepted_rcpts += 1
        return reply

    def data(self, body: bytes) -> list[bytes]:
        self.sock.sendall(b"DATA\r\n")
        if not self.reply().startswith(b"354"):
            return []
        lines = body.replace(b"\r\n", b"\n").split(b"\n")
        stuffed = b"\r\n".join(b"." + ln if ln.startswith(b".") else ln for ln in lines)
        self.sock.sendall(stuffed + b"\r\n.\r\n")
        answers = [self.reply() for _ in range(max(1, self.accepted_rcpts))]
        self.accepted_rcpts = 0  # RFC 2033: the transaction is over either way
        return answers

    def close(self) -> None:
        self.sock.sendall(b"QUIT\r\n")
        assert self.reply().startswith(b"221")

    def drop(self) -> None:
        self.file.close()
        self.sock.close()


def run_session(port: int, script: list[tuple[str, bytes]]) -> tuple[list[bytes], int]:
    """Play ``script``; returns all replies and how many DATA replies created a new job."""
    session = DoorSession(port)
    queued = 0
    replies: list[bytes] = []
    try:
        assert session.reply().startswith(b"220")
        for kind, payload in script:
            try:
                if kind == "data":
                    answers = session.data(payload)
                    queued += sum(a.startswith(b"250") and b"Already" not in a for a in answers)
                else:
                    session.command(payload)
            except SessionClosed:
                replies += session.replies
                session.drop()
                session = DoorSession(port)
                session.reply()
        # Still alive and in sync after the noise.
        session.command(b"RSET")
        session.command(b"LHLO fuzz.example")
        assert session.command(b"NOOP").startswith(b"250")
        session.close()
    finally:
        session.drop()
    return replies + session.replies, queued


_VALID_START = [("cmd", b"LHLO fuzz.example"), ("cmd", b"MAIL FROM:<fuzz@example.org>")]
_SCRIPT = st.builds(
    lambda start, steps: ([*_VALID_START, ("cmd", b"RCPT TO:<bot@agents.test>")] if start else []) + steps,
    st.booleans(),
    st.lists(
        st.one_of(st.tuples(st.just("cmd"), _COMMANDS), st.tuples(st.just("data"), _BODIES)), max_size=12
    ),
)


# The door runs in this process while Hypothesis draws in a worker thread. The standard library
# draws from the global ``random`` on the door's side (``email.utils.make_msgid``, MIME boundaries
# in ``email.generator``), and Hypothesis takes a changed global state during a draw for a strategy
# that uses ``random``. Ours don't: the warning is about the other thread, so it is not an error.
@SQLITE_ONLY
@pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies:hypothesis.errors.HypothesisDeprecationWarning"
)
@pytest.mark.parametrize("extra_env", [FAST_RETRIES])
async def test_random_lmtp_sessions_get_valid_replies_and_lose_nothing(
    runtime: Any, services: Services
) -> None:
    port = services.settings.lmtp.port
    totals = {"queued": 0, "sessions": 0}

    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(_SCRIPT)
    def fuzz(script: list[tuple[str, bytes]]) -> None:
        replies, queued = run_session(port, script)
        # An unhandled exception would surface as aiosmtpd's "500 Error: (ExcName) ..." or the
        # door's "451 4.3.0 Temporary failure" catch-all; a busy SQLite may answer "451 4.3.0
        # Mail system temporarily unavailable" (retry later), which is not a bug.
        internal = [r for r in replies if b"Error: (" in r or r.startswith(b"451 4.3.0 Temporary failure")]
        assert not internal, f"internal error answered: {internal}"
        assert not [r for r in replies if r.startswith(b"421")], "never refused for load here"
        totals["queued"] += queued
        totals["sessions"] += 1

    await asyncio.to_thread(fuzz)
    assert totals["sessions"] >= 30
    assert totals["queued"] > 0, "some sessions delivered mail"
    await accounted_for(services, totals["queued"], timeout=60)
