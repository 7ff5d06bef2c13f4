"""A small typed IMAP client over aioimaplib: only the commands the door and the store use.

Implicit TLS only (RFC 8314 §3.3 recommends it for IMAP, port 993); aioimaplib has no STARTTLS,
and every large provider offers 993. Certificates are always verified (``imap.ca_file`` names an
extra CA, e.g. a self-signed one).

The host is the mailbox owner's choice, so it passes the SSRF host check first
(:mod:`mailhook.net.hosts`; ``imap.allow_hosts`` lets private servers through), and the
connection goes to the address that was checked while TLS verifies the certificate against the
host name (SNI). :class:`ServerAccess` bundles that with the TLS context and the timeout; the
account SMTP (``outbound/account_smtp.py``) reaches its server the same way.

Errors come in three kinds the watcher treats differently: :class:`ImapLoginFailed` (the server
answered ``NO`` to LOGIN: wrong password, account disabled), :class:`ImapHostRefused` (the host
leads to a private address) and :class:`ImapUnavailable` (DNS, connection, TLS, timeout or
protocol trouble: back off and try again).
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

import aioimaplib

from mailhook.errors import MailhookError, TemporaryFailure
from mailhook.net.hosts import (
    AllowList,
    HostRefused,
    IPAddress,
    Resolver,
    connect_vetted,
    parse_allow_list,
    vetted_addresses,
)
from mailhook.settings import ImapSettings

# aioimaplib logs every line it receives at DEBUG, message bodies included (invariant 3).
logging.getLogger("aioimaplib").setLevel(logging.WARNING)

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_UIDNEXT = re.compile(rb"\[UIDNEXT (\d+)\]")
_FETCH_UID = re.compile(rb"\bUID (\d+)")
_FETCH_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_LIST_LINE = re.compile(rb'^\((?P<flags>[^)]*)\) (?:"[^"]*"|NIL) (?P<name>.+)$')
#: RFC 5530 response codes that refuse a login for now, not for its credentials.
_TEMPORARY_LOGIN_CODES = re.compile(r"\[(UNAVAILABLE|SERVERBUG|INUSE|LIMIT)\]", re.IGNORECASE)
#: The server's answer to our IDLE being stopped by the renewal timer (aioimaplib's sentinel).
_IDLE_STOPPED = [b"stop_wait_server_push"]
_CONNECTION_LOST = [b"mailhook: connection lost"]


class ImapUnavailable(TemporaryFailure):
    """The server could not be reached or talked to; try again later."""


class ImapLoginFailed(MailhookError):
    """The server refused the login (its reason, without any credential, is the message)."""


class ImapCommandFailed(MailhookError):
    """The server answered NO or BAD to a command."""


class ImapHostRefused(MailhookError):
    """The IMAP host leads to an address mailhook must not connect to (loopback, private, ...)."""


@dataclass(frozen=True)
class Selected:
    """What SELECT says about a folder (RFC 3501 §6.3.1: UIDVALIDITY and UIDNEXT are required)."""

    uidvalidity: int
    uidnext: int | None


def tls_context(ca_file: str = "") -> ssl.SSLContext:
    """Verify the server certificate and host name (RFC 8314 §4), optionally with an extra CA."""
    return ssl.create_default_context(cafile=ca_file or None)


@dataclass(frozen=True)
class ServerAccess:
    """How mailhook reaches an external mailbox's IMAP or SMTP server."""

    tls: ssl.SSLContext
    timeout: float
    allow: AllowList = field(default_factory=AllowList)
    resolver: Resolver | None = None

    @classmethod
    def from_settings(cls, settings: ImapSettings, timeout: float | None = None) -> ServerAccess:
        """``imap.ca_file``, ``imap.allow_hosts`` and a timeout (``imap.timeout_seconds``)."""
        # The allow-list was checked at start-up (settings.py); nothing malformed is left.
        allow = parse_allow_list(settings.allow_hosts, skip_invalid=True)
        return cls(tls_context(settings.ca_file), timeout or settings.timeout_seconds, allow)

    async def addresses(self, host: str, port: int) -> list[IPAddress]:
        """The vetted addresses of ``host``; :class:`HostRefused` when it may not be reached."""
        return await vetted_addresses(
            host, port, allow=self.allow, resolver=self.resolver, timeout=self.timeout
        )


