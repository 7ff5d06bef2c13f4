"""The spool on both databases: dedup, leases, concurrent claims, backoff, dead-letter."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

from sqlalchemy import select, update

from mailhook.doors.inbound import Inbound
from mailhook.services import Services, make_job_writer
from mailhook.spool.spool import ClaimedJob, Spool
from mailhook.spool.workers import WorkerPool
from mailhook.store.accounts import Accounts
from mailhook.store.models import JobStatus, SpoolJob, utcnow
from tests.lmtp_client import make_message


async def mailbox_id(services: Services) -> int:
    accounts = Accounts(services.sessions)
    await accounts.create_user("owner@example.com", "correct horse battery")
    return (await accounts.add_mailbox("owner@example.com", "bot@agents.test")).id


def inbound(n: int) -> Inbound:
    return Inbound("lmtp", "a@example.org", ("bot@agents.test",), make_message(subject=f"m{n}"))


def other_node(services: Services, name: str, **changes: float) -> Spool:
    settings = dataclasses.replace(services.settings.spool, **changes)
    writer = make_job_writer(services.settings.database_url)
    return Spool(services.sessions, services.sealer, settings, name, writer)


async def test_enqueue_seals_and_dedups(services: Services) -> None:
    box = await mailbox_id(services)
    message = inbound(1)
    [first] = await services.spool.enqueue(message, [("bot@agents.test", box)])
    [again] = await services.spool.enqueue(message, [("bot@agents.test", box)])
    same_id = Inbound("lmtp", "a@example.org", ("bot@agents.test",), message.raw.replace(b"m1", b"changed"))
    [by_message_id] = await services.spool.enqueue(same_id, [("bot@agents.test", box)])
    assert not first.duplicate and again.duplicate and by_message_id.duplicate
    assert again.job_id == by_message_id.job_id == first.job_id
    async with services.sessions() as session:
        job = await session.get(SpoolJob, first.job_id)
    assert job is not None and job.sealed_raw is not None
    assert b"Hello, where is my order" not in job.sealed_raw, "the raw message is encrypted at rest"
    assert services.sealer.open(job.sealed_raw) == message.raw


async def test_concurrent_enqueue_of_one_message_makes_one_job(services: Services) -> None:
    box = await mailbox_id(services)
    message = inbound(2)
    results = await asyncio.gather(
        *(services.spool.enqueue(message, [("bot@agents.test", box)]) for _ in range(8))
    )
    assert len({r[0].job_id for r in results}) == 1
    assert sum(not r[0].duplicate for r in results) == 1


async def test_concurrent_deliveries_share_commits(services: Services) -> None:
    box = await mailbox_id(services)
    before = services.spool.writer.commits
    accepted = await asyncio.gather(
        *(services.spool.enqueue(inbound(n), [("bot@agents.test", box)]) for n in range(40))
    )
    job_ids = {a.job_id for [a] in accepted}
    assert len(job_ids) == 40 and not any(a.duplicate for [a] in accepted)
    async with services.sessions() as session:
        stored = set((await session.scalars(select(SpoolJob.id))).all())
    assert job_ids <= stored
    # Group commit: forty deliveries arriving together did not need forty transactions.
    assert services.spool.writer.commits - before < 40


async def test_one_bad_delivery_does_not_fail_its_group(services: Services) -> None:
    box = await mailbox_id(services)
    good = [services.spool.enqueue(inbound(n), [("bot@agents.test", box)]) for n in range(5)]
    # A mailbox erased between RCPT and DATA: its id no longer exists (foreign key).
    bad = services.spool.enqueue(inbound(99), [("gone@agents.test", box + 1000)])
    results = await asyncio.gather(*good[:2], bad, *good[2:], return_exceptions=True)
    assert isinstance(results[2], Exception)
    accepted = [r for i, r in enumerate(results) if i != 2]
    assert all(isinstance(r, list) and not r[0].duplicate for r in accepted)
    async with services.sessions() as session:
        rows = (await session.scalars(select(SpoolJob).where(SpoolJob.mailbox_id == box))).all()
    assert len(rows) == 5


async def test_two_nodes_never_claim_the_same_job(services: Services) -> None:
    box = await mailbox_id(services)
    for n in range(60):
        await services.spool.enqueue(inbound(n), [("bot@agents.test", box)])
    a, b = other_node(services, "node-a"), other_node(services, "node-b")

    async def drain(node: Spool) -> list[int]:
        taken: list[int] = []
        while batch := await node.claim(3):
            taken += batch
            await asyncio.sleep(0)
        return taken

    got_a, got_b = await asyncio.gather(drain(a), drain(b))
    assert not set(got_a) & set(got_b)
    assert len(got_a) + len(got_b) == 60


async def test_expired_lease_is_taken_over_and_own_leases_released(services: Services) -> None:
    box = await mailbox_id(services)
    [accepted] = await services.spool.enqueue(inbound(3), [("bot@agents.test", box)])
    dead_node = other_node(services, "crashed")
    assert await dead_node.claim(5) == [accepted.job_id]
    survivor = other_node(services, "survivor")
    assert await survivor.claim(5) == [], "a live lease is respected"
    async with services.sessions() as session, session.begin():
        await session.execute(update(SpoolJob).values(lease_until=utcnow() - timedelta(seconds=1)))
    assert await survivor.claim(5) == [accepted.job_id], "an expired lease is taken over"
    assert await survivor.release_own() == 1, "a restarted node takes its own jobs back"
    job = await survivor.open(accepted.job_id)
    assert job is None, "released jobs are no longer leased to anyone"


async def test_a_running_job_keeps_its_lease_past_lease_seconds(services: Services) -> None:
    box = await mailbox_id(services)
    [accepted] = await services.spool.enqueue(inbound(4), [("bot@agents.test", box)])
    worker_node = other_node(services, "slow-node", lease_seconds=0.6, poll_seconds=0.1)
    started = asyncio.Event()
    runs: list[int] = []

    async def slow_job(job: ClaimedJob) -> str:
        runs.append(job.id)
        started.set()
        await asyncio.sleep(2.0)  # more than three lease periods: a model that takes its time
        return "replied"

    settings = dataclasses.replace(services.settings.spool, lease_seconds=0.6, poll_seconds=0.1)
    pool = WorkerPool(worker_node, slow_job, settings)
    await pool.start()
    try:
        await asyncio.wait_for(started.wait(), 10)
        other = other_node(services, "other-node")
        for _ in range(8):
            assert await other.claim(5) == [], "a job being worked on is never taken over"
            await asyncio.sleep(0.2)
        while pool.processed < 1:
            await asyncio.sleep(0.05)
    finally:
        await pool.stop()
    assert runs == [accepted.job_id]
    async with services.sessions() as session:
        job = await session.get(SpoolJob, accepted.job_id)
    assert job is not None and job.status == JobStatus.DONE.value


async def test_backoff_then_dead_letter_then_requeue(services: Services) -> None:
    box = await mailbox_id(services)
    [accepted] = await services.spool.enqueue(inbound(4), [("bot@agents.test", box)])
    spool = other_node(services, "n", max_attempts=2, backoff_seconds=60)
    [job_id] = await spool.claim(1)
    assert not await spool.retry_later(job_id, 1, "model down")
    assert await spool.claim(1) == [], "not due before its backoff"
    async with services.sessions() as session, session.begin():
        await session.execute(update(SpoolJob).values(next_attempt_at=utcnow()))
    [job_id] = await spool.claim(1)
    assert await spool.retry_later(job_id, 2, "model down")
    [dead] = await spool.dead_letters()
    assert (dead.id, dead.status, dead.last_error) == (accepted.job_id, JobStatus.DEAD.value, "model down")
    assert await spool.requeue(dead.id)
    assert not await spool.requeue(dead.id), "only dead jobs can be requeued"
    assert await spool.claim(1) == [dead.id]
    await spool.complete(dead.id, "replied")
    async with services.sessions() as session:
        done = await session.scalar(select(SpoolJob).where(SpoolJob.id == dead.id))
    assert done is not None and done.sealed_raw is None and done.outcome == "replied"
