"""A private Dovecot IMAP server on loopback, with a passwd-file of test users.

``DovecotServer`` writes its own ``dovecot.conf`` into a directory of its own and runs
``dovecot -F -c <dir>/dovecot.conf`` in the foreground as a child process; base_dir, state_dir,
the log and every Maildir are inside that directory, so the system instance (``/etc/dovecot``)
is never read or touched. IMAP is served over implicit TLS only (RFC 8314) with a self-signed
certificate from ``tests/certs.py``: mailhook verifies it through ``imap.ca_file``.

Dovecot's login and auth processes drop root (to ``dovenull`` and ``dovecot``), so the directory
comes from ``service_dir()``; the mail processes run as the ``dovecot`` user (``first_valid_uid``
is lowered for that). Sent and Drafts carry SPECIAL-USE flags (RFC 6154), like real providers.

    with DovecotServer(tmp_path, {"help@example.org": "secret"}) as imap:
        imap.deliver("help@example.org", raw_bytes)
"""

from __future__ import annotations

import imaplib
import pwd
import shutil
import ssl
import subprocess
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.certs import self_signed

from . import remove_service_dir, service_dir
from .ports import LOOPBACK, free_port, is_listening, wait_listening

DOVECOT = "/usr/sbin/dovecot"
MAIL_USER = "dovecot"

CONFIG = """\
# Written by tests/harness/dovecot.py: a private test instance, loopback only.
instance_name = mailhook-test-{port}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = {host}
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = {uid}
last_valid_uid = 0
mail_location = maildir:{root}/mail/%u
mail_uid = {uid}
mail_gid = {gid}
imap_capability = {capability}
mailbox_idle_check_interval = 1 secs
# One imap process per connection: room for every account of a benchmark.
default_process_limit = {processes}
default_client_limit = {clients}

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = home={root}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = {host}
    port = {port}
    ssl = yes
  }}
}}
# No growing delay after failed logins (anvil's auth penalty): the tests fail logins on purpose.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""

#: Capabilities of a server without IDLE (poll-only), for tests of the fallback.
NO_IDLE_CAPABILITY = "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE SORT UIDPLUS SPECIAL-USE"


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class DovecotServer:
    """Start with :meth:`start` (or ``with``); :meth:`set_password` changes a user's password."""

    def __init__(
        self, tmp_dir: Path, users: dict[str, str], *, idle: bool = True, max_connections: int = 100
    ) -> None:
        self.tmp_dir = tmp_dir
        self.users = dict(users)
        self.idle = idle
        self.max_connections = max_connections
        self.port = free_port()
        self.host = LOOPBACK
        self.root = service_dir(tmp_dir, "dovecot")
        self.cert, self.key = self_signed(self.root)
        self.process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[..., DovecotServer] | None = None
        self._remove_dir = weakref.finalize(self, remove_service_dir, tmp_dir, "dovecot")

    @staticmethod
    def unavailable_reason() -> str | None:
        """Why Dovecot cannot run here, or None."""
        if not Path(DOVECOT).exists():
            return f"{DOVECOT} is not installed (Debian package dovecot-imapd)"
        try:
            pwd.getpwnam(MAIL_USER)
        except KeyError:
            return f"no {MAIL_USER} user (the Debian package creates it)"
        return None

    @property
    def config_file(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def log_file(self) -> Path:
        return self.root / "dovecot.log"

    def _write_config(self) -> None:
        user = pwd.getpwnam(MAIL_USER)
        for name in ("run", "state", "mail"):
            (self.root / name).mkdir(exist_ok=True)
        shutil.chown(self.root / "mail", user.pw_uid, user.pw_gid)
        capability = "" if self.idle else NO_IDLE_CAPABILITY
        text = CONFIG.format(
            root=self.root,
            host=self.host,
            port=self.port,
            cert=self.cert,
            key=self.key,
            uid=user.pw_uid,
            gid=user.pw_gid,
            capability=capability,
            processes=max(100, self.max_connections + 50),
            clients=4 * max(1000, self.max_connections + 50),
        )
        if self.idle:
            text = text.replace("imap_capability = \n", "")
        self.config_file.write_text(text)
        self._write_passwd()

    def _write_passwd(self) -> None:
        lines = [f"{login}:{{PLAIN}}{password}::::::" for login, password in self.users.items()]
        passwd = self.root / "passwd"
        passwd.write_text("\n".join(lines) + "\n")
        passwd.chmod(0o644)

    def set_password(self, login: str, password: str) -> None:
        """Change (or add) a user; passwd-file is re-read on every login."""
        self.users[login] = password
        self._write_passwd()

    def start(self, timeout: float = 20.0) -> Self:
        self._write_config()
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.config_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._finalizer = weakref.finalize(self, _terminate, self.process)
        if not wait_listening(self.port, timeout):
            log = self.log_file.read_text() if self.log_file.exists() else "(no log)"
            self.stop()
            raise RuntimeError(f"dovecot did not listen on {self.port}:\n{log[-3000:]}")
        return self

    def stop(self) -> None:
        """Stop the server; its mail stays, so :meth:`start` brings it back as it was."""
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None and is_listening(self.port)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        self._remove_dir()

    # --- a mail client for the tests ------------------------------------------------------------

    def tls_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's self-signed certificate."""
        return ssl.create_default_context(cafile=str(self.cert))

    def connect(self, login: str) -> imaplib.IMAP4_SSL:
        """A logged-in imaplib client (the caller logs out)."""
        client = imaplib.IMAP4_SSL(self.host, self.port, ssl_context=self.tls_context(), timeout=10)
        client.login(login, self.users[login])
        return client

    def deliver(self, login: str, raw: bytes, folder: str = "INBOX", flags: str = "") -> None:
        """Put a message into a folder of ``login`` (IMAP APPEND, as an MTA's delivery would)."""
        client = self.connect(login)
        try:
            status, _ = client.append(folder, f"({flags})" if flags else None, None, raw)
            assert status == "OK", status
        finally:
            client.logout()

    def messages(self, login: str, folder: str = "INBOX") -> list[tuple[bytes, bytes]]:
        """(flags, raw) of every message in a folder."""
        client = self.connect(login)
        try:
            status, _ = client.select(f'"{folder}"', readonly=True)
            assert status == "OK", status
            _, data = client.uid("SEARCH", "ALL")
            found = []
            for uid in data[0].split():
                _, parts = client.uid("FETCH", uid, "(FLAGS BODY.PEEK[])")
                header, raw = parts[0]  # type: ignore[misc]
                found.append((header, raw))
            return found
        finally:
            client.logout()

    def wait_log(self, needle: str, timeout: float = 10.0) -> bool:
        """Until ``needle`` shows up in the server log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log_file.exists() and needle in self.log_file.read_text():
                return True
            time.sleep(0.05)
        return False
