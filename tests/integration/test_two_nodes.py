"""Scale-out: two ``mailhook serve`` nodes on one PostgreSQL share the work.

The MTA spreads deliveries over both nodes' LMTP doors (as Postfix does with several next-hops);
both nodes' workers claim from the one spool with ``FOR UPDATE SKIP LOCKED``. Every message is
processed exactly once (one job, one reply, to itself) and both nodes did part of the work.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mailhook.crypto import Sealer
from mailhook.settings import ensure_secrets, load_settings
from mailhook.store.db import create_engine, session_factory
from mailhook.store.models import JobStatus, OutboxMessage, SpoolJob
from tests.fakes.llm import FakeLLM
from tests.lmtp_client import lmtp_send, make_message
from tests.process import MailhookProcess, base_env, cli

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
TOTAL = 40


def finished_and_replies(env: dict[str, str]) -> tuple[int, int, list[str]]:
    """(jobs done, outbox replies, In-Reply-To of every reply)."""
    settings, _ = ensure_secrets(load_settings(env))
    sealer = Sealer(settings.security.encryption_key)

    async def read() -> tuple[int, int, list[str]]:
        engine = create_engine(settings.database_url, pool_size=1)
        try:
            async with session_factory(engine)() as session:
                done_query = select(func.count()).where(SpoolJob.status == JobStatus.DONE.value)
                done = await session.scalar(done_query) or 0
                rows = (await session.scalars(select(OutboxMessage))).all()
        finally:
            await engine.dispose()
        parents = [
            line.split(":", 1)[1].strip()
            for row in rows
            for line in sealer.open(row.sealed_message).decode().splitlines()
            if line.startswith("In-Reply-To:")
        ]
        return done, len(rows), parents

    return asyncio.run(read())


def processed_by(log_path: Path) -> int:
    """The job count a node reports in its ``stopped`` log line."""
    for line in log_path.read_text().splitlines():
        try:
            event: dict[str, Any] = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "stopped":
            return int(event["processed"])
    raise AssertionError(f"no 'stopped' line in {log_path}")


def test_two_nodes_split_the_jobs_and_process_each_once(
    tmp_path: Path, fake_llm: FakeLLM, postgres_server: Any
) -> None:
    fake_llm.delay = 0.05  # a model call takes a while, so one node alone cannot drain the spool
    postgres_server.create_database("two_nodes")
    shared = {
        "MAILHOOK_DATABASE_URL": str(postgres_server.url("two_nodes")),
        "MAILHOOK_LLM_PROVIDER": "openai",
        "MAILHOOK_LLM_BASE_URL": fake_llm.base_url,
        "MAILHOOK_SPOOL_POLL_SECONDS": "0.2",
        "MAILHOOK_OUTBOUND_RATE_LIMIT_PER_SENDER_HOUR": "1000",
        "MAILHOOK_LOG_LEVEL": "INFO",
    }
    first = base_env(tmp_path / "node-1", MAILHOOK_SPOOL_NODE_NAME="node-1", **shared)
    # Both nodes need the same keys: the spool is sealed with them.
    cli(first, "migrate")
    settings, _ = ensure_secrets(load_settings(first))
    keys = {
        "MAILHOOK_SECURITY_ENCRYPTION_KEY": settings.security.encryption_key,
        "MAILHOOK_SECURITY_JWT_SECRET": settings.security.jwt_secret,
    }
    first |= keys
    second = base_env(tmp_path / "node-2", MAILHOOK_SPOOL_NODE_NAME="node-2", **shared, **keys)
    cli(first, "user", "create", "owner@example.com")
    cli(first, "mailbox", "add", "bot@agents.test", "--owner", "owner@example.com")
    nodes = [
        MailhookProcess(first, tmp_path / "node-1.log").start(),
        MailhookProcess(second, tmp_path / "node-2.log").start(),
    ]
    sent = {f"<node-{n}@example.org>" for n in range(TOTAL)}
    try:
        for n in range(TOTAL):
            node = nodes[n % 2]
            data = make_message(subject=f"order {n}", message_id=f"<node-{n}@example.org>")
            port = int(node.env["MAILHOOK_LMTP_PORT"])
            result = lmtp_send(port, "alice@example.org", ["bot@agents.test"], data)
            assert result.data["bot@agents.test"].startswith("250"), result.data
        deadline = time.monotonic() + 90
        while (state := finished_and_replies(first))[0] < TOTAL:
            assert time.monotonic() < deadline, f"stuck at {state[:2]}"
            time.sleep(0.5)
    finally:
        for node in nodes:
            node.stop()
    done, replies, parents = finished_and_replies(first)
    assert (done, replies) == (TOTAL, TOTAL)
    assert sorted(parents) == sorted(sent), "every message got exactly one reply, to itself"
    counts = [processed_by(tmp_path / "node-1.log"), processed_by(tmp_path / "node-2.log")]
    assert sum(counts) == TOTAL
    assert min(counts) > 0, f"one node did all the work: {counts}"
