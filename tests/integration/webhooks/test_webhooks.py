"""Signed webhooks end to end: a real app under uvicorn, LMTP deliveries through the pipeline,
and a receiver on 127.0.0.1 that checks signatures the way docs/webhooks.md tells users to."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time

import httpx
from sqlalchemy import select, update

from mailhook.services import Services
from mailhook.store.models import Mailbox, Reply, WebhookDelivery, WebhookEndpoint
from tests.fakes.llm import FakeLLM, completion, decision
from tests.fakes.webhook_receiver import Received, WebhookReceiver
from tests.lmtp_client import lmtp_send, make_message
from tests.support import activity, outbox, token_users, wait_for_jobs

EVENTS = ["message.sent", "pending.created", "escalation", "message.bounced"]


def verify(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
    """The verification recipe of docs/webhooks.md, verbatim."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    timestamp = int(fields["t"])
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


async def register(api: httpx.AsyncClient, auth: dict[str, str], url: str) -> dict[str, object]:
    response = await api.post("/api/v1/webhooks", json={"url": url, "events": EVENTS}, headers=auth)
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


async def deliver(services: Services, data: bytes, sender: str = "alice@example.org") -> None:
    port = services.settings.lmtp.port
    result = await asyncio.to_thread(lmtp_send, port, sender, ["bot@agents.test"], data)
    assert all(reply.startswith("250") for reply in result.data.values()), result


def of_type(event: str) -> object:
    return lambda r: r.event == event


async def test_ping_and_message_sent_are_signed_metadata(
    api: httpx.AsyncClient, services: Services, owner: dict[str, str], receiver: WebhookReceiver
) -> None:
    created = await register(api, owner, receiver.url)
    secret = str(created["secret"])
    assert secret.startswith("whsec_") and created["events"] == EVENTS
    listed = (await api.get("/api/v1/webhooks", headers=owner)).json()
    assert [w["id"] for w in listed] == [created["id"]] and "secret" not in listed[0]
    async with services.sessions() as session:
        row = await session.get(WebhookEndpoint, int(str(created["id"])))
    assert row is not None and secret.encode() not in row.secret_sealed, "the secret is kept sealed"

    ping = await api.post(f"/api/v1/webhooks/{created['id']}/test", headers=owner)
    assert ping.status_code == 200 and ping.json()["status"] == "delivered", ping.text
    first = receiver.received[0]
    assert first.event == "ping" and first.json["data"] == {"webhook_id": created["id"]}
    assert verify(secret, first.body, first.headers["mailhook-signature"])
    assert not verify("whsec_wrong", first.body, first.headers["mailhook-signature"])
    assert not verify(secret, first.body + b" ", first.headers["mailhook-signature"])

    await deliver(services, make_message(body="My card is 4111 1111 1111 1111? No, just a question."))
    sent: Received = await receiver.wait_for(of_type("message.sent"))  # type: ignore[arg-type]
    assert verify(secret, sent.body, sent.headers["mailhook-signature"])
    payload = sent.json
    assert payload["type"] == "message.sent" and payload["id"].startswith("evt_")
    data = payload["data"]
    assert data["mailbox"]["address"] == "bot@agents.test" and data["recipients"] == 1
    [reply] = await outbox(services)
    assert data["reply_message_id"] == reply["Message-ID"]
    assert b"question" not in sent.body and b"Thanks" not in sent.body, "metadata only, never bodies"
    assert sent.headers["mailhook-delivery"].startswith("dlv_")

    deliveries = (await api.get(f"/api/v1/webhooks/{created['id']}/deliveries", headers=owner)).json()
    assert [d["event"] for d in deliveries] == ["message.sent", "ping"]
    assert all(d["status"] == "delivered" and d["last_status_code"] == 200 for d in deliveries)
    assert "payload" not in deliveries[0]


