"""Approval by e-mail: the owner answers the "approval needed" notice with one word.

The notice's Reply-To is ``<mailbox local>+approve-<reply id>-<mac>@<mailbox domain>``: a
one-time capability, HMAC-signed with the installation secret, valid only for that held reply.
An answer is accepted only with a valid token AND from the owner's address, never on ``From``
alone (DESIGN.md invariant 5: the owner alone approves held mail).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from email.message import EmailMessage

from mailhook.mail.notices import compose_approval_notice
from mailhook.outbound.delivery import Delivered
from mailhook.outbound.owner_notices import OwnerNotices
from mailhook.store.models import Mailbox, OutgoingKind, utcnow

APPROVE_WORDS = frozenset({"approve", "approved", "yes", "lgtm", "send", "ok", "okay"})
REJECT_WORDS = frozenset({"reject", "rejected", "no", "deny", "cancel"})
_TAG = re.compile(r"^approve-(\d{1,12})-([a-z2-7]{16})$")
_QUOTE_HEADER = re.compile(r"^on .+ wrote:$", re.IGNORECASE)


class ApprovalTokens:
    """Sign and check approval reply addresses."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"mailhook-approval:" + secret.encode()).digest()

    def _mac(self, reply_id: int) -> str:
        digest = hmac.digest(self._key, str(reply_id).encode(), "sha256")[:10]
        return base64.b32encode(digest).decode().lower()

    def reply_address(self, mailbox_address: str, reply_id: int) -> str:
        """Where the owner's answer goes (the mailbox itself, with a signed sub-address)."""
        local, _, domain = mailbox_address.partition("@")
        return f"{local}+approve-{reply_id}-{self._mac(reply_id)}@{domain}"

    def reply_id(self, recipient: str) -> int | None:
        """The held reply a recipient address approves; None if it carries no approval tag.

        Raises ValueError for a tag whose signature is wrong (a forged or mangled address).
        """
        local = recipient.strip().strip("<>").rpartition("@")[0].lower()
        _, plus, tag = local.partition("+")
        if not plus or not tag.startswith("approve-"):
            return None
        match = _TAG.match(tag)
        if match is None or not hmac.compare_digest(self._mac(int(match.group(1))), match.group(2)):
            raise ValueError("approval address with a bad signature")
        return int(match.group(1))


def decision_word(text: str) -> str | None:
    """``approve`` / ``reject`` from the first word of the owner's answer, else None.

    Only the first non-empty line that is not quoted counts: mail clients put the answer above
    the quoted notice (which itself contains both words).
    """
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(">") or _QUOTE_HEADER.match(stripped):
            continue
        first = re.split(r"[\s.,!:;]+", stripped.lower(), maxsplit=1)[0]
        if first in APPROVE_WORDS:
            return "approve"
        if first in REJECT_WORDS:
            return "reject"
        return None
    return None


class ApprovalNotice:
    """The owner's notice that a reply is held: the reply, why, and a signed Reply-To address to
    answer with one word. The pipeline (a held reply) and the agent API (a gated send) both send
    it through their channel's :class:`OwnerNotices` (one per job, crash-safe)."""

    def __init__(self, tokens: ApprovalTokens, public_url: str) -> None:
        self._tokens = tokens
        self._review_url = public_url.rstrip("/") + "/pending"

    async def send(
        self,
        notices: OwnerNotices,
        job_id: int,
        mailbox: Mailbox,
        owner_email: str,
        held: tuple[int, bytes],
        reasons: list[str],
    ) -> Delivered:
        """Compose (once) and deliver the notice for the held reply ``(id, data)``."""
        held_id, held_data = held
        reply_to = self._tokens.reply_address(mailbox.address, held_id)

        def compose(message_id: str) -> EmailMessage:
            return compose_approval_notice(
                owner=owner_email,
                mailbox_address=mailbox.address,
                reply_to=reply_to,
                held_reply=held_data,
                reasons=reasons,
                review_url=self._review_url,
                message_id=message_id,
                date=utcnow(),
            )

        return await notices.send(OutgoingKind.APPROVAL_NOTICE, job_id, mailbox, owner_email, compose)
