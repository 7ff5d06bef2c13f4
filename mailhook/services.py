"""Wiring: build every service object once; doors, workers, API and CLI share them."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mailhook.agent.decision import Decider
from mailhook.agent.providers import provider_for
from mailhook.billing.credits import Credits
from mailhook.crypto import Sealer
from mailhook.guard.outbound import OutboundGuard
from mailhook.outbound.delivery import OutgoingDelivery
from mailhook.outbound.dkim import DkimSigner
from mailhook.outbound.owner_notices import OwnerNotices
from mailhook.outbound.sandbox import SandboxTransport
from mailhook.outbound.smtp import SmtpTransport
from mailhook.outbound.transport import Transport
from mailhook.oversight.approvals import Approvals
from mailhook.oversight.mail_approval import ApprovalTokens
from mailhook.pipeline.context import MessageContext
from mailhook.pipeline.pipeline import Pipeline
from mailhook.pipeline.steps.approval import ApprovalNoticeStep, ApprovalReplyStep
from mailhook.pipeline.steps.compose import ComposeStep
from mailhook.pipeline.steps.context import ContextStep
from mailhook.pipeline.steps.decide import DecideStep
from mailhook.pipeline.steps.deliver import DeliverStep
from mailhook.pipeline.steps.escalation import EscalationNoticeStep
from mailhook.pipeline.steps.guards import EtiquetteGuardStep
from mailhook.pipeline.steps.mailbox import MailboxStep
from mailhook.pipeline.steps.monitor import MonitorCopyStep
from mailhook.pipeline.steps.outbound_guard import OutboundGuardStep
from mailhook.pipeline.steps.oversight import OversightStep
from mailhook.pipeline.steps.parse import ParseStep
from mailhook.pipeline.steps.record import RecordStep
from mailhook.pipeline.steps.resume import ResumeStep
from mailhook.pipeline.steps.threat import ThreatStep, split_list
from mailhook.settings import Settings
from mailhook.spool.spool import ClaimedJob, Spool
from mailhook.store.activity import ActivityLog
from mailhook.store.db import create_engine, session_factory
from mailhook.store.directory import Directory
from mailhook.store.replies import ReplyStore
from mailhook.store.suppressions import Suppressions, UnsubscribeLinks


def make_decider(settings: Settings) -> Decider:
    """The configured model provider (``llm.provider``: none, openai or anthropic)."""
    return provider_for(settings.llm)


def make_transport(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], sealer: Sealer
) -> Transport:
    """The configured delivery method."""
    if settings.outbound.mode == "smtp":
        return SmtpTransport(settings.outbound)
    return SandboxTransport(sessions, sealer)


def build_pipeline(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    decider: Decider,
    delivery: OutgoingDelivery,
    activity: ActivityLog,
    approvals: Approvals,
) -> Pipeline:
    """parse → mailbox → resume → guards → context → decide → compose → outbound guard →
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
        EtiquetteGuardStep(activity, Suppressions(sessions), settings.outbound.rate_limit_per_sender_hour),
        ThreatStep(settings.guard),
        ContextStep(),
        DecideStep(decider),
        ComposeStep(
            settings.security.jwt_secret, UnsubscribeLinks(settings.security.jwt_secret, settings.public_url)
        ),
        OutboundGuardStep(
            OutboundGuard(
                internal_hostnames=split_list(settings.guard.internal_hostnames),
                allow=split_list(settings.guard.allow),
            )
        ),
        OversightStep(replies),
        deliver,
    )
    notices = OwnerNotices(delivery, secret)
    after = (
        EscalationNoticeStep(notices),
        ApprovalNoticeStep(notices, tokens, settings.public_url),
        MonitorCopyStep(notices),
        RecordStep(activity, Credits(sessions, settings), notices, settings.public_url),
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
    pipeline: Pipeline = field(init=False)
    approvals: Approvals = field(init=False)

    def __post_init__(self) -> None:
        signer = DkimSigner(self.settings.dkim.key_dir, self.settings.dkim.selector)
        delivery = OutgoingDelivery(self.replies, self.transport, signer)
        self.approvals = Approvals(self.sessions, self.sealer, delivery, self.activity)
        self.pipeline = build_pipeline(
            self.settings, self.sessions, self.decider, delivery, self.activity, self.approvals
        )

    async def run_job(self, job: ClaimedJob) -> str:
        """Worker entry point: one job through the pipeline; returns the action name."""
        outcome = await self.pipeline.run(MessageContext(job=job))
        return outcome.action.value

    async def close(self) -> None:
        """Release connections."""
        closer = getattr(self.decider, "aclose", None)
        if closer is not None:
            await closer()
        await self.engine.dispose()


def build_services(settings: Settings, *, decider: Decider | None = None) -> Services:
    """Build services for settings whose secrets are filled (see ``ensure_secrets``)."""
    engine = create_engine(
        settings.database_url, pool_size=settings.database.pool_size, echo=settings.database.echo
    )
    sessions = session_factory(engine)
    sealer = Sealer(settings.security.encryption_key)
    node = settings.spool.node_name or socket.gethostname()
    return Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        sealer=sealer,
        spool=Spool(sessions, sealer, settings.spool, node),
        directory=Directory(sessions),
        activity=ActivityLog(sessions),
        replies=ReplyStore(sessions, sealer),
        transport=make_transport(settings, sessions, sealer),
        decider=decider or make_decider(settings),
    )
