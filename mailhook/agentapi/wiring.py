"""Builds the agent API's services from the installation's shared ones (called by ``services``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.agentapi.audit import AuditTrail
from mailhook.agentapi.inbox import AgentInbox
from mailhook.agentapi.keys import AgentKeys
from mailhook.agentapi.limits import KeyLimits
from mailhook.agentapi.outgoing import AgentOutbox
from mailhook.agentapi.primitives import AgentPrimitives
from mailhook.crypto import Sealer
from mailhook.guard.outbound import OutboundGuard
from mailhook.outbound.delivery import OutgoingDelivery
from mailhook.oversight.approvals import Approvals
from mailhook.settings import Settings
from mailhook.store.activity import ActivityLog
from mailhook.store.suppressions import UnsubscribeLinks


def build_agent_api(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    sealer: Sealer,
    activity: ActivityLog,
    approvals: Approvals,
    live: OutgoingDelivery,
    sandbox: OutgoingDelivery,
    *,
    guard: OutboundGuard,
) -> AgentPrimitives:
    """The primitives over the same outbound guard, deliveries and approval queue as replies."""
    secret = settings.security.jwt_secret
    outbox = AgentOutbox(sessions, secret, activity, guard, live, sandbox, settings.public_url)
    return AgentPrimitives(
        sessions,
        AgentKeys(sessions),
        AuditTrail(sessions),
        AgentInbox(sessions, sealer, settings),
        outbox,
        approvals,
        UnsubscribeLinks(secret, settings.public_url),
        KeyLimits.from_settings(settings.agent),
    )
