"""Settings: one frozen dataclass per section, read from ``MAILHOOK_*`` and an optional TOML file.

Precedence, lowest first: the documented defaults below, then the TOML file named by
``MAILHOOK_CONFIG`` (``[section] field = value``), then environment variables
``MAILHOOK_<SECTION>_<FIELD>`` (``MAILHOOK_DATA_DIR`` for the top level). Every field carries a
``doc`` in its metadata; ``tests/unit/test_settings_docs.py`` proves each is in
``docs/configuration.md``.

Secrets (the Fernet encryption key and the JWT secret) have no default. :func:`ensure_secrets`
generates them into the data directory on first start (mode 0600) and says so; mailhook never
runs on a hard-coded fallback secret.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mailhook.errors import ConfigError
from mailhook.net.hosts import parse_allow_list

ENV_PREFIX = "MAILHOOK_"


def _doc(text: str, default: Any) -> Any:
    return field(default=default, metadata={"doc": text})


@dataclass(frozen=True)
class DatabaseSettings:
    """Where metadata and the spool live."""

    url: str = _doc(
        "SQLAlchemy async URL. Empty: SQLite file `mailhook.db` in the data dir (aiosqlite). "
        "For several nodes use `postgresql+asyncpg://user:pass@host/db`.",
        "",
    )
    pool_size: int = _doc("Connection pool size (PostgreSQL only).", 10)
    echo: bool = _doc("Log every SQL statement (development only; never logs bound values).", False)


@dataclass(frozen=True)
class LmtpSettings:
    """The LMTP door Postfix or Stalwart delivers to (RFC 2033)."""

    enabled: bool = _doc("Start the LMTP door.", True)
    host: str = _doc("Address the LMTP door listens on.", "127.0.0.1")
    port: int = _doc("Port the LMTP door listens on.", 8024)
    max_message_bytes: int = _doc(
        "Largest message accepted (bytes); larger gets 552 5.3.4.", 25 * 1024 * 1024
    )
    max_connections: int = _doc("Concurrent LMTP sessions; aiosmtpd buffers whole messages.", 50)
    max_recipients: int = _doc("Recipients accepted per transaction (452 4.5.3 past it).", 100)


@dataclass(frozen=True)
class SmtpSettings:
    """The optional SMTP door for pointing an MX or relay straight at mailhook."""

    enabled: bool = _doc("Start the SMTP door.", False)
    host: str = _doc("Address the SMTP door listens on.", "127.0.0.1")
    port: int = _doc("Port the SMTP door listens on.", 2525)
    tls_cert: str = _doc("PEM certificate file; with `tls_key`, STARTTLS is offered.", "")
    tls_key: str = _doc("PEM private key file for STARTTLS.", "")
    require_tls: bool = _doc("Refuse MAIL before STARTTLS.", False)
    max_message_bytes: int = _doc("SIZE limit advertised and enforced (RFC 1870).", 25 * 1024 * 1024)
    max_connections: int = _doc("Concurrent SMTP sessions.", 50)


@dataclass(frozen=True)
class HttpSettings:
    """The web admin, REST API and webhooks."""

    host: str = _doc("Address the HTTP server listens on.", "127.0.0.1")
    port: int = _doc("Port the HTTP server listens on.", 8000)
    public_url: str = _doc("URL users reach the web UI at (links in e-mails). Empty: from host/port.", "")
    max_body_bytes: int = _doc("Largest request body accepted by the API (413 past it).", 1024 * 1024)
    cors_origins: str = _doc("Comma-separated origins allowed by CORS. Empty: CORS off.", "")
    rate_limit_ip_per_minute: int = _doc("API requests per client address per minute (429 past it).", 300)
    rate_limit_user_per_minute: int = _doc("API requests per signed-in user per minute (429 past it).", 120)
    sse_poll_seconds: float = _doc(
        "How often an activity stream (`GET /api/v1/activity/stream`) looks for new rows; every "
        "node reads the shared database, so a stream sees activity from all nodes.",
        0.5,
    )
    sse_keepalive_seconds: float = _doc("An idle activity stream sends a comment line this often.", 15.0)
    sse_max_seconds: float = _doc(
        "Longest an activity stream stays open; the browser then reconnects with `Last-Event-ID`.", 300.0
    )
    sse_max_streams_per_user: int = _doc("Open activity streams per user on one node (429 past it).", 5)
    sse_token_ttl_seconds: int = _doc("Lifetime of an activity stream token (`?token=`).", 3600)


@dataclass(frozen=True)
class LlmSettings:
    """The model that decides. A mailbox may override provider, URL, model and key (docs/agent.md)."""

    provider: Literal["none", "openai", "anthropic"] = _doc(
        "`openai` (any OpenAI-compatible endpoint), `anthropic` (the Anthropic Messages API; set "
        "`model` to a Claude model) or `none` (every message is escalated to the owner; no model "
        "is called).",
        "none",
    )
    base_url: str = _doc("Provider endpoint. Empty: the provider's public default.", "")
    model: str = _doc("Model name passed to the provider.", "gpt-4o-mini")
    api_key: str = _doc("Provider API key (never logged).", "")
    timeout_seconds: float = _doc("Per-request timeout.", 60.0)
    max_retries: int = _doc("Retries on 429/5xx before the message goes back to the spool.", 2)
    mailbox_allow_http: bool = _doc(
        "Let a mailbox's own `llm_base_url` be plain `http://` (a model on your LAN). Off: a "
        "mailbox's model URL must be `https://`.",
        False,
    )


@dataclass(frozen=True)
class SecuritySettings:
    """Keys. Empty values are generated into the data dir on first start."""

    encryption_key: str = _doc(
        "Fernet key(s) for the spool, held replies and credentials; comma-separated for rotation "
        "(first encrypts). Empty: generated into `<data_dir>/encryption.key`.",
        "",
    )
    jwt_secret: str = _doc("HS256 secret for API tokens. Empty: generated into `<data_dir>/jwt.secret`.", "")


@dataclass(frozen=True)
class SpoolSettings:
    """The durable queue between the doors and the pipeline."""

    node_name: str = _doc(
        "This node's name for job leases; unique per node. Empty: the host name. A node "
        "restarting under the same name takes its unfinished jobs back at once.",
        "",
    )
    workers: int = _doc("Concurrent pipeline workers in this process.", 4)
    batch: int = _doc("Jobs claimed per database round trip.", 8)
    max_attempts: int = _doc("Attempts before a job is moved to dead-letter.", 8)
    backoff_seconds: float = _doc("First retry delay; doubles per attempt.", 30.0)
    backoff_max_seconds: float = _doc("Ceiling of the retry delay.", 3600.0)
    lease_seconds: float = _doc("How long a claimed job is owned before another node may take it.", 300.0)
    poll_seconds: float = _doc("Idle poll interval when no door has signalled new work.", 1.0)
    ingest_burst_per_second: float = _doc(
        "Ingest first: while the doors take more messages per second than this, workers wait "
        "before each job and pipeline step (at most `ingest_max_wait_seconds` each time), so a "
        "burst is accepted at full speed and processed right after. 0: never wait.",
        50.0,
    )
    ingest_max_wait_seconds: float = _doc(
        "Longest a worker waits for a burst to pass before a job or step, so processing never "
        "stops under sustained load. 0: never wait.",
        2.0,
    )


@dataclass(frozen=True)
class OutboundSettings:
    """How replies leave."""

    mode: Literal["sandbox", "smtp"] = _doc(
        "`sandbox`: replies are kept (encrypted) in the outbox and shown in the API instead of "
        "sent. `smtp`: submitted to the relay below.",
        "sandbox",
    )
    relay_host: str = _doc("Submission relay host (your Postfix).", "127.0.0.1")
    relay_port: int = _doc("Submission relay port (587 with STARTTLS, 25 on loopback).", 25)
    relay_username: str = _doc("SMTP AUTH user; empty: no AUTH.", "")
    relay_password: str = _doc("SMTP AUTH password (never logged).", "")
    relay_starttls: bool = _doc("Use STARTTLS with the relay.", False)
    relay_ca_file: str = _doc(
        "PEM CA bundle to verify the relay's certificate (e.g. a self-signed local Postfix). "
        "Empty: the system trust store. Certificates are always verified.",
        "",
    )
    timeout_seconds: float = _doc("Relay connection and command timeout.", 30.0)
    rate_limit_per_sender_hour: int = _doc("Replies per sender per mailbox per hour.", 5)


@dataclass(frozen=True)
class GuardSettings:
    """The outbound guard and inbound threat scoring (docs/guard.md)."""

    internal_hostnames: str = _doc(
        "Comma-separated internal host names the outbound guard never lets out (high severity).", ""
    )
    allow: str = _doc(
        "Comma-separated allow-list: rule ids (`pii.phone`, or a family `pii.*`) to skip, or exact "
        "values that may be sent (e.g. your support phone number).",
        "",
    )
    trusted_authserv_ids: str = _doc(
        "Comma-separated authserv-ids of YOUR MTA's Authentication-Results headers (RFC 8601); only "
        "those SPF/DKIM/DMARC verdicts count. Empty: verdicts are ignored.",
        "",
    )
    inbound_warn_at: int = _doc("Inbound threat score logged as a warning.", 20)
    inbound_escalate_at: int = _doc(
        "Inbound threat score at which the owner decides instead of the model.", 40
    )


@dataclass(frozen=True)
class DkimSettings:
    """DKIM signing of outgoing mail (RFC 6376)."""

    key_dir: str = _doc(
        "Directory of private keys named `<domain>.pem` (RSA) or `<domain>.ed25519.pem`. "
        "Empty: no signing (let your MTA sign).",
        "",
    )
    selector: str = _doc(
        "DKIM selector; publish the public key at `<selector>._domainkey.<domain>`.", "mailhook"
    )


@dataclass(frozen=True)
class AgentSettings:
    """Hosted agent addresses."""

    domain: str = _doc("Domain of hosted agent mailboxes (`handle@domain`).", "agents.localhost")
    fetch_allow_hosts: str = _doc(
        "Comma-separated hosts (`host` or `host:port`) that document fetches and mailbox model URLs "
        "may reach even though they resolve to loopback, private or link-local addresses (your own "
        "wiki or model server). Empty: only public addresses.",
        "",
    )
    fetch_max_bytes: int = _doc("Largest reference document (or manifest) fetched, in bytes.", 2_000_000)
    fetch_timeout_seconds: float = _doc("Deadline of one document fetch, redirects included.", 10.0)
    persona_test_max_per_hour: int = _doc("Persona tests (`POST .../persona/test`) per user per hour.", 10)
    key_requests_per_minute: int = _doc(
        "Requests one agent API key may make per minute, REST and MCP over HTTP (429 with "
        "`Retry-After` past it). Counted per node. 0: no limit.",
        120,
    )
    key_sends_per_minute: int = _doc(
        "Messages one agent API key may send per minute (`send_email`, `reply_email`, any "
        "transport). Counted per node. 0: no limit.",
        20,
    )
    api_inbox_retention_days: int = _doc(
        "Days a message waits (sealed) for a mailbox's own agent (`answered_by = api`) before it is purged.",
        7,
    )


@dataclass(frozen=True)
class BillingSettings:
    """Credits and optional Stripe billing. With no Stripe key, billing is off."""

    stripe_secret_key: str = _doc("Stripe secret key; empty turns billing off (never logged).", "")
    stripe_webhook_secret: str = _doc("Signing secret of the Stripe webhook endpoint (never logged).", "")
    stripe_api_base: str = _doc("Stripe API base URL (only changed for testing).", "https://api.stripe.com")
    price_subscription: str = _doc("Stripe Price id of the monthly subscription.", "")
    price_credit_pack: str = _doc("Stripe Price id of a one-time credit pack.", "")
    credits_per_pack: int = _doc("Credits granted per one-time pack.", 500)
    credits_per_period: int = _doc("Credits granted per paid subscription period.", 1000)
    free_credits: int = _doc("Credits every new user starts with.", 10)
    enforce_quota: bool = _doc(
        "Enforce credits even when Stripe is off (then an admin grants credits).", False
    )
    webhook_tolerance_seconds: int = _doc("Oldest Stripe signature timestamp accepted.", 300)


@dataclass(frozen=True)
class CloudflareSettings:
    """The Cloudflare Email Worker webhook (``POST /api/v1/inbound/cloudflare``, cloudflare/)."""

    webhook_secret: str = _doc(
        "Shared HMAC-SHA256 secret; the worker's `MAILHOOK_SECRET` must be the same (never logged). "
        "Empty: the endpoint is off (404).",
        "",
    )
    max_message_bytes: int = _doc(
        "Largest raw message accepted (bytes); larger gets 413. Cloudflare's own limit is 25 MiB.",
        25 * 1024 * 1024,
    )
    replay_window_seconds: int = _doc(
        "Largest difference, either way, between a request's signed timestamp and this clock.", 300
    )


@dataclass(frozen=True)
class ImapSettings:
    """The IMAP door for external mailboxes and their store operations (docs/imap.md)."""

    enabled: bool = _doc("Watch external mailboxes over IMAP on this node.", True)
    max_accounts: int = _doc("Most external mailboxes this node leases and watches at once.", 500)
    max_concurrent_syncs: int = _doc(
        "Accounts connecting, logging in or fetching at the same time (idling ones do not count).", 20
    )
    lease_seconds: float = _doc(
        "How long a node owns an account without renewing (renewed every third of it); another "
        "node takes the account over when it expires.",
        60.0,
    )
    idle_renew_seconds: float = _doc(
        "IMAP IDLE is ended and re-issued after this long; RFC 2177 asks for less than 29 minutes.",
        1500.0,
    )
    poll_unit_seconds: float = _doc(
        "Seconds per minute of a mailbox's `poll_interval_minutes` (60; only tests shorten it). Also "
        "the poll interval of a push mailbox whose server lacks IDLE.",
        60.0,
    )
    backoff_seconds: float = _doc(
        "First reconnect delay after a connection or login failure; doubles per failure.", 5.0
    )
    backoff_max_seconds: float = _doc("Ceiling of the reconnect delay.", 900.0)
    timeout_seconds: float = _doc("IMAP connect and command timeout.", 30.0)
    ca_file: str = _doc(
        "PEM CA bundle to verify IMAP and account-SMTP servers (e.g. a self-signed one). Empty: the "
        "system trust store. Certificates are always verified.",
        "",
    )
    allow_hosts: str = _doc(
        "Comma-separated hosts (`host` or `host:port`) external mailboxes' IMAP and SMTP servers "
        "may be on although they resolve to loopback, private or link-local addresses (your own "
        "mail server on the LAN). Empty: only public addresses.",
        "",
    )
    backfill_days: int = _doc(
        "On a mailbox's first connection (and after a UIDVALIDITY change) unread messages of the "
        "last N days are fetched too; 0: only mail arriving from then on.",
        2,
    )


@dataclass(frozen=True)
class MilterSettings:
    """The milter door Postfix (`smtpd_milters`) or Stalwart asks about each message (docs/milter.md)."""

    enabled: bool = _doc("Start the milter door.", False)
    host: str = _doc("Address the milter door listens on.", "127.0.0.1")
    port: int = _doc("Port the milter door listens on.", 8897)
    mode: Literal["observe", "enforce"] = _doc(
        "`enforce`: outbound mail from an agent mailbox with a high-severity guard finding is "
        "quarantined (Postfix hold queue). `observe`: it is delivered with an `X-Mailhook-Guard` "
        "header and logged. Inbound score headers are added in both modes.",
        "enforce",
    )
    max_message_bytes: int = _doc(
        "Bytes of a message (headers and body) kept for scoring; the rest passes unscanned and the "
        "rules list `milter.truncated`.",
        10 * 1024 * 1024,
    )
    max_connections: int = _doc("Concurrent milter connections; more wait for a slot.", 50)
    timeout_seconds: float = _doc("A connection silent this long is closed.", 600.0)
    on_error: Literal["continue", "tempfail"] = _doc(
        "Reply when checking a message fails (e.g. the database is down): `continue` lets it pass "
        "unmodified, `tempfail` makes the client retry later.",
        "continue",
    )
    hold_action: Literal["quarantine", "reject"] = _doc(
        "How `enforce` mode holds: `quarantine` asks the MTA to quarantine (Postfix: hold queue); "
        "`reject` refuses the message with 550 5.7.1 (for MTAs without a hold queue, e.g. "
        "Stalwart, which delivers quarantined mail with an `X-Quarantine` header).",
        "quarantine",
    )
    hook_secret: str = _doc(
        "Password Stalwart's MTA Hooks send (HTTP basic auth) to `POST /api/v1/hooks/stalwart`; "
        "empty: that endpoint is off (404). Never logged.",
        "",
    )


@dataclass(frozen=True)
class WebhookSettings:
    """Signed webhooks to users' own URLs (docs/webhooks.md)."""

    enabled: bool = _doc("Run the webhook fan-out and dispatcher on this node.", True)
    allow_http: bool = _doc(
        "Accept `http://` webhook URLs (self-hosting, tests); otherwise https only.", False
    )
    allow_hosts: str = _doc(
        "Comma-separated hosts (`host` or `host:port`) webhooks may reach although they resolve to "
        "loopback, private or link-local addresses. Empty: only public addresses.",
        "",
    )
    timeout_seconds: float = _doc("Deadline of one webhook request (connect, send, answer).", 10.0)
    max_attempts: int = _doc("Attempts before a delivery is given up (`failed`).", 8)
    backoff_seconds: float = _doc("First retry delay; doubles per attempt.", 30.0)
    backoff_max_seconds: float = _doc("Ceiling of the retry delay.", 3600.0)
    poll_seconds: float = _doc("How often the activity log is read for new events.", 1.0)
    max_endpoints_per_user: int = _doc("Webhook endpoints one user may register.", 10)
    retention_days: int = _doc(
        "Finished deliveries (delivered or failed) are deleted after this many days.", 14
    )