async def test_a_failed_attempt_is_retried_with_the_same_delivery_id(
    api: httpx.AsyncClient, owner: dict[str, str]
) -> None:
    async with WebhookReceiver(statuses=[500, 200]) as flaky:
        created = await register(api, owner, flaky.url)
        first = (await api.post(f"/api/v1/webhooks/{created['id']}/test", headers=owner)).json()
        assert (first["status"], first["last_status_code"], first["attempts"]) == ("pending", 500, 1)
        assert first["next_attempt_at"] is not None
        await flaky.wait_for(lambda r: len(flaky.received) >= 2)
        for _ in range(100):
            [row] = (await api.get(f"/api/v1/webhooks/{created['id']}/deliveries", headers=owner)).json()
            if row["status"] == "delivered":
                break
            await asyncio.sleep(0.05)
        assert (row["status"], row["attempts"], row["last_status_code"]) == ("delivered", 2, 200)
        ids = {r.headers["mailhook-delivery"] for r in flaky.received}
        assert len(ids) == 1, "a retry carries the same Mailhook-Delivery id"


async def test_gated_and_escalated_runs_raise_their_events(
    api: httpx.AsyncClient,
    services: Services,
    owner: dict[str, str],
    receiver: WebhookReceiver,
    fake_llm: FakeLLM,
) -> None:
    await register(api, owner, receiver.url)
    async with services.sessions() as session, session.begin():
        await session.execute(update(Mailbox).values(mode="gated"))
    await deliver(services, make_message(subject="held one"))
    pending = await receiver.wait_for(of_type("pending.created"))  # type: ignore[arg-type]
    [held] = (await api.get("/api/v1/pending", headers=owner)).json()
    assert pending.json["data"]["pending_id"] == held["id"] and pending.json["data"]["recipients"] == 1

    fake_llm.script = lambda _payload: (200, completion(decision("escalate", "", trigger="refund")))
    await deliver(services, make_message(subject="a refund please"))
    escalation = await receiver.wait_for(of_type("escalation"))  # type: ignore[arg-type]
    assert escalation.json["data"]["trigger"] == "refund"
    assert b"refund please" not in escalation.body

    await api.post(f"/api/v1/pending/{held['id']}/approve", headers=owner)
    await receiver.wait_for(of_type("message.sent"))  # type: ignore[arg-type]
    await wait_for_jobs(services, 2)
    await asyncio.sleep(0.5)
    events = [r.event for r in receiver.received]
    assert sorted(events) == ["escalation", "message.sent", "pending.created"], "each event exactly once"


def dsn_for(message_id: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n"
        "To: bot@agents.test\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-1@mx.example.net>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        "Final-Recipient: rfc822; alice@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
        f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {message_id}\r\nSubject: Re: x\r\n\r\n"
        "--B--\r\n"
    ).encode()


async def test_a_dsn_over_lmtp_is_recorded_linked_and_never_answered(
    api: httpx.AsyncClient, services: Services, owner: dict[str, str], receiver: WebhookReceiver
) -> None:
    await register(api, owner, receiver.url)
    await deliver(services, make_message())
    await wait_for_jobs(services, 1)
    [reply] = await outbox(services)
    await deliver(services, dsn_for(str(reply["Message-ID"])), sender="")
    bounced = await receiver.wait_for(of_type("message.bounced"))  # type: ignore[arg-type]
    data = bounced.json["data"]
    assert data["bounce"] == {"kind": "hard", "status": "5.1.1"}
    assert data["reply_message_id"] == reply["Message-ID"]
    assert data["recipients"] == {"total": 1, "hard": 1, "soft": 0}
    assert b"user unknown" not in bounced.body and b"alice@example.org" not in bounced.body

    rows = await activity(services)
    [row] = [r for r in rows if r.action == "bounced"]
    assert row.detail["recipients"][0]["domain"] == "example.org"
    assert "alice" not in str(row.detail), "only a fingerprint and the domain of the recipient"
    async with services.sessions() as session:
        marked = await session.scalar(select(Reply).where(Reply.message_id == reply["Message-ID"]))
    assert marked is not None and marked.last_error.startswith("bounced: hard 5.1.1")
    assert len(await outbox(services)) == 1, "nothing is ever sent in answer to a DSN"