class _PinnedImap(aioimaplib.IMAP4):  # type: ignore[misc]  # aioimaplib has no type hints
    """aioimaplib's client over a socket already connected to the vetted address; TLS verifies
    the certificate against ``server_hostname``, the name the owner typed."""

    def __init__(self, sock: socket.socket, server_hostname: str, **options: Any) -> None:
        self._sock = sock
        self._server_hostname = server_hostname
        super().__init__(host=server_hostname, **options)

    def create_client(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop | None,
        conn_lost_cb: Any = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        local_loop = loop or asyncio.get_running_loop()
        self.protocol = aioimaplib.IMAP4ClientProtocol(local_loop, conn_lost_cb)
        self._client_task = local_loop.create_task(
            local_loop.create_connection(
                lambda: self.protocol, sock=self._sock, ssl=ssl_context, server_hostname=self._server_hostname
            )
        )


def _text(line: Any) -> str:
    return bytes(line).decode("utf-8", "replace")


class ImapSession:
    """One logged-in IMAP connection. Open with :meth:`open`, end with :meth:`logout`."""

    def __init__(self, client: Any, timeout: float, sock: socket.socket | None = None) -> None:
        self._client = client
        self._timeout = timeout
        self._sock = sock
        self.lost = asyncio.Event()

    @classmethod
    async def open(
        cls, host: str, port: int, login: str, password: str, *, access: ServerAccess
    ) -> ImapSession:
        """Vet the host, connect over TLS and log in; raises :class:`ImapHostRefused`,
        :class:`ImapUnavailable` or :class:`ImapLoginFailed`."""
        sock = await _connect(host, port, access)
        holder: list[ImapSession] = []

        def on_lost(exc: Exception | None) -> None:
            if holder:
                holder[0]._connection_lost()

        try:
            client = _PinnedImap(
                sock, host, port=port, timeout=access.timeout, conn_lost_cb=on_lost, ssl_context=access.tls
            )
        except BaseException:
            sock.close()
            raise
        session = cls(client, access.timeout, sock)
        holder.append(session)
        try:
            await client.wait_hello_from_server()
            response = await client.login(aioimaplib.quoted(login), password)
        except BaseException as exc:
            # Also on cancellation (the door stopping mid-login): never leave a socket behind.
            session.close()
            if isinstance(exc, (OSError, TimeoutError, ssl.SSLError, aioimaplib.AioImapException)):
                raise ImapUnavailable(f"IMAP {host}:{port}: {_describe(exc)}") from None
            raise
        if response.result != "OK":
            await session.logout()
            reason = (_text(response.lines[-1]) if response.lines else response.result)[:200]
            if _TEMPORARY_LOGIN_CODES.search(reason):
                raise ImapUnavailable(f"IMAP {host}:{port}: login deferred: {reason}")
            raise ImapLoginFailed(reason)
        return session

    def _connection_lost(self) -> None:
        self.lost.set()
        # Wake a pending IDLE wait at once instead of at its renewal time.
        self._client.protocol.idle_queue.put_nowait(_CONNECTION_LOST)

    @property
    def has_idle(self) -> bool:
        """RFC 2177 IDLE is advertised."""
        return bool(self._client.has_capability("IDLE"))

    async def _run(self, command: str, *args: Any) -> Any:
        if self.lost.is_set():
            raise ImapUnavailable("IMAP connection lost")
        try:
            response = await getattr(self._client, command)(*args)
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            raise ImapUnavailable(f"IMAP {command}: {_describe(exc)}") from None
        if response.result != "OK":
            raise ImapCommandFailed(f"IMAP {command} answered {response.result}")
        return response

    async def select(self, folder: str = "INBOX") -> Selected:
        """SELECT a folder; its UIDVALIDITY and UIDNEXT."""
        response = await self._run("select", folder)
        joined = b"\n".join(bytes(line) for line in response.lines)
        validity = _UIDVALIDITY.search(joined)
        if validity is None:
            raise ImapUnavailable("SELECT gave no UIDVALIDITY")
        following = _UIDNEXT.search(joined)
        return Selected(int(validity.group(1)), int(following.group(1)) if following else None)

    async def uid_search(self, *criteria: str) -> list[int]:
        """UID SEARCH (RFC 3501 §6.4.4), ascending."""
        response = await self._run("uid_search", *criteria)
        uids: set[int] = set()
        for line in response.lines[:-1]:  # the last line is the tagged status text
            # aioimaplib strips the "SEARCH" keyword of the untagged answer; accept either form.
            words = bytes(line).removeprefix(b"SEARCH").split()
            if words and all(word.isdigit() for word in words):
                uids.update(int(word) for word in words)
        return sorted(uids)

    async def sizes_from(self, first_uid: int) -> dict[int, int]:
        """UID → RFC822.SIZE of every message with UID ≥ ``first_uid``.

        ``n:*`` also matches the highest UID when it is below ``n`` (RFC 3501 §6.4.8), so the
        caller filters; one round trip gives both the new UIDs and their sizes.
        """
        return await self.sizes(f"{first_uid}:*")

    async def sizes(self, uid_set: str) -> dict[int, int]:
        """UID → RFC822.SIZE of the messages in a UID set such as ``4,9`` or ``12:*``."""
        response = await self._run("uid", "fetch", uid_set, "(UID RFC822.SIZE)")
        found: dict[int, int] = {}
        for line in response.lines:
            if not isinstance(line, bytes):
                continue
            uid, size = _FETCH_UID.search(line), _FETCH_SIZE.search(line)
            if uid and size:
                found[int(uid.group(1))] = int(size.group(1))
        return found

    async def fetch_raw(self, uid: int) -> bytes | None:
        """The whole message by UID without setting \\Seen (BODY.PEEK[], RFC 3501 §6.4.5)."""
        response = await self._run("uid", "fetch", str(uid), "(UID BODY.PEEK[])")
        for line in response.lines:
            if isinstance(line, bytearray):
                return bytes(line)
        return None

    async def wait_for_news(self, seconds: float) -> bool:
        """IDLE (RFC 2177) until the server reports new mail (True) or ``seconds`` pass (False).

        The caller re-issues IDLE after each return: the RFC asks clients to end IDLE before the
        server's 30-minute inactivity timeout, so ``seconds`` stays below 29 minutes.
        """
        try:
            idle = await self._client.idle_start(timeout=seconds)
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            raise ImapUnavailable(f"IMAP IDLE: {_describe(exc)}") from None
        news = False
        try:
            while True:
                pushed = await self._client.wait_server_push(timeout=seconds + self._timeout)
                if pushed == _CONNECTION_LOST:
                    raise ImapUnavailable("IMAP connection lost during IDLE")
                if pushed == _IDLE_STOPPED:
                    break
                if any(bytes(line).endswith(b"EXISTS") for line in pushed):
                    news = True
                    break
        except TimeoutError:
            raise ImapUnavailable("IMAP IDLE went silent") from None
        finally:
            if not self.lost.is_set():
                self._client.idle_done()
        try:
            await asyncio.wait_for(idle, self._timeout)
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            raise ImapUnavailable(f"IMAP IDLE DONE: {_describe(exc)}") from None
        return news

    async def noop(self) -> None:
        """NOOP: lets the server report new messages of the selected folder (RFC 3501 §6.1.2)."""
        await self._run("noop")

    async def special_folder(self, use: str, fallback: str) -> str:
        """The folder carrying a SPECIAL-USE attribute (RFC 6154), e.g. ``\\Sent``, or ``fallback``."""
        response = await self._run("list", '""', "*")
        for line in response.lines:
            match = _LIST_LINE.match(bytes(line))
            if match and use.lower().encode() in match.group("flags").lower().split():
                return _text(match.group("name")).strip().strip('"')
        return fallback

    async def append(self, folder: str, data: bytes, flags: str = "") -> None:
        """APPEND a message to a folder (RFC 3501 §6.3.11)."""
        await self._run("append", data, aioimaplib.quoted(folder), flags or None)

    async def add_flags(self, uid: int, flags: str) -> None:
        """UID STORE +FLAGS (RFC 3501 §6.4.6)."""
        await self._run("uid", "store", str(uid), "+FLAGS", f"({flags})")

    async def logout(self) -> None:
        """LOGOUT, or just drop the connection if that fails."""
        try:
            if not self.lost.is_set():
                await asyncio.wait_for(self._client.logout(), self._timeout)
        except (OSError, TimeoutError, aioimaplib.AioImapException):
            pass
        finally:
            self.close()

    def close(self) -> None:
        """Drop the connection (and a connection attempt still under way)."""
        self._client._client_task.cancel()
        transport = getattr(self._client.protocol, "transport", None)
        if transport is not None:
            transport.close()
        elif self._sock is not None:
            self._sock.close()  # TLS never came up: the socket is still ours to close


async def _connect(host: str, port: int, access: ServerAccess) -> socket.socket:
    """A TCP connection to a vetted address of ``host``."""
    try:
        addresses = await access.addresses(host, port)
    except HostRefused as exc:
        if exc.address is None:  # no DNS answer now: like any connection trouble, try later
            raise ImapUnavailable(f"IMAP {host}:{port}: {exc}") from exc
        raise ImapHostRefused(f"{exc}; an administrator can allow the host (imap.allow_hosts)") from exc
    try:
        return await connect_vetted(addresses, port, timeout=access.timeout)
    except OSError as exc:  # refused, unreachable, timed out (TimeoutError is an OSError)
        raise ImapUnavailable(f"IMAP {host}:{port}: {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    """An error description that carries no credentials (exception type and text)."""
    text = str(exc)[:160]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
