"""The IMAP door against a real Dovecot: IDLE pickup, polling, restarts, login failures, hosts
that lead to private addresses."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select

from mailhook.doors.imap import ImapDoor
from mailhook.doors.imap.state import HOST_REFUSED, LOGIN_FAILED
from mailhook.services import Services
from mailhook.store.models import ImapState, Mailbox
from tests.harness.dovecot import DovecotServer

from .conftest import ADDRESS, PASSWORD, add_external, make_mail, spooled, until

Doors = Callable[..., Awaitable[ImapDoor]]
#: Tests whose database work is the same on both backends run once; the cursor, lease and status
#: tests run on SQLite and PostgreSQL.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def _state(services: Services, mailbox_id: int) -> ImapState:
    async with services.sessions() as session:
        state = await session.get(ImapState, mailbox_id)
    assert state is not None
    return state


async def _mailbox(services: Services, mailbox_id: int) -> Mailbox:
    async with services.sessions() as session:
        mailbox = await session.scalar(select(Mailbox).where(Mailbox.id == mailbox_id))
    assert mailbox is not None
    return mailbox


async def _jobs_with(services: Services, count: int) -> bool:
    return len(await spooled(services)) >= count


async def test_idle_pickup_reaches_the_spool_fast(
    services: Services, dovecot: DovecotServer, door_factory: Doors
) -> None:
    mailbox_id = await add_external(services, dovecot)
    door = await door_factory()
    # The first sync sets the cursor; mail arriving after that is pushed by IDLE.
    await until(lambda: _cursor_set(services, mailbox_id), what="first sync")
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await asyncio.to_thread(dovecot.deliver, ADDRESS, make_mail())
    [job] = await until(lambda: spooled(services), what="the message in the spool")
    latency = time.monotonic() - started
    assert job.source == "imap" and job.recipient == ADDRESS and job.envelope_sender == "alice@customer.test"
    assert latency < 3, f"IDLE pickup took {latency:.2f}s"
    state = await until(lambda: _advanced(services, mailbox_id, 1), what="cursor after the commit")
    assert state.last_uid == 1
    assert door.watching == {mailbox_id}
    # PEEK: the owner still sees the message as unread in their own client.
    [(flags, _)] = await asyncio.to_thread(dovecot.messages, ADDRESS)
    assert b"\\Seen" not in flags


@SQLITE_ONLY
async def test_idle_is_reissued_on_the_same_connection(
    services: Services, dovecot: DovecotServer, door_factory: Doors
) -> None:
    mailbox_id = await add_external(services, dovecot)
    await door_factory(idle_renew_seconds=1.0)
    await until(lambda: _cursor_set(services, mailbox_id), what="first sync")
    await asyncio.sleep(3.5)  # three IDLE renewals (DONE, then IDLE again: RFC 2177)
    assert dovecot.log_file.read_text().count(f"Login: user=<{ADDRESS}>") == 1, "no reconnect"
    started = time.monotonic()
    await asyncio.to_thread(dovecot.deliver, ADDRESS, make_mail())
    await until(lambda: _jobs_with(services, 1), what="mail after the renewals")
    assert time.monotonic() - started < 3


async def _cursor_set(services: Services, mailbox_id: int) -> bool:
    async with services.sessions() as session:
        state = await session.get(ImapState, mailbox_id)
    return state is not None and state.uidvalidity is not None


async def _cursor_row(services: Services, mailbox_id: int) -> bool:
    async with services.sessions() as session:
        return await session.get(ImapState, mailbox_id) is not None


async def _advanced(services: Services, mailbox_id: int, uid: int) -> ImapState | None:
    async with services.sessions() as session:
        state = await session.get(ImapState, mailbox_id)
    return state if state is not None and state.last_uid >= uid else None


@SQLITE_ONLY
async def test_poll_mode_fetches_at_the_interval(
    services: Services, dovecot: DovecotServer, door_factory: Doors
) -> None:
    # poll_interval_minutes=1 with a poll unit of 0.5 s: a poll every half second, no IDLE.
    mailbox_id = await add_external(services, dovecot, poll_interval_minutes=1)
    await door_factory()
    await until(lambda: _cursor_set(services, mailbox_id), what="first sync")
    for n in range(3):
        await asyncio.to_thread(dovecot.deliver, ADDRESS, make_mail(f"question {n}"))
    await until(lambda: _jobs_with(services, 3), what="three polled messages")
    # The cursor moves right after the spool commit, never before it.
    await until(lambda: _advanced(services, mailbox_id, 3), what="cursor at the third message")
    assert (await _state(services, mailbox_id)).last_uid == 3


@SQLITE_ONLY
@pytest.mark.parametrize("dovecot", [False], indirect=True)
async def test_push_mailbox_on_a_server_without_idle_falls_back_to_polling(
    services: Services, dovecot: DovecotServer, door_factory: Doors
) -> None:
    mailbox_id = await add_external(services, dovecot, poll_interval_minutes=0)
    await door_factory()
    await until(lambda: _cursor_set(services, mailbox_id), what="first sync")
    await asyncio.to_thread(dovecot.deliver, ADDRESS, make_mail())
    await until(lambda: _jobs_with(services, 1), what="the polled message")
    assert (await _state(services, mailbox_id)).failures == 0, "no IDLE attempted, no error"


@SQLITE_ONLY
async def test_oversized_and_malformed_messages(
    services: Services, dovecot: DovecotServer, door_factory: Doors
) -> None:
    mailbox_id = await add_external(services, dovecot)
    await door_factory(max_message_bytes=4000)
    await until(lambda: _cursor_set(services, mailbox_id), what="first sync")
    huge = make_mail("huge").replace(b"Hello,", b"Hello, " + b"x" * 8000)
    await asyncio.to_thread(dovecot.deliver, ADDRESS, huge)
    garbage = b"\x00\xff not a header at all\r\n\r\n\xfe\xfe body"
    await asyncio.to_thread(dovecot.deliver, ADDRESS, garbage)
    await asyncio.to_thread(dovecot.deliver, ADDRESS, make_mail("small", Return_Path="<>"))
    await until(lambda: _advanced(services, mailbox_id, 3), what="cursor past all three")
    jobs = await until(lambda: _jobs_of(services, 2), what="two jobs")
    assert [j.size for j in jobs] != [len(huge)], "the oversized message is skipped, not spooled"
    assert all(j.size < 4000 for j in jobs)
    assert {j.envelope_sender for j in jobs} == {""}, "garbage has no sender; Return-Path <> is a bounce"


async def _jobs_of(services: Services, count: int) -> list[object] | None:
    jobs = await spooled(services)
    return jobs if len(jobs) >= count else None


@SQLITE_ONLY
async def test_unread_mail_of_the_last_days_is_fetched_once_on_first_connection(
    services: Services, dovecot: DovecotServer, door_factory: Doors
) -> None:
    await asyncio.to_thread(dovecot.deliver, ADDRESS, make_mail("already read"), "INBOX", "\\Seen")
    await asyncio.to_thread(dovecot.deliver, ADDRESS, make_mail("waiting unread"))
    mailbox_id = await add_external(services, dovecot)
    await door_factory()
    [job] = await until(lambda: spooled(services), what="the unread message")
    await until(lambda: _advanced(services, mailbox_id, 2), what="cursor at the top")
    assert job.source == "imap"
    await asyncio.sleep(0.5)
    assert len(await spooled(services)) == 1, "the read message is history, not new mail"


async def test_restart_with_mail_arriving_while_down_skips_and_doubles_nothing(
    services: Services, dovecot: DovecotServer, door_factory: Doors
) -> None:
    mailbox_id = await add_external(services, dovecot)
    first = await door_factory()
    await until(lambda: _cursor_set(services, mailbox_id), what="first sync")
    await asyncio.to_thread(dovecot.deliver, ADDRESS, make_mail("before"))
    await until(lambda: _jobs_with(services, 1), what="the first message")
    await until(lambda: _advanced(services, mailbox_id, 1), what="cursor 1")
    await first.stop()
    for n in range(3):
        await asyncio.to_thread(dovecot.deliver, ADDRESS, make_mail(f"while down {n}"))
    # A crash after the spool commit and before the cursor update: the cursor lags behind.
    async with services.sessions() as session, session.begin():
        state = await session.get(ImapState, mailbox_id)
        assert state is not None
        state.last_uid = 0
    await door_factory()
    await until(lambda: _advanced(services, mailbox_id, 4), what="cursor 4")
    await asyncio.sleep(0.3)
    jobs = await spooled(services)
    assert len(jobs) == 4, "each message exactly once"
    assert len({j.message_id_hash for j in jobs}) == 4


@SQLITE_ONLY
async def test_uidvalidity_change_resets_the_cursor_without_doubles(
    services: Services, dovecot: DovecotServer, door_factory: Doors
) -> None:
    mailbox_id = await add_external(services, dovecot)
    await door_factory()
    await until(lambda: _cursor_set(services, mailbox_id), what="first sync")
    await asyncio.to_thread(dovecot.deliver, ADDRESS, make_mail("one"))
    await until(lambda: _jobs_with(services, 1), what="message one")
    # The server renumbered the folder: our stored UIDVALIDITY no longer matches.
    async with services.sessions() as session, session.begin():
        state = await session.get(ImapState, mailbox_id)
        assert state is not None
        state.uidvalidity = 12345
        state.last_uid = 99
    await asyncio.to_thread(dovecot.deliver, ADDRESS, make_mail("two"))
    await until(lambda: _jobs_with(services, 2), what="message two")

    async def renumbered() -> bool:
        state = await _state(services, mailbox_id)
        return state.uidvalidity != 12345 and state.last_uid == 2

    await until(renumbered, what="cursor under the real UIDVALIDITY")
    await asyncio.sleep(0.5)
    assert len(await spooled(services)) == 2, "message one was seen again but not spooled twice"


async def test_wrong_password_pauses_then_a_fixed_password_wakes_the_mailbox(
    services: Services, dovecot: DovecotServer, door_factory: Doors
) -> None:
    mailbox_id = await add_external(services, dovecot, password="wrong")
    await door_factory()

    async def paused() -> Mailbox | None:
        mailbox = await _mailbox(services, mailbox_id)
        return mailbox if mailbox.status == "inactive" else None

    mailbox = await until(paused, what="the mailbox paused")
    assert mailbox.status_reason.startswith(LOGIN_FAILED)
    assert "wrong" not in mailbox.status_reason, "the reason never quotes the password"
    state = await _state(services, mailbox_id)
    assert state.failures >= 1 and "login refused" in state.last_error
    async with services.sessions() as session, session.begin():
        row = await session.get(Mailbox, mailbox_id)
        assert row is not None
        row.password_sealed = services.sealer.seal(PASSWORD.encode())

    async def active() -> bool:
        return (await _mailbox(services, mailbox_id)).status == "active"

    await until(active, what="the mailbox active again")
    assert (await _mailbox(services, mailbox_id)).status_reason == ""
    await until(lambda: _cursor_set(services, mailbox_id), what="a sync after the fix")


@SQLITE_ONLY
async def test_a_host_resolving_to_loopback_is_refused_and_pauses_the_mailbox_with_the_reason(
    services: Services, dovecot: DovecotServer, door_factory: Doors
) -> None:
    # "localhost" leads to the test Dovecot on 127.0.0.1, but only "127.0.0.1" is allow-listed:
    # an owner must not be able to point mailhook at the operator's own network by name.
    mailbox_id = await add_external(services, dovecot, imap_host="localhost")
    door = await door_factory()

    async def paused() -> Mailbox | None:
        mailbox = await _mailbox(services, mailbox_id)
        return mailbox if mailbox.status == "inactive" else None

    mailbox = await until(paused, what="the mailbox paused")
    assert mailbox.status_reason.startswith(f"{HOST_REFUSED}: localhost resolves to ")
    assert "a loopback address" in mailbox.status_reason
    assert "imap.allow_hosts" in mailbox.status_reason, "the reason says how an operator allows it"
    state = await _state(services, mailbox_id)
    assert state.failures >= 1 and state.last_error.startswith("host refused: ")
    assert door.watching == {mailbox_id}, "the watcher backs off and lives on; it did not crash"
    # The harness's readiness check connects once without TLS; a client of ours would log in.
    sessions = [
        line
        for line in dovecot.log_file.read_text().splitlines()
        if "imap-login" in line and "before auth was ready" not in line
    ]
    assert sessions == [], "refused before any connection"

    # The owner corrects the host (one the operator allowed): the next login wakes the mailbox.
    async with services.sessions() as session, session.begin():
        row = await session.get(Mailbox, mailbox_id)
        assert row is not None
        row.imap_host = "127.0.0.1"

    async def active() -> bool:
        return (await _mailbox(services, mailbox_id)).status == "active"

    await until(active, what="the mailbox active again")
    await until(lambda: _cursor_set(services, mailbox_id), what="a sync after the fix")


@SQLITE_ONLY
async def test_a_mailbox_the_owner_paused_is_read_but_not_woken(
    services: Services, dovecot: DovecotServer, door_factory: Doors
) -> None:
    # Like the LMTP door: mail of a paused mailbox is taken in (the pipeline skips it), so
    # resuming does not answer everything that arrived meanwhile.
    mailbox_id = await add_external(services, dovecot)
    async with services.sessions() as session, session.begin():
        row = await session.get(Mailbox, mailbox_id)
        assert row is not None
        row.status, row.status_reason = "inactive", "on holiday"
    door = await door_factory()
    await until(lambda: _cursor_set(services, mailbox_id), what="first sync")
    await asyncio.to_thread(dovecot.deliver, ADDRESS, make_mail())
    await until(lambda: _jobs_with(services, 1), what="the message taken in")
    assert door.watching == {mailbox_id}
    mailbox = await _mailbox(services, mailbox_id)
    assert (mailbox.status, mailbox.status_reason) == ("inactive", "on holiday"), "a login never resumes it"


async def test_a_deleted_mailbox_is_no_longer_watched(
    services: Services, dovecot: DovecotServer, door_factory: Doors
) -> None:
    mailbox_id = await add_external(services, dovecot)
    door = await door_factory()
    await until(lambda: _is_watching(door, mailbox_id), what="watching")
    async with services.sessions() as session, session.begin():
        row = await session.get(Mailbox, mailbox_id)
        assert row is not None
        row.status, row.password_sealed, row.login = "deleted", None, ""
    await until(lambda: _not_watching(door, mailbox_id), what="the watcher stopped")
    # The lease is given back right after the watcher stops (same tick).
    await until(lambda: _lease_given_back(door, mailbox_id), what="its lease given back")
    assert mailbox_id not in door.watching


async def _not_watching(door: ImapDoor, mailbox_id: int) -> bool:
    return mailbox_id not in door.watching


async def _lease_given_back(door: ImapDoor, mailbox_id: int) -> bool:
    return await door.leases.owner_of(mailbox_id) is None


@SQLITE_ONLY
async def test_server_down_backs_off_and_recovers(
    services: Services, dovecot: DovecotServer, door_factory: Doors
) -> None:
    mailbox_id = await add_external(services, dovecot)
    dovecot.stop()
    await door_factory()

    async def failing() -> bool:
        return await _cursor_row(services, mailbox_id) and (await _state(services, mailbox_id)).failures >= 2

    await until(failing, what="failures counted")
    mailbox = await _mailbox(services, mailbox_id)
    assert mailbox.status == "active", "an unreachable server is not a login failure"
    dovecot.start()
    await asyncio.to_thread(dovecot.deliver, ADDRESS, make_mail())
    await until(lambda: _jobs_with(services, 1), what="mail after the server came back")

    async def recovered() -> bool:
        return (await _state(services, mailbox_id)).failures == 0

    await until(recovered, what="the failure count cleared")


@SQLITE_ONLY
async def test_a_dropped_idle_connection_reconnects(
    services: Services, dovecot: DovecotServer, door_factory: Doors
) -> None:
    mailbox_id = await add_external(services, dovecot)
    await door_factory()
    await until(lambda: _cursor_set(services, mailbox_id), what="first sync")
    await asyncio.sleep(0.3)  # idling now
    await asyncio.to_thread(dovecot.stop)  # the server goes away under the IDLE
    await asyncio.to_thread(dovecot.start)
    await asyncio.to_thread(dovecot.deliver, ADDRESS, make_mail())
    await until(lambda: _jobs_with(services, 1), what="mail after the reconnect")
    await until(lambda: _advanced(services, mailbox_id, 1), what="cursor 1")


async def test_two_nodes_never_watch_the_same_account(
    services: Services, dovecot: DovecotServer, door_factory: Doors
) -> None:
    mailbox_id = await add_external(services, dovecot)
    one = await door_factory("node-a")
    two = await door_factory("node-b")
    await until(lambda: _watched_by_one(one, two), what="one node watching")
    await asyncio.sleep(2.0)  # several lease ticks later, still exactly one
    assert len(one.watching) + len(two.watching) == 1
    holder, other = (one, two) if one.watching else (two, one)
    assert await holder.leases.owner_of(mailbox_id) == holder.leases.node
    await holder.stop()  # gives its lease back
    await until(lambda: _is_watching(other, mailbox_id), what="the other node taking over")
    await asyncio.to_thread(dovecot.deliver, ADDRESS, make_mail())
    await until(lambda: _jobs_with(services, 1), what="mail through the second node")


async def _watched_by_one(one: ImapDoor, two: ImapDoor) -> bool:
    return len(one.watching) + len(two.watching) == 1


async def _is_watching(door: ImapDoor, mailbox_id: int) -> bool:
    return mailbox_id in door.watching
