"""Wiring: build every service object once; doors, workers, API and CLI share them."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mailhook.agent.briefing import RequestBuilder
from mailhook.agent.decision import Decider
from mailhook.agent.providers import provider_for
from mailhook.agent.registry import ModelRegistry
from mailhook.agentapi.inbox import AgentInbox, AgentInboxStep
from mailhook.agentapi.primitives import AgentPrimitives
from mailhook.agentapi.wiring import build_agent_api
from mailhook.billing.credits import Credits
from mailhook.billing.notice import BillingNotices
from mailhook.crypto import Sealer
from mailhook.doors.imap.accounts import ExternalAccounts
from mailhook.doors.imap.state import ImapStates
from mailhook.doors.imap.store import MailStore
from mailhook.doors.imap.thread import ThreadReader
from mailhook.errors import ConfigError
from mailhook.guard.outbound import OutboundGuard
from mailhook.observe import Metrics
from mailhook.outbound.account_smtp import AccountSmtp
from mailhook.outbound.delivery import OutgoingDelivery
from mailhook.outbound.dkim import DkimSigner
from mailhook.outbound.owner_notices import OwnerNotices
from mailhook.outbound.routing import RoutingTransport
from mailhook.outbound.sandbox import SandboxTransport
from mailhook.outbound.smtp import SmtpTransport
from mailhook.outbound.transport import Transport
from mailhook.oversight.approvals import Approvals
from mailhook.oversight.mail_approval import ApprovalTokens
from mailhook.pipeline.context import MessageContext
from mailhook.pipeline.pipeline import Pipeline
from mailhook.pipeline.steps.approval import ApprovalNoticeStep, ApprovalReplyStep
from mailhook.pipeline.steps.bounce import BounceStep
from mailhook.pipeline.steps.compose import ComposeStep
from mailhook.pipeline.steps.context import ContextStep
from mailhook.pipeline.steps.decide import DecideStep
from mailhook.pipeline.steps.deliver import DeliverStep
from mailhook.pipeline.steps.escalation import EscalationNoticeStep
from mailhook.pipeline.steps.guards import EtiquetteGuardStep
from mailhook.pipeline.steps.imap_thread import ImapThreadStep
from mailhook.pipeline.steps.mailbox import MailboxStep
from mailhook.pipeline.steps.mailstore import MailStoreStep
from mailhook.pipeline.steps.monitor import MonitorCopyStep
from mailhook.pipeline.steps.outbound_guard import OutboundGuardStep
from mailhook.pipeline.steps.oversight import OversightStep
from mailhook.pipeline.steps.parse import ParseStep
from mailhook.pipeline.steps.record import RecordStep
from mailhook.pipeline.steps.resume import ResumeStep
from mailhook.pipeline.steps.threat import ThreatStep, split_list
from mailhook.settings import Settings
from mailhook.spool.pg_writer import PostgresWriter
from mailhook.spool.spool import ClaimedJob, Spool
from mailhook.spool.writer import JobWriter, SqliteThreadWriter
from mailhook.store.activity import ActivityLog
from mailhook.store.db import create_engine, is_sqlite, session_factory
from mailhook.store.directory import Directory
from mailhook.store.replies import ReplyStore
from mailhook.store.suppressions import Suppressions, UnsubscribeLinks
from mailhook.webhooks.service import Webhooks


def make_decider(settings: Settings) -> Decider:
    """The configured model provider (``llm.provider``: none, openai or anthropic); the model
    registry meters it (mailhook/observe.py)."""
    return provider_for(settings.llm)


def make_transport(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], sealer: Sealer
) -> Transport:
    """The configured delivery method; in ``smtp`` mode external mailboxes send through their
    own account SMTP (outbound/routing.py)."""
    if settings.outbound.mode == "smtp":
        return RoutingTransport(
            SmtpTransport(settings.outbound),
            ExternalAccounts(sessions, sealer),
            AccountSmtp(
                ca_file=settings.imap.ca_file,
                timeout=settings.outbound.timeout_seconds,
                allow_hosts=settings.imap.allow_hosts,
            ),
            sessions,
            MailStore(settings.imap),
        )
    return SandboxTransport(sessions, sealer)


def mail_store_step(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> MailStoreStep:
    """Sent copies, drafts and escalation flags in external mailboxes (doors/imap/store.py)."""
    sealer = Sealer(settings.security.encryption_key)
    return MailStoreStep(
        ExternalAccounts(sessions, sealer),
        ImapStates(sessions),
        MailStore(settings.imap),
        ReplyStore(sessions, sealer),
    )


def imap_thread_step(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> ImapThreadStep:
    """Earlier messages of a thread from an external mailbox's store (doors/imap/thread.py)."""
    accounts = ExternalAccounts(sessions, Sealer(settings.security.encryption_key))
    return ImapThreadStep(accounts, ThreadReader(MailStore(settings.imap)))


def make_job_writer(url: str) -> JobWriter:
    """The doors' group-commit writer for the configured database."""
    if not is_sqlite(url):
        return PostgresWriter(url)
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ConfigError("database.url: an in-memory SQLite database cannot hold the spool; name a file")
    return SqliteThreadWriter(database)


def make_outbound_guard(settings: Settings) -> OutboundGuard:
    """The one outbound guard configuration: the pipeline and the milter door both use it."""
    return OutboundGuard(
        internal_hostnames=split_list(settings.guard.internal_hostnames),
        allow=split_list(settings.guard.allow),
    )


