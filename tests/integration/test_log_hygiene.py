"""No message body, password, token or API key ever reaches the log; the Message-ID does.

Runs a real message through the LMTP door, the spool, the model provider (with a failing
first call, so error paths log too) and the sandbox outbox, with logging at DEBUG.
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest

from mailhook.logs import get_logger, register_secrets
from mailhook.services import Services
from mailhook.store.accounts import Accounts
from tests.fakes.llm import FakeLLM, completion, decision
from tests.lmtp_client import lmtp_send, make_message
from tests.support import wait_for_jobs

BODY_CANARY = "BODY-CANARY-7f3a9c"
REPLY_CANARY = "REPLY-CANARY-2b81"
PASSWORD = "hunter2-PASSWORD-CANARY"
API_KEY = "sk-test-APIKEY-CANARY-123456"
RELAY_PASSWORD = "RELAY-PW-CANARY-99"


@pytest.mark.parametrize(
    "extra_env",
    [{"MAILHOOK_LLM_API_KEY": API_KEY, "MAILHOOK_OUTBOUND_RELAY_PASSWORD": RELAY_PASSWORD}],
)
async def test_log_holds_no_content_or_secrets(
    services: Services, json_log: io.StringIO, fake_llm: FakeLLM, runtime: Any
) -> None:
    register_secrets(services.settings.secret_values())
    calls = {"n": 0}

    def script(payload: dict[str, Any]) -> tuple[int, Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            return 500, {"error": f"echoing your input: {BODY_CANARY}"}
        return 200, completion(decision(reply=f"Here you go {REPLY_CANARY}"))

    fake_llm.script = script
    await Accounts(services.sessions).create_user("second@example.com", PASSWORD)
    data = make_message(body=f"my secret text {BODY_CANARY}", message_id="<canary-1@example.org>")
    result = await asyncio.to_thread(
        lmtp_send, services.settings.lmtp.port, "alice@example.org", ["bot@agents.test"], data
    )
    assert result.data["bot@agents.test"].startswith("250")
    await wait_for_jobs(services, 1)
    log = get_logger("test")
    log.info(
        "explicit",
        body=BODY_CANARY,
        password=PASSWORD,
        relay_password=RELAY_PASSWORD,
        headers={"Authorization": f"Bearer {API_KEY}"},
        note=f"key is {API_KEY}",
    )

    text = json_log.getvalue()
    assert calls["n"] == 2, "the failing first model call was retried"
    for canary in (
        BODY_CANARY,
        REPLY_CANARY,
        PASSWORD,
        API_KEY,
        RELAY_PASSWORD,
        services.settings.security.jwt_secret,
        services.settings.security.encryption_key,
    ):
        assert canary not in text, f"{canary[:12]}... leaked into the log"
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    recorded = [ln for ln in lines if ln.get("event") == "recorded"]
    assert recorded and recorded[-1]["message_id"] == "<canary-1@example.org>"
    assert recorded[-1]["action"] == "replied"
    assert any(ln.get("event") == "explicit" and ln["body"] == "[redacted]" for ln in lines)
