"""Where the job behind an outgoing message came from (its spool ``source``), and what follows.

Mail an agent writes through the API is recorded as the reply of a job of its own
(``agentapi/outgoing.py``): source ``api`` for a live key, ``api-test`` for an ``mh_test_`` key.
The approval queue and the agent primitives both ask :func:`job_source`: ``api-test`` mail may
only ever be released to the sandbox outbox, and API mail costs no credit. Outgoing records hang
on a job, so mail that no inbound message caused gets a :func:`finished_job` to hang on.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailhook.store.models import JobStatus, Mailbox, SpoolJob, utcnow

#: Spool source of mail written with an ``mh_live_`` agent key.
LIVE_API_SOURCE = "api"
#: Spool source of mail written with an ``mh_test_`` agent key: approved, it goes to the sandbox.
SANDBOX_SOURCE = "api-test"
#: Spool sources of mail written through the agent API (live and test keys).
API_SOURCES = frozenset({LIVE_API_SOURCE, SANDBOX_SOURCE})
#: Spool source of the job behind the billing notice of a persona test that spent the last credit.
PERSONA_TEST_SOURCE = "persona-test"


async def job_source(session: AsyncSession, job_id: int) -> str | None:
    """The spool source of job ``job_id`` (None when there is no such job)."""
    source: str | None = await session.scalar(select(SpoolJob.source).where(SpoolJob.id == job_id))
    return source


def finished_job(mailbox: Mailbox, source: str, outcome: str) -> SpoolJob:
    """A job of ``mailbox`` that is done from the start and holds no message (add it to a session)."""
    return SpoolJob(
        mailbox_id=mailbox.id,
        source=source,
        envelope_sender=mailbox.address,
        recipient=mailbox.address,
        message_id_hash=None,
        # Unique per job (the spool's per-mailbox content key); no content goes into it.
        content_hash=hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
        size=0,
        sealed_raw=None,
        status=JobStatus.DONE.value,
        outcome=outcome,
        finished_at=utcnow(),
    )
