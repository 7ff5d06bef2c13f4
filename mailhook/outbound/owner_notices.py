"""Mail to a mailbox owner about one job (escalation, approval needed, monitored copy, out of
credits): one deterministic Message-ID per (job, kind) and one outgoing record, delivered by
the same crash-safe path as replies, so a retried job never mails the owner twice.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from email.message import EmailMessage

from mailhook.mail.addresses import domain_of
from mailhook.mail.compose import make_message_id, render_bytes
from mailhook.outbound.delivery import Delivered, OutgoingDelivery
from mailhook.store.models import Mailbox, OutgoingKind
from mailhook.store.replies import NewOutgoing

#: Builds the notice given its Message-ID (called only when the notice does not exist yet).
Compose = Callable[[str], EmailMessage]


class OwnerNotices:
    """Compose once, then deliver, an owner notice of a given kind for a job."""

    def __init__(self, delivery: OutgoingDelivery, secret: str) -> None:
        self.delivery = delivery
        self._secret = secret.encode()

    def message_id(self, kind: OutgoingKind, job_id: int, mailbox_address: str) -> str:
        """Secret-salted and deterministic, so every attempt composes the same notice."""
        seed = hmac.digest(self._secret, f"{kind.value}:{job_id}".encode(), "sha256")
        return make_message_id(seed, domain_of(mailbox_address))

    async def send(
        self, kind: OutgoingKind, job_id: int, mailbox: Mailbox, owner: str, compose: Compose
    ) -> Delivered:
        """Deliver the job's notice of ``kind``, composing it first if no attempt did."""
        record = await self.delivery.replies.for_job(job_id, kind)
        if record is None:
            message_id = self.message_id(kind, job_id, mailbox.address)
            record = await self.delivery.replies.prepare(
                NewOutgoing(
                    job_id=job_id,
                    mailbox_id=mailbox.id,
                    kind=kind,
                    message_id=message_id,
                    envelope_sender=mailbox.address,
                    recipients=(owner,),
                    data=render_bytes(compose(message_id)),
                )
            )
        return await self.delivery.deliver(record, mailbox.id)
