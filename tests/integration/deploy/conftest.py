"""Start Debian's Dovecot with the compose stack's own ``docker/dovecot/dovecot.conf``.

The file is used as shipped except for what only makes sense inside the container: each such
value is replaced by an exact match (the test fails loudly if the file no longer contains it,
so the replacements track the real config): listeners move to free loopback ports, the
certificate, users file and Maildirs move into a private directory, and the ``vmail`` user
becomes Debian's ``dovecot`` user. Everything else (protocols, TLS policy, auth mechanisms,
passdb/userdb, namespaces, LMTP) is what the container runs.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.certs import self_signed
from tests.harness import remove_service_dir, service_dir
from tests.harness.ports import LOOPBACK, free_port, wait_listening

REPO = Path(__file__).resolve().parents[3]
STACK_CONF = REPO / "docker" / "dovecot" / "dovecot.conf"
DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
LMTP = "/usr/lib/dovecot/lmtp"
MAIL_USER = "dovecot"


@dataclass
class StackDovecot:
    """A running Dovecot from the stack's config; ports by listener name."""

    root: Path
    ports: dict[str, int]
    cert: Path
    process: subprocess.Popen[bytes] | None = None
    users: dict[str, str] = field(default_factory=dict)

    @property
    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def add_user(self, login: str, password: str) -> None:
        """Hash like an admin would (``doveadm pw -s ARGON2ID``) and append to the users file."""
        hashed = subprocess.run(
            [DOVEADM, "pw", "-s", "ARGON2ID", "-p", password], check=True, capture_output=True, text=True
        ).stdout.strip()
        with (self.root / "users").open("a") as users:
            users.write(f"{login}:{hashed}::::::\n")
        self.users[login] = password


def rewrite(text: str, replacements: dict[str, str]) -> str:
    """Replace each key (which must occur in ``text``) by its value."""
    for old, new in replacements.items():
        assert old in text, f"docker/dovecot/dovecot.conf no longer contains {old!r}: update this test"
        text = text.replace(old, new)
    return text


def stack_config(root: Path, ports: dict[str, int], cert: Path, key: Path) -> str:
    """The stack's dovecot.conf with container-only values moved to ``root`` and loopback."""
    user = pwd.getpwnam(MAIL_USER)
    text = rewrite(
        STACK_CONF.read_text(),
        {
            "listen = *\n": f"listen = {LOOPBACK}\n",
            "port = 143\n": f"port = {ports['imap']}\n",
            "port = 993\n": f"port = {ports['imaps']}\n",
            "port = 24\n": f"port = {ports['lmtp']}\n",
            "port = 12345\n": f"port = {ports['sasl']}\n",
            "</etc/dovecot/tls/fullchain.pem": f"<{cert}",
            "</etc/dovecot/tls/privkey.pem": f"<{key}",
            " /etc/dovecot/users\n": f" {root}/users\n",
            "uid=vmail gid=vmail home=/var/mail/%d/%n": (
                f"uid={user.pw_uid} gid={user.pw_gid} home={root}/mail/%d/%n"
            ),
            "mail_privileged_group = vmail\n": f"mail_privileged_group = {MAIL_USER}\n",
            "first_valid_uid = 5000\n": f"first_valid_uid = {user.pw_uid}\n",
            "log_path = /dev/stderr\n": f"log_path = {root}/dovecot.log\n",
            "info_log_path = /dev/stdout\n": f"info_log_path = {root}/dovecot.log\n",
        },
    )
    header = (
        f"# Test copy of {STACK_CONF.name}\ninstance_name = mailhook-deploy-{ports['imap']}\n"
        f"base_dir = {root}/run\nstate_dir = {root}/state\n"
        # Test-only: no 2 s penalty after a wrong password (the tests try one on purpose).
        "auth_failure_delay = 0\n"
    )
    return header + text


@pytest.fixture
def stack_dovecot(tmp_path: Path) -> Iterator[StackDovecot]:
    """Dovecot running the stack's config on loopback; users are added with ``add_user``."""
    for binary in (DOVECOT, LMTP):
        if not Path(binary).exists():
            reason = f"{binary} is not installed (Debian packages dovecot-imapd, dovecot-lmtpd)"
            if os.environ.get("CI") == "true":
                pytest.fail(reason + ": scripts/system-deps.sh should install them")
            pytest.skip(reason)
    try:
        user = pwd.getpwnam(MAIL_USER)
    except KeyError:
        pytest.skip(f"no {MAIL_USER} user")
    root = service_dir(tmp_path, "stack-dovecot")
    for name in ("run", "state", "mail"):
        (root / name).mkdir()
    shutil.chown(root / "mail", user.pw_uid, user.pw_gid)
    (root / "users").touch(mode=0o644)
    cert, key = self_signed(root)
    ports = {name: free_port() for name in ("imap", "imaps", "lmtp", "sasl")}
    conf = root / "dovecot.conf"
    conf.write_text(stack_config(root, ports, cert, key))
    server = StackDovecot(root, ports, cert)
    server.process = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        if not all(wait_listening(port, 20) for port in ports.values()):
            raise RuntimeError(f"dovecot did not listen on {ports}:\n{server.log[-3000:]}")
        yield server
    finally:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)
        remove_service_dir(tmp_path, "stack-dovecot")