def build_pipeline(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    models: ModelRegistry,
    delivery: OutgoingDelivery,
    activity: ActivityLog,
    approvals: Approvals,
    billing: BillingNotices,
) -> Pipeline:
    """parse → mailbox → resume → bounce → guards → context → decide → compose → outbound guard →
    oversight → deliver, then escalation notice and record."""
    replies = delivery.replies
    secret = settings.security.jwt_secret
    tokens = ApprovalTokens(secret)
    deliver = DeliverStep(delivery)
    steps = (
        ParseStep(),
        MailboxStep(sessions),
        ApprovalReplyStep(sessions, approvals, tokens),
        ResumeStep(replies, deliver),
        BounceStep(sessions),
        EtiquetteGuardStep(activity, Suppressions(sessions), settings.outbound.rate_limit_per_sender_hour),
        ThreatStep(settings.guard),
        AgentInboxStep(AgentInbox(sessions, Sealer(settings.security.encryption_key), settings)),
        ContextStep(RequestBuilder(settings), models),
        imap_thread_step(settings, sessions),
        DecideStep(models),
        ComposeStep(
            settings.security.jwt_secret, UnsubscribeLinks(settings.security.jwt_secret, settings.public_url)
        ),
        OutboundGuardStep(make_outbound_guard(settings)),
        OversightStep(replies),
        deliver,
    )
    notices = OwnerNotices(delivery, secret)
    after = (
        EscalationNoticeStep(notices),
        ApprovalNoticeStep(notices, tokens, settings.public_url),
        MonitorCopyStep(notices),
        mail_store_step(settings, sessions),
        RecordStep(activity, billing),
    )
    return Pipeline(steps, after)


@dataclass
class Services:
    """Everything a running mailhook needs, built once."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    sealer: Sealer
    spool: Spool
    directory: Directory
    activity: ActivityLog
    replies: ReplyStore
    transport: Transport
    decider: Decider
    metrics: Metrics = field(default_factory=Metrics)
    pipeline: Pipeline = field(init=False)
    approvals: Approvals = field(init=False)
    agent: AgentPrimitives = field(init=False)
    #: The model of each mailbox (the install's ``decider``, or a mailbox's own override).
    models: ModelRegistry = field(init=False)
    #: Webhook endpoints, fan-out and deliveries (docs/webhooks.md).
    webhooks: Webhooks = field(init=False)
    #: Credits charged outside the pipeline, with the owner's out-of-credits notice.
    billing: BillingNotices = field(init=False)

    def __post_init__(self) -> None:
        signer = DkimSigner(self.settings.dkim.key_dir, self.settings.dkim.selector)
        delivery = OutgoingDelivery(self.replies, self.transport, signer)
        # mh_test_ agent keys never deliver: their mail always goes to the sandbox outbox.
        sandbox = OutgoingDelivery(self.replies, SandboxTransport(self.sessions, self.sealer), signer)
        self.billing = BillingNotices(
            self.sessions,
            Credits(self.sessions, self.settings),
            OwnerNotices(delivery, self.settings.security.jwt_secret),
            self.settings.public_url,
        )
        self.approvals = Approvals(
            self.sessions,
            self.sealer,
            delivery,
            self.activity,
            sandbox=sandbox,
            billing=self.billing,
        )
        self.agent = build_agent_api(
            self.settings,
            self.sessions,
            self.sealer,
            self.activity,
            self.approvals,
            delivery,
            sandbox,
            guard=make_outbound_guard(self.settings),
        )
        self.models = ModelRegistry(self.settings, self.sealer, self.decider, metrics=self.metrics)
        self.webhooks = Webhooks(
            self.engine, self.sessions, self.sealer, self.settings.webhooks, self.spool.node
        )
        self.pipeline = build_pipeline(
            self.settings, self.sessions, self.models, delivery, self.activity, self.approvals, self.billing
        )

    async def run_job(self, job: ClaimedJob) -> str:
        """Worker entry point: one job through the pipeline; returns the action name."""
        ctx = MessageContext(job=job)
        started = time.monotonic()
        try:
            outcome = await self.pipeline.run(ctx, between=self.spool.ingest.lull)
        except Exception:
            self.metrics.job_failed(time.monotonic() - started)
            raise
        findings = [(f.rule, f.severity) for f in ctx.findings]
        self.metrics.job_finished(outcome.action.value, time.monotonic() - started, findings)
        return outcome.action.value

    async def close(self) -> None:
        """Release connections."""
        await self.spool.close()
        await self.models.aclose()  # every model client, the install's decider included
        await self.webhooks.close()
        await self.engine.dispose()


def build_services(settings: Settings, *, decider: Decider | None = None) -> Services:
    """Build services for settings whose secrets are filled (see ``ensure_secrets``)."""
    engine = create_engine(
        settings.database_url, pool_size=settings.database.pool_size, echo=settings.database.echo
    )
    sessions = session_factory(engine)
    sealer = Sealer(settings.security.encryption_key)
    node = settings.spool.node_name or socket.gethostname()
    metrics = Metrics()
    return Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        sealer=sealer,
        spool=Spool(sessions, sealer, settings.spool, node, make_job_writer(settings.database_url)),
        directory=Directory(sessions),
        activity=ActivityLog(sessions),
        replies=ReplyStore(sessions, sealer),
        transport=make_transport(settings, sessions, sealer),
        decider=decider or make_decider(settings),
        metrics=metrics,
    )
