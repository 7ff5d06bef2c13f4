"""The closing check of every reliability case: messages in = messages accounted for."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest

from mailhook.services import Services
from mailhook.store.models import JobStatus
from tests.support import activity, outbox, wait_for_jobs

#: Runs a test on SQLite only (the ``database_url`` fixture is otherwise SQLite and PostgreSQL).
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

#: Settings for a pipeline that retries fast and never rate-limits the test's senders.
FAST_RETRIES = {
    "MAILHOOK_SPOOL_BACKOFF_SECONDS": "0.1",
    "MAILHOOK_SPOOL_BACKOFF_MAX_SECONDS": "0.3",
    "MAILHOOK_SPOOL_POLL_SECONDS": "0.1",
    "MAILHOOK_OUTBOUND_RATE_LIMIT_PER_SENDER_HOUR": "100000",
}


@dataclass
class Accounting:
    """Where every accepted message ended."""

    done: int
    dead: int
    outcomes: Counter[str]
    replies: int


async def accounted_for(services: Services, accepted: int, timeout: float = 60.0) -> Accounting:
    """Wait until ``accepted`` jobs are finished and check that each is accounted for exactly once.

    A finished job is ``done`` with an outcome and an activity row, or ``dead`` (dead-lettered,
    its sealed message kept for ``mailhook dead-letter retry``). No job is left behind, and no
    message got two replies.
    """
    jobs = await wait_for_jobs(services, accepted, timeout)
    assert len(jobs) == accepted, f"{len(jobs)} jobs for {accepted} accepted messages"
    rows = Counter(row.job_id for row in await activity(services))
    for job in jobs:
        assert job.status in (JobStatus.DONE.value, JobStatus.DEAD.value), (job.id, job.status)
        if job.status == JobStatus.DONE.value:
            assert job.outcome and rows[job.id] >= 1, f"job {job.id} has no activity row"
            assert job.sealed_raw is None, "the raw message is erased when done"
        else:
            assert job.sealed_raw is not None and job.last_error, "a dead letter keeps its message"
    sent = await outbox(services)
    parents = Counter(str(message["In-Reply-To"]) for message in sent if message["In-Reply-To"])
    assert all(count == 1 for count in parents.values()), "a message was answered twice"
    return Accounting(
        done=sum(j.status == JobStatus.DONE.value for j in jobs),
        dead=sum(j.status == JobStatus.DEAD.value for j in jobs),
        outcomes=Counter(j.outcome for j in jobs if j.outcome),
        replies=len(sent),
    )