@dataclass(frozen=True)
class LogSettings:
    """Logging."""

    level: str = _doc("Log level name.", "INFO")
    json: bool = _doc("JSON lines (true) or human-readable console output (false).", True)


@dataclass(frozen=True)
class Settings:
    """All settings. Build with :func:`load_settings`."""

    data_dir: Path = _doc(
        "Directory for the SQLite database, generated keys and persona history.", Path("var")
    )
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    lmtp: LmtpSettings = field(default_factory=LmtpSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    llm: LlmSettings = field(default_factory=LlmSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    spool: SpoolSettings = field(default_factory=SpoolSettings)
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    agent: AgentSettings = field(default_factory=AgentSettings)
    dkim: DkimSettings = field(default_factory=DkimSettings)
    guard: GuardSettings = field(default_factory=GuardSettings)
    billing: BillingSettings = field(default_factory=BillingSettings)
    cloudflare: CloudflareSettings = field(default_factory=CloudflareSettings)
    imap: ImapSettings = field(default_factory=ImapSettings)
    milter: MilterSettings = field(default_factory=MilterSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    log: LogSettings = field(default_factory=LogSettings)

    @property
    def database_url(self) -> str:
        """The effective database URL (the SQLite default resolved under ``data_dir``)."""
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'mailhook.db').resolve()}"

    @property
    def public_url(self) -> str:
        """Base URL for links users click."""
        return self.http.public_url or f"http://{self.http.host}:{self.http.port}"

    def secret_values(self) -> tuple[str, ...]:
        """Every configured secret, so logging can scrub them wherever they appear."""
        keys = [k for k in self.security.encryption_key.split(",") if k]
        return (
            *keys,
            self.security.jwt_secret,
            self.llm.api_key,
            self.outbound.relay_password,
            self.billing.stripe_secret_key,
            self.billing.stripe_webhook_secret,
            self.cloudflare.webhook_secret,
            self.milter.hook_secret,
        )

    @property
    def billing_enabled(self) -> bool:
        """Stripe billing is on when a secret key is configured."""
        return bool(self.billing.stripe_secret_key)

    @property
    def quota_enforced(self) -> bool:
        """Credits are counted down (and mailboxes paused at zero) only when this is true."""
        return self.billing_enabled or self.billing.enforce_quota


SECTIONS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Settings) if f.name != "data_dir")


