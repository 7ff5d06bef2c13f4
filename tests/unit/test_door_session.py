"""The LMTP/SMTP door's session shortcuts answer exactly what aiosmtpd's own code answers.

``FastSessionMixin`` replaces two per-session costs of aiosmtpd (mailhook/doors/lmtp.py): the
method lookup in ``SMTP.__init__`` and the MAIL/RCPT path parser. Both are checked against
aiosmtpd's originals, so an address that aiosmtpd accepts, refuses or splits differently would
fail here before it changed what the door says to Postfix.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st

from mailhook.doors.lmtp import LMTPDoor, SessionLimiter, SMTPDoor


class Handler:
    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "250 OK"


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def door(loop: asyncio.AbstractEventLoop) -> LMTPDoor:
    return LMTPDoor(Handler(), limiter=SessionLimiter(1), loop=loop, hostname="mx.test")


@pytest.fixture(scope="module")
def stock(loop: asyncio.AbstractEventLoop) -> LMTP:
    return LMTP(Handler(), loop=loop, hostname="mx.test")


@pytest.mark.parametrize(("door_class", "stock_class"), [(LMTPDoor, LMTP), (SMTPDoor, SMTP)])
def test_the_door_finds_the_same_commands_and_auth_mechanisms(
    loop: asyncio.AbstractEventLoop, door_class: type, stock_class: type
) -> None:
    ours = door_class(Handler(), limiter=SessionLimiter(1), loop=loop, hostname="mx.test")
    theirs = stock_class(Handler(), loop=loop, hostname="mx.test")
    assert sorted(ours._smtp_methods) == sorted(theirs._smtp_methods)
    assert "LHLO" in ours._smtp_methods or door_class is SMTPDoor
    assert sorted(ours._auth_methods) == sorted(theirs._auth_methods)
    assert sorted(ours._handle_hooks) == sorted(theirs._handle_hooks) == ["DATA"]
    # A second session of the class gets its own bound methods, not the first one's.
    again = door_class(Handler(), limiter=SessionLimiter(1), loop=loop, hostname="mx.test")
    assert again._smtp_methods["DATA"].__self__ is again


PATHS = [
    "",
    "<>",
    "<bot@agents.test>",
    "<bot@agents.test> SIZE=4096 BODY=8BITMIME",
    "  <bot@agents.test>  SIZE=1",
    "<Bot.Name+tag@Agents.Test>",
    "<first..last@agents.test>",
    "<.dot@agents.test>",
    "<bot@agents.test.>",
    "<bot@-agents.test>",
    "<bot@[127.0.0.1]>",
    '<"quoted local"@agents.test>',
    "<@relay.test:bot@agents.test>",
    "<bot@agents.test",
    "bot@agents.test",
    "bot@agents.test SIZE=1",
    "<bot>",
    "<bot@agents.test>SIZE=1",
    "<bot@agents.test>\tSIZE=1",
    "<bøt@agents.test>",
    "<bot@agénts.test>",
    "<bot(comment)@agents.test>",
    "<" + "a" * 64 + "@agents.test>",
    "<" + "a" * 65 + "@agents.test>",
    "<a@b@agents.test>",
    "<bot@agents.test> <second@agents.test>",
    "<bot@agents.test> (comment) SIZE=1",
    "<bot@agents.test>\n",
    "\n<bot@agents.test>",
]


@pytest.mark.parametrize("path", PATHS)
def test_paths_split_as_aiosmtpd_splits_them(door: LMTPDoor, stock: LMTP, path: str) -> None:
    assert door._getaddr(path) == stock._getaddr(path)


def test_a_local_part_over_a_set_limit_is_refused(loop: asyncio.AbstractEventLoop) -> None:
    door = LMTPDoor(Handler(), limiter=SessionLimiter(1), loop=loop, hostname="mx.test")
    door.local_part_limit = 64  # RFC 5321 4.5.3.1.1
    assert door._getaddr("<" + "a" * 65 + "@agents.test>") == (None, None)
    assert door._getaddr("<" + "a" * 64 + "@agents.test> SIZE=1") == ("a" * 64 + "@agents.test", "SIZE=1")


PATH_TEXT = st.text(alphabet=st.sampled_from(list('ab.Z9-+_@<>[]"() \t\n:,;\\=!#~é')), max_size=40)


def outcome(session: SMTP, path: str) -> object:
    """What ``_getaddr`` answers, or the type of what it raises (aiosmtpd's parser can raise)."""
    try:
        return session._getaddr(path)
    except Exception as exc:
        return type(exc)


PIECE = st.text(alphabet=st.sampled_from(list('aZ9.-+_"()[] é\t')), min_size=0, max_size=12)
#: Paths shaped like ``<local@domain> params``, where the shortcut decides: each piece may hold
#: what makes a path not plain (dots in odd places, quotes, comments, white space, UTF-8).
PATH_SHAPED = st.builds(
    lambda lead, local, domain, tail: f"{lead}<{local}@{domain}>{tail}",
    st.sampled_from(["", " ", "\t", " \t "]),
    st.one_of(st.from_regex(r"[a-z0-9+_-]{1,8}(\.[a-zA-Z0-9]{1,5}){0,2}", fullmatch=True), PIECE),
    st.one_of(st.from_regex(r"[a-z0-9-]{1,8}(\.[a-zA-Z0-9-]{1,6}){0,2}", fullmatch=True), PIECE),
    st.one_of(st.just(""), PIECE, PIECE.map(lambda p: " SIZE=" + p)),
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(PATH_TEXT, PATH_SHAPED))
def test_any_path_text_splits_as_aiosmtpd_splits_it(path: str) -> None:
    loop = asyncio.new_event_loop()
    try:
        ours = LMTPDoor(Handler(), limiter=SessionLimiter(1), loop=loop, hostname="mx.test")
        theirs = LMTP(Handler(), loop=loop, hostname="mx.test")
        assert outcome(ours, path) == outcome(theirs, path)
    finally:
        loop.close()