REFUSED: list[object] = [
    {"url": "http://169.254.169.254/latest/meta-data/", "events": EVENTS},
    {"url": "https://169.254.169.254/", "events": EVENTS},
    {"url": "http://10.0.0.1/hook", "events": EVENTS},
    {"url": "http://[::ffff:127.0.0.2]/hook", "events": EVENTS},
    {"url": "http://localhost/hook", "events": EVENTS},
    {"url": "ftp://127.0.0.1/hook", "events": EVENTS},
    {"url": "http://user:pw@127.0.0.1/hook", "events": EVENTS},
    {"url": "not a url at all", "events": EVENTS},
    {"url": "http://127.0.0.1/" + "a" * 3000, "events": EVENTS},
    {"url": "http://127.0.0.1/hook", "events": []},
    {"url": "http://127.0.0.1/hook", "events": ["message.read"]},
    {"url": "http://127.0.0.1/hook", "events": ["ping"]},
    {"url": "http://127.0.0.1/hook", "events": "message.sent"},
    {"url": "http://127.0.0.1/hook"},
    {"url": "http://127.0.0.1/hook", "events": EVENTS, "secret": "mine"},
    {"url": 42, "events": EVENTS},
    [],
]


async def test_refused_urls_and_malformed_bodies(api: httpx.AsyncClient, owner: dict[str, str]) -> None:
    for body in REFUSED:
        response = await api.post("/api/v1/webhooks", json=body, headers=owner)
        assert response.status_code == 400, (body, response.text)
    metadata = await api.post("/api/v1/webhooks", json=REFUSED[0], headers=owner)
    assert "public addresses" in metadata.json()["detail"]
    garbage = await api.post(
        "/api/v1/webhooks", content=b"{not json", headers={**owner, "Content-Type": "application/json"}
    )
    assert garbage.status_code == 400
    assert (await api.get("/api/v1/webhooks", headers=owner)).json() == []
    for n in range(10):
        await register(api, owner, f"http://127.0.0.1:9/hook{n}")
    extra = await api.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "events": EVENTS}, headers=owner
    )
    assert extra.status_code == 409


async def test_tenants_are_isolated(
    api: httpx.AsyncClient, services: Services, owner: dict[str, str], receiver: WebhookReceiver
) -> None:
    created = await register(api, owner, receiver.url)
    [(mallory_id, mallory)] = await token_users(services, "mallory@example.com")
    assert (await api.get("/api/v1/webhooks", headers=mallory)).json() == []
    for method, path in [
        ("DELETE", f"/api/v1/webhooks/{created['id']}"),
        ("POST", f"/api/v1/webhooks/{created['id']}/test"),
        ("GET", f"/api/v1/webhooks/{created['id']}/deliveries"),
        ("GET", "/api/v1/webhooks/99999999999/deliveries"),
    ]:
        assert (await api.request(method, path, headers=mallory)).status_code == 404, path
        assert (await api.request(method, path)).status_code == 401, path
    assert receiver.received == [], "another user's test call sent nothing"
    # Mallory's endpoint never hears of the owner's mail.
    async with WebhookReceiver() as mallorys:
        mallorys_id = (await register(api, mallory, mallorys.url))["id"]
        await deliver(services, make_message())
        await receiver.wait_for(of_type("message.sent"))  # type: ignore[arg-type]
        await asyncio.sleep(0.5)
        assert mallorys.received == []
    assert (await api.delete(f"/api/v1/webhooks/{created['id']}", headers=owner)).status_code == 204
    async with services.sessions() as session:
        left = (await session.scalars(select(WebhookDelivery))).all()
    assert all(d.endpoint_id != created["id"] for d in left), "deliveries go with their endpoint"
    # Erasing the account erases its endpoints and their deliveries (GDPR, docs/api.md).
    await register(api, owner, receiver.url)
    erased = await api.request(
        "DELETE", "/api/v1/me", json={"password": "correct horse battery"}, headers=owner
    )
    assert erased.status_code == 200
    async with services.sessions() as session:
        owners = (
            await session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.user_id != mallory_id))
        ).all()
        assert owners == []
        assert {d.endpoint_id for d in (await session.scalars(select(WebhookDelivery))).all()} <= {
            mallorys_id
        }