def _coerce(raw: Any, annotation: Any, where: str) -> Any:
    """Turn an env string or TOML value into the field's type, or fail with a clear error."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        allowed = typing.get_args(annotation)
        if raw not in allowed:
            raise ConfigError(f"{where}: {raw!r} is not one of {', '.join(map(str, allowed))}")
        return raw
    if annotation is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off", ""}:
            return False
        raise ConfigError(f"{where}: {raw!r} is not a boolean (true/false)")
    if annotation in (int, float):
        try:
            return annotation(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: {raw!r} is not a number") from None
    if annotation is Path:
        return Path(str(raw))
    if annotation is str:
        if not isinstance(raw, str):
            raise ConfigError(f"{where}: expected a string, got {type(raw).__name__}")
        return raw
    raise ConfigError(f"{where}: unsupported setting type {annotation!r}")  # pragma: no cover


def _env_name(section: str | None, name: str) -> str:
    return f"{ENV_PREFIX}{section.upper()}_{name.upper()}" if section else f"{ENV_PREFIX}{name.upper()}"


def iter_fields() -> typing.Iterator[tuple[str | None, dataclasses.Field[Any], Any]]:
    """Every leaf setting as (section or None, field, resolved type)."""
    hints = typing.get_type_hints(Settings)
    for top in dataclasses.fields(Settings):
        kind = hints[top.name]
        if dataclasses.is_dataclass(kind):
            sub_hints = typing.get_type_hints(kind)
            for leaf in dataclasses.fields(kind):
                yield top.name, leaf, sub_hints[leaf.name]
        else:
            yield None, top, kind


def env_var_names() -> list[str]:
    """All environment variable names mailhook reads (for docs and ``mailhook check``)."""
    return [_env_name(section, f.name) for section, f, _ in iter_fields()]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"MAILHOOK_CONFIG: {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"MAILHOOK_CONFIG: {path} is not valid TOML: {exc}") from None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from defaults, the TOML file and the environment."""
    env = os.environ if env is None else env
    overlay = _read_toml(Path(env[f"{ENV_PREFIX}CONFIG"])) if env.get(f"{ENV_PREFIX}CONFIG") else {}
    known = {None, *SECTIONS}
    unknown = [k for k, v in overlay.items() if isinstance(v, dict) and k not in known]
    if unknown:
        raise ConfigError(f"MAILHOOK_CONFIG: unknown section(s): {', '.join(sorted(unknown))}")
    values: dict[str | None, dict[str, Any]] = {s: {} for s in known}
    for section, leaf, kind in iter_fields():
        source = overlay.get(section, {}) if section else overlay
        where = _env_name(section, leaf.name)
        if where in env:
            values[section][leaf.name] = _coerce(env[where], kind, where)
        elif leaf.name in source:
            values[section][leaf.name] = _coerce(source[leaf.name], kind, f"{section}.{leaf.name}")
    hints = typing.get_type_hints(Settings)
    sections = {name: hints[name](**values[name]) for name in SECTIONS}
    settings = Settings(**values[None], **sections)
    _validate(settings)
    return settings


