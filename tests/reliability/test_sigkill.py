"""SIGKILL mailhook while 200 messages are in flight from a real Postfix, restart it:
every message is accounted for exactly once (one job, one reply), none is lost."""

from __future__ import annotations

import asyncio
import smtplib
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailhook.services import build_services
from mailhook.settings import ensure_secrets, load_settings
from mailhook.store.models import Activity, JobStatus, OutboxMessage, SpoolJob
from tests.fakes.llm import FakeLLM
from tests.harness.postfix import PostfixInstance
from tests.lmtp_client import make_message
from tests.process import MailhookProcess, base_env, cli

pytestmark = [pytest.mark.postfix, pytest.mark.slow]
TOTAL = 200


def counts(env: dict[str, str]) -> tuple[int, int, int, int, set[str]]:
    """(jobs, finished jobs, outbox replies, replied activity rows, distinct In-Reply-To)."""

    async def read() -> tuple[int, int, int, int, set[str]]:
        settings, _ = ensure_secrets(load_settings(env))
        services = build_services(settings)
        try:
            async with services.sessions() as session:
                jobs = await session.scalar(select(func.count()).select_from(SpoolJob)) or 0
                done = (
                    await session.scalar(select(func.count()).where(SpoolJob.status == JobStatus.DONE.value))
                    or 0
                )
                replied = await session.scalar(select(func.count()).where(Activity.action == "replied")) or 0
                rows = (await session.scalars(select(OutboxMessage))).all()
            parents = set()
            for row in rows:
                text = services.sealer.open(row.sealed_message).decode()
                parents.update(
                    line.split(":", 1)[1].strip()
                    for line in text.splitlines()
                    if line.startswith("In-Reply-To:")
                )
            return jobs, done, len(rows), replied, parents
        finally:
            await services.close()

    return asyncio.run(read())


@pytest.fixture
def postfix_available() -> None:
    if not PostfixInstance.available():
        pytest.skip(PostfixInstance.unavailable_reason() or "no postfix")


def test_sigkill_under_load_loses_nothing_and_doubles_nothing(
    tmp_path: Path, fake_llm: FakeLLM, postfix_available: None
) -> None:
    fake_llm.delay = 0.02  # messages are genuinely in flight when the kill lands
    env = base_env(
        tmp_path / "var",
        MAILHOOK_LLM_PROVIDER="openai",
        MAILHOOK_LLM_BASE_URL=fake_llm.base_url,
        MAILHOOK_SPOOL_NODE_NAME="node-1",
        MAILHOOK_SPOOL_POLL_SECONDS="0.2",
        MAILHOOK_SPOOL_BACKOFF_SECONDS="0.5",
        MAILHOOK_OUTBOUND_RATE_LIMIT_PER_SENDER_HOUR="1000",
        MAILHOOK_LOG_LEVEL="WARNING",
    )
    cli(env, "migrate")
    cli(env, "user", "create", "owner@example.com")
    cli(env, "mailbox", "add", "bot@agents.test", "--owner", "owner@example.com")
    server = MailhookProcess(env, tmp_path / "mailhook.log").start()
    lmtp = ("127.0.0.1", int(env["MAILHOOK_LMTP_PORT"]))
    with PostfixInstance(tmp_path / "postfix", lmtp_targets=[lmtp], domains=["agents.test"]) as postfix:
        try:
            sent = {f"<rel-{n}@example.org>" for n in range(TOTAL)}
            with smtplib.SMTP(
                "127.0.0.1", postfix.smtp_port, local_hostname="client.test", timeout=30
            ) as smtp:
                for n in range(TOTAL):
                    data = make_message(subject=f"order {n}", message_id=f"<rel-{n}@example.org>")
                    smtp.sendmail("alice@example.org", ["bot@agents.test"], data)
            deadline = time.monotonic() + 60
            while counts(env)[1] < 40:
                assert time.monotonic() < deadline, "processing never started"
                time.sleep(0.1)
            server.kill()
            jobs_at_kill, done_at_kill = counts(env)[:2]
            assert done_at_kill < TOTAL, "the kill must land while messages are in flight"
            server.start()
            postfix.flush()
            deadline = time.monotonic() + 120
            while True:
                jobs, done, replies, replied, parents = counts(env)
                if done == TOTAL and postfix.wait_empty(0.1):
                    break
                assert time.monotonic() < deadline, (
                    f"stuck: jobs={jobs} done={done} queue={postfix.queue_ids()}"
                )
                postfix.flush()
                time.sleep(0.3)
        finally:
            server.stop()
    assert jobs_at_kill <= TOTAL
    assert (jobs, done, replies, replied) == (TOTAL, TOTAL, TOTAL, TOTAL)
    assert parents == sent, "every message got exactly one reply, to itself"
