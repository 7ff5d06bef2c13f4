"""The activity stream (Server-Sent Events) against the real app: live rows, resume with
Last-Event-ID, stream tokens that open only the stream and only their user's activity."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from mailhook.services import Services
from mailhook.store.accounts import Accounts
from mailhook.store.activity import ActivityAction
from tests.lmtp_client import lmtp_send, make_message
from tests.support import token_users

STREAM = "/api/v1/activity/stream"


async def events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Parsed SSE events (comments and retry hints included as their own entries)."""
    fields: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if line == "":
            if fields:
                yield fields
            fields = {}
        elif line.startswith(":"):
            fields.setdefault("comments", []).append(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            fields[name] = value.strip()


async def next_data(stream: AsyncIterator[dict[str, Any]], timeout: float = 15.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        async for event in stream:
            if "data" in event:
                return {"id": int(event["id"]), **json.loads(event["data"])}
    raise AssertionError("stream ended")


async def stream_token(api: httpx.AsyncClient, auth: dict[str, str]) -> str:
    response = await api.post("/api/v1/activity/stream-token", headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["expires_in"] == 3600
    return str(response.json()["token"])


async def test_live_rows_resume_and_keepalive(
    api: httpx.AsyncClient, services: Services, owner: dict[str, str]
) -> None:
    token = await stream_token(api, owner)
    async with api.stream("GET", STREAM, params={"token": token}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = events(response)
        hello = await anext(stream)
        assert hello == {"comments": ["connected"], "retry": "3000"}
        port = services.settings.lmtp.port
        await asyncio.to_thread(lmtp_send, port, "alice@example.org", ["bot@agents.test"], make_message())
        first = await next_data(stream)
        assert first["action"] == "replied" and first["recipient"] == "alice@example.org"
        assert set(first) == {
            "id",
            "mailbox_id",
            "action",
            "recipient",
            "reason",
            "message_id_hash",
            "created_at",
            "reply_outbox_id",
        }
        # The reply is in the sandbox outbox: the event links it, as the activity page does.
        shown = await api.get(f"/api/v1/outbox/{first['reply_outbox_id']}", headers=owner)
        assert shown.status_code == 200 and shown.json()["to"] == ["alice@example.org"]
        async with asyncio.timeout(5):
            keepalive = await anext(stream)
        assert keepalive == {"comments": ["keep-alive"]}

    mailbox_id = first["mailbox_id"]
    await services.activity.record(mailbox_id, ActivityAction.SKIPPED, reason="second")
    await services.activity.record(mailbox_id, ActivityAction.SKIPPED, reason="third")
    resumed = {"Last-Event-ID": str(first["id"])}
    async with api.stream("GET", STREAM, params={"token": token}, headers=resumed) as response:
        stream = events(response)
        assert [(await next_data(stream))["reason"] for _ in range(2)] == ["second", "third"]
    # The query parameter does the same for a first connection; the header wins on reconnects.
    params = {"token": token, "last_event_id": str(first["id"] + 1)}
    async with api.stream("GET", STREAM, params=params) as response:
        assert (await next_data(events(response)))["reason"] == "third"


async def test_tokens_open_only_their_users_stream(
    api: httpx.AsyncClient, services: Services, owner: dict[str, str]
) -> None:
    [(mallory_id, mallory)] = await token_users(services, "mallory@example.com")
    mailbox = await Accounts(services.sessions).add_mailbox("mallory@example.com", "mal@agents.test")
    owner_token = await stream_token(api, owner)
    mallory_token = await stream_token(api, mallory)

    assert (
        await api.get("/api/v1/mailboxes", headers={"Authorization": f"Bearer {owner_token}"})
    ).status_code == 401
    jwt_as_token = owner["Authorization"].removeprefix("Bearer ")
    for params in ({"token": jwt_as_token}, {"token": "garbage"}, {"token": ""}, {}):
        response = await api.get(STREAM, params=params)
        assert response.status_code == 401, params
    for bad in ("x", "\u00b2", "-1", "1.5", "99999999999"):
        bad_resume = await api.get(STREAM, params={"token": owner_token, "last_event_id": bad})
        assert bad_resume.status_code == 400, bad
    bad_header = await api.get(STREAM, params={"token": owner_token}, headers={"Last-Event-ID": "abc"})
    assert bad_header.status_code == 400

    async with api.stream("GET", STREAM, params={"token": mallory_token, "last_event_id": "0"}) as response:
        stream = events(response)
        await anext(stream)
        owners_mailbox = 1
        await services.activity.record(owners_mailbox, ActivityAction.SKIPPED, reason="owner's")
        await services.activity.record(mailbox.id, ActivityAction.SKIPPED, reason="mallory's")
        seen = await next_data(stream)
        assert seen["reason"] == "mallory's" and seen["mailbox_id"] == mailbox.id
    assert mallory_id != 1

    # A normal token in the Authorization header works too (non-browser clients).
    async with api.stream("GET", STREAM, params={"last_event_id": "0"}, headers=mallory) as response:
        assert (await next_data(events(response)))["reason"] == "mallory's"

    # At most two open streams per user (the fixture's setting); a closed one frees its slot.
    async with (
        api.stream("GET", STREAM, headers=owner) as one,
        api.stream("GET", STREAM, headers=owner) as two,
    ):
        assert one.status_code == two.status_code == 200
        assert (await api.get(STREAM, headers=owner)).status_code == 429
        assert (await api.get(STREAM, params={"token": owner_token})).status_code == 429
        async with api.stream("GET", STREAM, headers=mallory) as others:
            assert others.status_code == 200, "the bound is per user"
    for _ in range(50):
        async with api.stream("GET", STREAM, headers=owner) as again:
            if again.status_code == 200:
                break
        await asyncio.sleep(0.1)
    assert again.status_code == 200, "closed streams give their slot back"