def _validate(settings: Settings) -> None:
    problems = [
        f"{name} port {port} is out of range"
        for name, port in (
            ("lmtp", settings.lmtp.port),
            ("smtp", settings.smtp.port),
            ("http", settings.http.port),
            ("milter", settings.milter.port),
        )
        if not 0 <= port <= 65535
    ]
    if bool(settings.smtp.tls_cert) != bool(settings.smtp.tls_key):
        problems.append("smtp.tls_cert and smtp.tls_key must be set together")
    if settings.spool.workers < 1:
        problems.append("spool.workers must be at least 1")
    if not 1 <= settings.imap.idle_renew_seconds <= 1740:
        problems.append("imap.idle_renew_seconds must be between 1 and 1740 (RFC 2177: under 29 minutes)")
    if settings.imap.lease_seconds <= 0 or settings.imap.max_concurrent_syncs < 1:
        problems.append("imap.lease_seconds must be positive and imap.max_concurrent_syncs at least 1")
    if settings.milter.max_connections < 1 or settings.milter.max_message_bytes < 1:
        problems.append("milter.max_connections and milter.max_message_bytes must be at least 1")
    for name, hosts in (
        ("agent.fetch_allow_hosts", settings.agent.fetch_allow_hosts),
        ("webhooks.allow_hosts", settings.webhooks.allow_hosts),
        ("imap.allow_hosts", settings.imap.allow_hosts),
    ):
        try:
            parse_allow_list(hosts)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    if min(settings.agent.key_requests_per_minute, settings.agent.key_sends_per_minute) < 0:
        problems.append("agent.key_requests_per_minute and agent.key_sends_per_minute must not be negative")
    if problems:
        raise ConfigError("; ".join(problems))


def _read_or_create_secret(path: Path, make: typing.Callable[[], str]) -> tuple[str, bool]:
    """Return (secret, created). Created files are mode 0600 from the first byte (O_EXCL)."""
    try:
        return path.read_text().strip(), False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value, True


def _new_fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def ensure_secrets(settings: Settings) -> tuple[Settings, list[Path]]:
    """Fill empty secrets from (or generate into) the data dir. Returns the files created."""
    created: list[Path] = []
    security = settings.security
    if not security.encryption_key:
        key, new = _read_or_create_secret(settings.data_dir / "encryption.key", _new_fernet_key)
        security = dataclasses.replace(security, encryption_key=key)
        created += [settings.data_dir / "encryption.key"] if new else []
    if not security.jwt_secret:
        jwt, new = _read_or_create_secret(settings.data_dir / "jwt.secret", lambda: secrets.token_urlsafe(48))
        security = dataclasses.replace(security, jwt_secret=jwt)
        created += [settings.data_dir / "jwt.secret"] if new else []
    return dataclasses.replace(settings, security=security), created


__all__ = ["Settings", "ensure_secrets", "env_var_names", "iter_fields", "load_settings"]
