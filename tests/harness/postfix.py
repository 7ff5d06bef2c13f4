"""A private Postfix instance on loopback that relays agent mail to mailhook over LMTP.

``PostfixInstance`` writes its own ``main.cf``/``master.cf``/transport map into a directory of
its own and runs ``postfix -c DIR start``. Its queue, data directory, pid and log file are its
own too, so it never touches the system instance (``/etc/postfix``, ``/var/spool/postfix``),
which may be absent or stopped. Run as root: Postfix's master must start as root. As root,
``-c DIR`` needs neither ``alternate_config_directories`` nor an ``/etc/postfix/main.cf``
(Postfix checks that list only for commands run by other users).

The configuration is ``postfix/main.cf.fragment`` and ``postfix/master.cf.fragment`` from the
repository (the settings we document for production) plus test-only overrides: ports, paths,
no DNS, loopback only, and retry timers of a few seconds so deferred mail comes back fast.
postfix/README.md lists them, with what we learnt getting Postfix 3.7 to run this way.

    with PostfixInstance(tmp_path, [("127.0.0.1", lmtp_port)], ["agents.test"]) as pf:
        smtplib.SMTP("127.0.0.1", pf.smtp_port).sendmail(...)
        assert pf.wait_empty(20)
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shutil
import subprocess
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from . import remove_service_dir, service_dir
from .ports import LOOPBACK, free_port, wait_listening

FRAGMENT_DIR = Path(__file__).resolve().parents[2] / "postfix"
MAIN_CF_FRAGMENT = FRAGMENT_DIR / "main.cf.fragment"
MASTER_CF_FRAGMENT = FRAGMENT_DIR / "master.cf.fragment"
MILTER_CF_FRAGMENT = FRAGMENT_DIR / "main.cf.milter.fragment"

MIN_VERSION = (3, 5)  # several LMTP next-hops per destination; postlogd needs 3.4
_SBIN = ("/usr/sbin", "/sbin", "/usr/bin")

# Daemons a relay-only instance needs; none chrooted, so the private queue needs no /etc copy.
# "pickup" is here because `postqueue -f` probes public/pickup to see if Postfix is up.
_BASE_MASTER_CF = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def find_binary(name: str) -> str | None:
    """Path of a Postfix command, looked up in PATH and then the sbin directories."""
    found = shutil.which(name)
    if found:
        return found
    for directory in _SBIN:
        candidate = Path(directory) / name
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def read_main_cf(path: Path) -> dict[str, str]:
    """Parse ``name = value`` settings, joining indented continuation lines (postconf(5))."""
    settings: dict[str, str] = {}
    current: str | None = None
    for raw in path.read_text().splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if raw[0].isspace():
            if current is None:
                raise ValueError(f"{path}: continuation line before any setting: {raw!r}")
            settings[current] += " " + raw.strip()
            continue
        name, sep, value = raw.partition("=")
        if not sep:
            raise ValueError(f"{path}: not a 'name = value' line: {raw!r}")
        current = name.strip()
        settings[current] = value.strip()
    return settings


def parse_master_cf(text: str) -> dict[tuple[str, str], str]:
    """Active master.cf entries keyed by (service, type), each with its ``-o`` lines."""
    entries: dict[tuple[str, str], str] = {}
    current: tuple[str, str] | None = None
    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if raw[0].isspace():
            if current is None:
                raise ValueError(f"master.cf continuation line before any service: {raw!r}")
            entries[current] += "\n" + raw.rstrip()
            continue
        fields = raw.split()
        current = (fields[0], fields[1])
        entries[current] = raw.rstrip()
    return entries


def lmtp_nexthop(targets: Iterable[tuple[str, int]]) -> str:
    """Transport-map value for one or more LMTP servers, tried in the order given.

    Only the first destination may carry ``inet:`` (see postfix/transport.example).
    """
    hops = [f"[{host}]:{port}" for host, port in targets]
    if not hops:
        raise ValueError("at least one LMTP target is needed")
    return "lmtp:inet:" + " ".join(hops)


def postfix_version() -> tuple[int, ...] | None:
    """Installed Postfix version from ``postconf -d mail_version``, or None."""
    postconf = find_binary("postconf")
    if postconf is None:
        return None
    result = subprocess.run([postconf, "-dh", "mail_version"], capture_output=True, text=True, check=False)
    match = re.match(r"(\d+)\.(\d+)", result.stdout.strip())
    return (int(match[1]), int(match[2])) if match else None


def _discard(config_dir: Path, tmp_dir: Path) -> None:
    """Finaliser: stop an instance still running and delete its out-of-tree directory."""
    postfix = find_binary("postfix")
    if postfix is not None and (config_dir / "main.cf").exists():
        argv = [postfix, "-c", str(config_dir)]
        status = subprocess.run([*argv, "status"], capture_output=True, check=False, timeout=60)
        if status.returncode == 0:
            subprocess.run([*argv, "stop"], capture_output=True, check=False, timeout=60)
    remove_service_dir(tmp_dir, "postfix")


class PostfixError(RuntimeError):
    """A Postfix command failed; the message carries its output and the log tail."""


class PostfixInstance:
    """A private Postfix listening for SMTP on 127.0.0.1:``smtp_port``.

    Mail for ``domains`` goes to ``lmtp_targets`` over LMTP (several targets are tried in order).
    Mail for any other domain goes to ``relay_catch_port`` over SMTP when it is given; without
    it, SMTP clients may only send to the agent domains, and mail Postfix itself generates for
    other domains (bounces) fails with a 5.7.1 "no outbound relay" error.
    ``extra_main_cf`` overrides any setting (e.g. ``{"lmtp_data_done_timeout": "5s"}``).
    With ``milter_port``, ``postfix/main.cf.milter.fragment`` is added (before ``extra_main_cf``)
    with its milter address pointed at ``127.0.0.1:milter_port``.
    """

    def __init__(
        self,
        tmp_dir: Path,
        lmtp_targets: list[tuple[str, int]],
        domains: list[str],
        relay_catch_port: int | None = None,
        *,
        extra_main_cf: Mapping[str, str] | None = None,
        milter_port: int | None = None,
    ) -> None:
        if not domains:
            raise ValueError("at least one agent domain is needed")
        self.tmp_dir = tmp_dir
        self.lmtp_targets = list(lmtp_targets)
        self.domains = list(domains)
        self.relay_catch_port = relay_catch_port
        self.extra_main_cf = dict(extra_main_cf or {})
        self.milter_port = milter_port
        self.smtp_port = free_port()
        self.root: Path | None = None
        self._running = False
        self._finalizer: Callable[[], object] | None = None

    # -- availability -------------------------------------------------------------------------

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why a private Postfix cannot run here, or None when it can."""
        if os.geteuid() != 0:
            return "a private Postfix instance needs root (its master process starts as root)"
        missing = [n for n in ("postfix", "postconf", "postqueue") if find_binary(n) is None]
        if missing:
            return f"Postfix commands not found: {', '.join(missing)} (run scripts/system-deps.sh)"
        try:
            pwd.getpwnam("postfix")
        except KeyError:
            return "user 'postfix' does not exist (is the postfix package installed?)"
        try:
            grp.getgrnam("postdrop")
        except KeyError:
            return "group 'postdrop' does not exist (is the postfix package installed?)"
        version = postfix_version()
        if version is None or version < MIN_VERSION:
            return f"Postfix >= 3.5 required, found {version}"
        return None

    @classmethod
    def available(cls) -> bool:
        """True when this machine can run a private Postfix instance."""
        return cls.unavailable_reason() is None

    # -- paths and configuration --------------------------------------------------------------

    def _dir(self) -> Path:
        if self.root is None:
            raise RuntimeError("PostfixInstance has not been started")
        return self.root

    @property
    def config_dir(self) -> Path:
        return self._dir() / "etc"

    @property
    def queue_dir(self) -> Path:
        return self._dir() / "queue"

    @property
    def data_dir(self) -> Path:
        return self._dir() / "data"

    @property
    def log_file(self) -> Path:
        return self._dir() / "maillog"

    @property
    def transport_file(self) -> Path:
        return self.config_dir / "transport"

    def main_cf_settings(self) -> dict[str, str]:
        """The documented fragment, then the test-only settings that override it."""
        settings = read_main_cf(MAIN_CF_FRAGMENT)
        settings.update(
            {
                "compatibility_level": "3.6",
                "queue_directory": str(self.queue_dir),
                "data_directory": str(self.data_dir),
                "maillog_file": str(self.log_file),
                "maillog_file_prefixes": str(self._dir()),
                "myhostname": "mailhook-test.localdomain",
                "mydomain": "localdomain",
                "myorigin": "$myhostname",
                "mydestination": "",
                "local_recipient_maps": "",
                "local_transport": "error:5.1.1 no local delivery in the mailhook test instance",
                "alias_maps": "",
                "alias_database": "",
                "biff": "no",
                "append_dot_mydomain": "no",
                "inet_interfaces": "loopback-only",
                "inet_protocols": "ipv4",
                "mynetworks": "127.0.0.0/8",
                "relay_domains": ", ".join(self.domains),
                "transport_maps": f"texthash:{self.transport_file}",
                "smtp_dns_support_level": "disabled",
                "smtp_host_lookup": "native",
                "lmtp_host_lookup": "native",
                "queue_run_delay": "1s",
                "minimal_backoff_time": "2s",
                "maximal_backoff_time": "4s",
                "in_flow_delay": "0s",
                "smtpd_error_sleep_time": "0s",
            }
        )
        if self.relay_catch_port is None:
            settings.update(
                {
                    "smtpd_relay_restrictions": "reject_unauth_destination",
                    "default_transport": "error:5.7.1 no outbound relay in this test instance",
                }
            )
        else:
            settings.update(
                {
                    "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
                    "relayhost": f"[{LOOPBACK}]:{self.relay_catch_port}",
                }
            )
        settings["smtpd_recipient_restrictions"] = settings["smtpd_relay_restrictions"]
        if self.milter_port is not None:
            settings.update(self.milter_settings())
        settings.update(self.extra_main_cf)
        return settings

    def milter_settings(self) -> dict[str, str]:
        """The documented milter fragment, its milter address pointed at ``milter_port``."""
        settings = read_main_cf(MILTER_CF_FRAGMENT)
        address = f"inet:{LOOPBACK}:{self.milter_port}"
        settings["smtpd_milters"] = re.sub(r"inet:[\w.\[\]]+:\d+", address, settings["smtpd_milters"])
        return settings

    def master_cf_text(self) -> str:
        """Base daemons, the fragment's entries in place of same-named ones, the SMTP listener."""
        entries = parse_master_cf(_BASE_MASTER_CF)
        entries.update(parse_master_cf(MASTER_CF_FRAGMENT.read_text()))
        listener = f"{LOOPBACK}:{self.smtp_port} inet  n       -       n       -       -       smtpd"
        return "\n".join([listener, *entries.values()]) + "\n"

    def transport_text(self) -> str:
        nexthop = lmtp_nexthop(self.lmtp_targets)
        return "".join(f"{domain} {nexthop}\n" for domain in self.domains)

    def prepare(self) -> None:
        """Create the instance directory and write its configuration (``start()`` does this)."""
        if self.root is not None:
            return
        self.root = service_dir(self.tmp_dir, "postfix")
        # Stops a forgotten instance and removes its files when this object goes away.
        self._finalizer = weakref.finalize(self, _discard, self.config_dir, self.tmp_dir)
        root = self.root
        self.config_dir.mkdir(mode=0o755)
        self.queue_dir.mkdir(mode=0o755)
        self.data_dir.mkdir(mode=0o700)
        # master opens data_directory/master.lock as mail_owner: the directory must be its.
        postfix_user = pwd.getpwnam("postfix")
        os.chown(self.data_dir, postfix_user.pw_uid, postfix_user.pw_gid)
        main_cf = "".join(f"{k} = {v}\n" for k, v in self.main_cf_settings().items())
        (self.config_dir / "main.cf").write_text(main_cf)
        (self.config_dir / "master.cf").write_text(self.master_cf_text())
        self.transport_file.write_text(self.transport_text())
        # Postfix rereads a config file or texthash table modified within the last second or
        # two every 0.3 s until it "cools down" (dict_load_file): ~1.5 s at every fresh start.
        cooled = time.time() - 60
        for path in self.config_dir.iterdir():
            os.utime(path, (cooled, cooled))
        root.chmod(0o755)

    # -- commands -----------------------------------------------------------------------------

    def _command(self, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        binary = find_binary(name)
        if binary is None:
            raise PostfixError(f"{name} not found")
        result = subprocess.run(
            [binary, "-c", str(self.config_dir), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if check and result.returncode != 0:
            raise PostfixError(
                f"{name} {' '.join(args)} exited {result.returncode}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}\n"
                "log tail:\n" + "\n".join(self.log_lines()[-20:])
            )
        return result

    def set_lmtp_targets(self, lmtp_targets: list[tuple[str, int]]) -> None:
        """Point the agent domains at other LMTP servers (rewrites the map, ``postfix reload``)."""
        self.lmtp_targets = list(lmtp_targets)
        if self.root is None:
            return
        self.transport_file.write_text(self.transport_text())
        cooled = time.time() - 60
        os.utime(self.transport_file, (cooled, cooled))
        if self._running:
            self._command("postfix", "reload")

    def postconf(self, name: str) -> str:
        """The value this instance actually uses for ``name`` (``postconf -h``)."""
        return self._command("postconf", "-h", name).stdout.strip()

    def start(self, timeout: float = 20.0) -> None:
        """Write the configuration, start Postfix and wait until the SMTP port listens."""
        if self._running:
            return
        self.prepare()
        self._command("postfix", "start")
        self._running = True
        if not wait_listening(self.smtp_port, timeout):
            self.stop()
            raise PostfixError(
                f"Postfix did not listen on {LOOPBACK}:{self.smtp_port} within {timeout}s\n"
                + "\n".join(self.log_lines()[-20:])
            )

    def is_running(self) -> bool:
        """True while the master process holds its lock (``postfix status``)."""
        if self.root is None:
            return False
        return self._command("postfix", "status", check=False).returncode == 0

    def stop(self) -> None:
        """Stop the master and its daemons; queued mail stays in the private queue."""
        if not self._running:
            return
        self._running = False
        if self.is_running():
            self._command("postfix", "stop", check=False)
        deadline = time.monotonic() + 10
        while self.is_running():
            if time.monotonic() > deadline:
                self._command("postfix", "abort", check=False)
                break
            time.sleep(0.05)

    def close(self) -> None:
        """Stop, then delete the instance's directory if it lives outside ``tmp_dir``.

        The same happens when the object is garbage-collected or the interpreter exits.
        """
        self.stop()
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- queue and log ------------------------------------------------------------------------

    def flush(self) -> None:
        """Attempt delivery of all queued mail now (``postqueue -f``)."""
        self._command("postqueue", "-f")

    def queue(self) -> list[dict[str, Any]]:
        """Queued messages as ``postqueue -j`` reports them (one JSON object each)."""
        out = self._command("postqueue", "-j").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def held(self) -> list[dict[str, Any]]:
        """Messages in the hold queue (put there by a milter's quarantine or ``postsuper -h``)."""
        return [item for item in self.queue() if item.get("queue_name") == "hold"]

    def postcat(self, queue_id: str) -> str:
        """``postcat -q`` of a queued message: envelope records, headers and body."""
        return self._command("postcat", "-q", queue_id).stdout

    def postsuper(self, *args: str) -> str:
        """Run ``postsuper`` on this instance's queue (``-H ALL`` releases every held message)."""
        return self._command("postsuper", *args).stdout

    def queue_ids(self) -> list[str]:
        """Queue ids of all messages still in the queue (any of incoming/active/deferred/hold)."""
        return [str(item["queue_id"]) for item in self.queue()]

    def wait_empty(self, timeout: float) -> bool:
        """Poll until the queue is empty; False if ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        while self.queue_ids():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    def log_lines(self) -> list[str]:
        """Lines Postfix has logged so far (written by postlogd to ``maillog_file``)."""
        if self.root is None or not self.log_file.exists():
            return []
        return self.log_file.read_text(errors="replace").splitlines()

    def wait_for_log(self, pattern: str, timeout: float) -> str | None:
        """First log line matching the regex ``pattern``, polling up to ``timeout`` seconds."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_lines():
                if regex.search(line):
                    return line
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.1)
