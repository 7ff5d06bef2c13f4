"""Fixtures for the milter door's tests: an owner with the agent mailbox bot@agents.test."""

from __future__ import annotations

import pytest

from mailhook.services import Services
from mailhook.store.accounts import Accounts

AGENT = "bot@agents.test"


@pytest.fixture
async def agent_mailbox(services: Services) -> int:
    """The id of bot@agents.test, owned by owner@example.com (no Runtime needed)."""
    accounts = Accounts(services.sessions)
    await accounts.create_user("owner@example.com", "correct horse battery")
    await accounts.add_mailbox("owner@example.com", AGENT, display_name="Support Bot")
    mailbox_id = await services.directory.lookup(AGENT)
    assert mailbox_id is not None
    return mailbox_id
