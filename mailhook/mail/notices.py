"""Messages mailhook writes to a mailbox owner (escalations), built from parsed mail.

Notices quote the sender's text for the owner only. They carry ``Auto-Submitted:
auto-generated`` (RFC 3834 §5) so the owner's own auto-responder never answers them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime

from .headers import strip_controls
from .parse import ParsedMessage

MAX_QUOTED_CHARS = 20_000


def _quote(text: str) -> str:
    clipped = text[:MAX_QUOTED_CHARS] + ("\n[… cut]" if len(text) > MAX_QUOTED_CHARS else "")
    return "\n".join("> " + line for line in clipped.splitlines()) or "> (empty)"


def escalation_subject(subject: str) -> str:
    """``[mailhook] Escalation: <subject>`` with the subject cleaned of control characters."""
    return f"[mailhook] Escalation: {strip_controls(subject) or '(no subject)'}"


def compose_escalation(
    parent: ParsedMessage,
    *,
    owner: str,
    mailbox_address: str,
    reason: str,
    trigger: str,
    tentative_reply: str,
    message_id: str,
    date: datetime,
) -> EmailMessage:
    """The owner's notice: who wrote, why it was escalated, the original and the draft answer."""
    msg = EmailMessage()
    msg["From"] = Address(display_name="mailhook", addr_spec=mailbox_address)
    msg["To"] = owner
    msg["Subject"] = escalation_subject(parent.subject)
    msg["Date"] = format_datetime(date if date.tzinfo else date.replace(tzinfo=UTC))
    msg.set_raw("Message-ID", message_id)
    msg.set_raw("Auto-Submitted", "auto-generated")
    if parent.message_id:
        msg.set_raw("References", parent.message_id)
    lines = [
        f"The agent for {mailbox_address} did not answer this message and is asking you.",
        "",
        f"From: {parent.from_name} <{parent.from_addr}>".strip(),
        f"Subject: {parent.subject}",
        f"Reason: {reason or 'not given'}",
    ]
    if trigger:
        lines.append(f"Escalation trigger: {trigger}")
    lines += ["", "Original message:", _quote(parent.text)]
    if tentative_reply.strip():
        lines += ["", "Tentative reply (not sent):", _quote(tentative_reply)]
    msg.set_content("\n".join(lines), charset="utf-8", cte="quoted-printable")
    return msg


def compose_billing_notice(
    *, owner: str, mailbox_address: str, billing_url: str, message_id: str, date: datetime
) -> EmailMessage:
    """The one notice an owner gets when credits run out and the agents pause."""
    msg = EmailMessage()
    msg["From"] = Address(display_name="mailhook", addr_spec=mailbox_address)
    msg["To"] = owner
    msg["Subject"] = "[mailhook] Out of credits: your agents are paused"
    msg["Date"] = format_datetime(date if date.tzinfo else date.replace(tzinfo=UTC))
    msg.set_raw("Message-ID", message_id)
    msg.set_raw("Auto-Submitted", "auto-generated")
    msg.set_content(
        "Your mailhook agents have used all their credits and are paused (pending billing).\n"
        "Incoming mail is still accepted and logged, but not answered.\n\n"
        f"Buy credits or subscribe to resume them automatically: {billing_url}\n",
        charset="utf-8",
    )
    return msg


def compose_monitor_copy(
    *, owner: str, mailbox_address: str, reply: bytes, message_id: str, date: datetime
) -> EmailMessage:
    """Monitored mode: the owner's copy of a reply the agent just sent, attached whole."""
    original = message_from_bytes(reply, policy=default_policy)
    msg = EmailMessage()
    msg["From"] = Address(display_name="mailhook", addr_spec=mailbox_address)
    msg["To"] = owner
    msg["Subject"] = f"[mailhook] Sent: {strip_controls(str(original.get('subject', '')))}"
    msg["Date"] = format_datetime(date if date.tzinfo else date.replace(tzinfo=UTC))
    msg.set_raw("Message-ID", message_id)
    msg.set_raw("Auto-Submitted", "auto-generated")
    msg.set_content(
        f"The agent for {mailbox_address} sent the attached reply (monitored mode).\n"
        f"To: {original.get('to', '')}\nCc: {original.get('cc', '') or '-'}\n",
        charset="utf-8",
    )
    msg.add_attachment(original, filename="reply.eml")
    return msg


def compose_approval_notice(
    *,
    owner: str,
    mailbox_address: str,
    reply_to: str,
    held_reply: bytes,
    reasons: list[str],
    review_url: str,
    message_id: str,
    date: datetime,
) -> EmailMessage:
    """ "Approval needed": the held reply, why it was held, and how to answer by mail."""
    held = message_from_bytes(held_reply, policy=default_policy)
    body = held.get_body(preferencelist=("plain",)) if isinstance(held, EmailMessage) else None
    text = body.get_content() if body is not None else ""
    msg = EmailMessage()
    msg["From"] = Address(display_name="mailhook", addr_spec=mailbox_address)
    msg["To"] = owner
    msg.set_raw("Reply-To", reply_to)
    msg["Subject"] = f"[mailhook] Approval needed: {strip_controls(str(held.get('subject', '')))}"
    msg["Date"] = format_datetime(date if date.tzinfo else date.replace(tzinfo=UTC))
    msg.set_raw("Message-ID", message_id)
    msg.set_raw("Auto-Submitted", "auto-generated")
    lines = [
        "Reply to this message with APPROVE (or yes / send / ok) to send the reply below,",
        "or REJECT (or no / cancel) to drop it. Only the first word of your answer counts.",
        f"You can also review and edit it here: {review_url}",
        "",
        f"To: {held.get('to', '')}",
        f"Cc: {held.get('cc', '') or '-'}",
        f"Held because: {'; '.join(reasons) or 'gated mode'}",
        "",
        "Reply waiting for approval:",
        _quote(text),
    ]
    msg.set_content("\n".join(lines), charset="utf-8", cte="quoted-printable")
    return msg
