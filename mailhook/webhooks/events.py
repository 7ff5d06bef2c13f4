"""Webhook events: which activity rows they come from, and their payloads (metadata only).

=====================  ===================================================================
event                  activity row it comes from
=====================  ===================================================================
``message.sent``       ``replied``: a reply left (autonomous, monitored, or approved later)
``pending.created``    ``queued``: a reply is held for the owner's approval (gated mode or
                       a high-severity outbound guard finding; oversight/approvals.py)
``escalation``         ``escalated``: the owner decides instead of the agent
``message.bounced``    ``bounced``: a delivery status notification arrived (mail/dsn.py)
``ping``               ``POST /api/v1/webhooks/{id}/test`` (no activity row)
=====================  ===================================================================

Payloads never carry a body, subject, or a free-text reason a model wrote: ids, addresses of
the user's own mailbox, counts, status codes and rule ids only.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from mailhook.store.activity import ActivityAction

PING: Final = "ping"
EVENT_FOR_ACTION: Final[dict[str, str]] = {
    ActivityAction.REPLIED.value: "message.sent",
    ActivityAction.QUEUED.value: "pending.created",
    ActivityAction.ESCALATED.value: "escalation",
    ActivityAction.BOUNCED.value: "message.bounced",
}
#: Events an endpoint can subscribe to (``ping`` always reaches it).
EVENTS: Final = tuple(EVENT_FOR_ACTION.values())


@dataclass(frozen=True, slots=True)
class ActivityFacts:
    """What the fan-out knows about one activity row and its job's outgoing reply."""

    activity_id: int
    action: str
    created_at: datetime
    mailbox_id: int
    mailbox_address: str
    job_id: int | None
    detail: dict[str, Any]
    reply_id: int | None = None
    reply_message_id: str | None = None
    reply_recipients: int | None = None


def iso(moment: datetime) -> str:
    """RFC 3339 UTC with a ``Z``."""
    return moment.isoformat().replace("+00:00", "Z")


def event_id(activity_id: int) -> str:
    """The event's id: one per activity row, the same for every endpoint that receives it."""
    return f"evt_{activity_id}"


def payload_for(facts: ActivityFacts) -> dict[str, Any]:
    """The JSON payload of the event ``facts`` stand for (metadata only)."""
    event = EVENT_FOR_ACTION[facts.action]
    data: dict[str, Any] = {
        "mailbox": {"id": facts.mailbox_id, "address": facts.mailbox_address},
        "job_id": facts.job_id,
    }
    if event == "message.sent":
        data |= {"reply_message_id": facts.reply_message_id, "recipients": facts.reply_recipients}
    elif event == "pending.created":
        data |= {
            "pending_id": facts.reply_id,
            "recipients": facts.reply_recipients,
            "rules": _strings(facts.detail.get("rules")),
        }
    elif event == "escalation":
        trigger = facts.detail.get("trigger")
        data |= {"trigger": trigger if isinstance(trigger, str) else None}
    else:
        data |= _bounce(facts.detail)
    return {
        "id": event_id(facts.activity_id),
        "type": event,
        "created_at": iso(facts.created_at),
        "data": data,
    }


def ping_payload(endpoint_id: int, now: datetime) -> dict[str, Any]:
    """The payload of a test delivery."""
    return {
        "id": f"evt_ping_{secrets.token_hex(8)}",
        "type": PING,
        "created_at": iso(now),
        "data": {"webhook_id": endpoint_id},
    }


def _bounce(detail: dict[str, Any]) -> dict[str, Any]:
    counts = detail.get("counts")
    return {
        "bounce": {"kind": detail.get("kind"), "status": detail.get("status")},
        "recipients": counts if isinstance(counts, dict) else {},
        "reply_message_id": detail.get("reply_message_id"),
    }


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []
