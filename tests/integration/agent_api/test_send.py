"""Sending through the agent API: the outbound guard on every recipient and attachment, graduated
trust, test keys that never deliver, and decisions no key may take on its own mail."""

from __future__ import annotations

import base64
from email.message import EmailMessage

import httpx
import pytest

from mailhook.services import Services
from tests.harness.ports import free_port
from tests.integration.agent_api.conftest import MakeKey, bearer
from tests.support import activity, outbox, text_of

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
SEND = "/api/v1/agent/send"


def mail(**extra: object) -> dict[str, object]:
    return {"to": ["carol@example.org"], "subject": "Your order", "text": "It ships on Monday.", **extra}


async def delivered_to(services: Services, address: str) -> list[EmailMessage]:
    return [m for m in await outbox(services) if address in str(m["To"]) + str(m.get("Cc", ""))]


async def test_autonomous_key_sends_with_bcc_in_the_envelope_only(
    api: httpx.AsyncClient, services: Services, make_key: MakeKey
) -> None:
    key = await make_key(trust="autonomous")
    body = mail(
        cc=["Dave <DAVE@example.org>"], bcc=["erin@example.org"], html="<p>It ships on <b>Monday</b>.</p>"
    )
    response = await api.post(SEND, json=body, headers=bearer(key))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "sent" and response.json()["test"] is False
    [sent] = await outbox(services)
    assert sent["To"] == "carol@example.org" and sent["Cc"] == "dave@example.org"
    assert sent["Bcc"] is None, "Bcc is envelope only (RFC 5322 §3.6.3)"
    assert sent["Auto-Submitted"] == "auto-generated" and sent["List-Unsubscribe"]
    assert "It ships on Monday." in text_of(sent) and "AI assistant" in text_of(sent)
    html = sent.get_body(preferencelist=("html",))
    assert html is not None and "<b>Monday</b>" in html.get_content()
    async with services.sessions() as session:
        from sqlalchemy import select

        from mailhook.store.models import OutboxMessage

        [row] = (await session.scalars(select(OutboxMessage))).all()
    assert sorted(row.recipients) == ["carol@example.org", "dave@example.org", "erin@example.org"]
    assert [a.action for a in await activity(services)] == ["replied"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(mail(to=[], bcc=["eve@example.org"], text=f"key: {AWS_KEY}"), id="secret-body-bcc-only"),
        pytest.param(mail(bcc=[f"{AWS_KEY}@exfil.example"]), id="secret-only-in-bcc-address"),
        pytest.param(
            mail(
                attachments=[
                    {
                        "filename": "notes.txt",
                        "content_type": "text/plain",
                        "content_base64": base64.b64encode(
                            f"aws_access_key_id={AWS_KEY}\n".encode()
                        ).decode(),
                    }
                ]
            ),
            id="secret-only-in-attachment",
        ),
    ],
)
async def test_guard_holds_secrets_wherever_they_hide(
    api: httpx.AsyncClient,
    services: Services,
    owner: dict[str, str],
    make_key: MakeKey,
    body: dict[str, object],
) -> None:
    key = await make_key(trust="autonomous")
    response = await api.post(SEND, json=body, headers=bearer(key))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["status"] == "held" and "cred.aws_access_key" in result["findings"], result
    assert await delivered_to(services, "example") == [] or all(
        "[mailhook] Approval needed" in str(m["Subject"]) for m in await outbox(services)
    ), "nothing reaches the recipients"
    [pending] = (await api.get("/api/v1/pending", headers=owner)).json()
    assert pending["id"] == result["id"] and pending["reasons"][0].startswith("outbound guard: ")
    assert AWS_KEY not in pending["reasons"][0], "reasons name rules, never the matched text"


@pytest.mark.parametrize(
    "extra_env", [{"MAILHOOK_OUTBOUND_MODE": "smtp", "MAILHOOK_OUTBOUND_RELAY_PORT": str(free_port())}]
)
async def test_test_keys_never_deliver(
    api: httpx.AsyncClient, services: Services, owner: dict[str, str], make_key: MakeKey
) -> None:
    assert services.settings.outbound.mode == "smtp"
    test_key = await make_key(test=True, trust="autonomous")
    response = await api.post(SEND, json=mail(), headers=bearer(test_key))
    assert response.status_code == 200
    assert response.json()["status"] == "sent" and response.json()["test"] is True
    assert len(await delivered_to(services, "carol@example.org")) == 1, "the sandbox outbox got it"

    gated_test = await make_key(test=True, trust="gated")
    held = (await api.post(SEND, json=mail(to=["frank@example.org"]), headers=bearer(gated_test))).json()
    assert held["status"] == "held"
    approved = await api.post(f"/api/v1/pending/{held['id']}/approve", headers=owner)
    assert approved.status_code == 200 and approved.json() == {"result": "sent"}, approved.text
    assert len(await delivered_to(services, "frank@example.org")) == 1, "approved test mail: sandbox again"

    live_key = await make_key(trust="autonomous")
    failed = await api.post(SEND, json=mail(), headers=bearer(live_key))
    assert failed.status_code == 503, "a live key does use the (unreachable) relay"


async def test_trust_levels(
    api: httpx.AsyncClient, services: Services, owner: dict[str, str], make_key: MakeKey
) -> None:
    gated = await make_key(trust="gated")
    held = (await api.post(SEND, json=mail(to=["gina@example.org"]), headers=bearer(gated))).json()
    assert held["status"] == "held" and held["reasons"] == ["gated agent key 'gated-agent'"]
    assert await delivered_to(services, "gina@example.org") == []
    notices = [
        m for m in await outbox(services) if str(m["Subject"]).startswith("[mailhook] Approval needed")
    ]
    assert len(notices) == 1 and notices[0]["To"] == "owner@example.com"
    approved = await api.post(f"/api/v1/pending/{held['id']}/approve", headers=owner)
    assert approved.json() == {"result": "sent"}
    assert len(await delivered_to(services, "gina@example.org")) == 1

    draft = await make_key(trust="draft")
    kept = (await api.post(SEND, json=mail(to=["hank@example.org"]), headers=bearer(draft))).json()
    assert kept["status"] == "held" and kept["reasons"] == ["draft-only agent key 'draft-agent'"]
    assert await delivered_to(services, "hank@example.org") == []

    monitored = await make_key(trust="monitored")
    sent = (await api.post(SEND, json=mail(to=["ida@example.org"]), headers=bearer(monitored))).json()
    assert sent["status"] == "sent"
    copies = [m for m in await outbox(services) if str(m["Subject"]).startswith("[mailhook] Sent:")]
    assert len(copies) == 1 and copies[0]["To"] == "owner@example.com"


async def test_deciding_needs_owner_scope_and_another_key(
    api: httpx.AsyncClient, services: Services, make_key: MakeKey
) -> None:
    writer_owner_scope = await make_key(trust="gated", scope="owner", name="writer")
    reviewer = await make_key(scope="owner", name="reviewer")
    agent_scope = await make_key(scope="agent", name="plain")
    held = (await api.post(SEND, json=mail(to=["jo@example.org"]), headers=bearer(writer_owner_scope))).json()
    path = f"/api/v1/agent/pending/{held['id']}/decide"

    plain = await api.post(path, json={"decision": "approve"}, headers=bearer(agent_scope))
    assert plain.status_code == 403, "an agent-scope key never decides"
    own = await api.post(path, json={"decision": "approve"}, headers=bearer(writer_owner_scope))
    assert own.status_code == 403 and "itself" in own.json()["detail"], "no key approves its own mail"
    listing = (await api.get("/api/v1/agent/pending", headers=bearer(reviewer))).json()
    assert [(p["id"], p["by_this_key"]) for p in listing] == [(held["id"], False)]
    assert (await api.post(path, json={"decision": "maybe"}, headers=bearer(reviewer))).status_code == 400
    ok = await api.post(
        path, json={"decision": "approve", "text": "Edited by the reviewer."}, headers=bearer(reviewer)
    )
    assert ok.status_code == 200 and ok.json() == {"id": held["id"], "decision": "approve", "result": "sent"}
    [sent] = await delivered_to(services, "jo@example.org")
    assert "Edited by the reviewer." in text_of(sent)
    again = await api.post(path, json={"decision": "reject"}, headers=bearer(reviewer))
    assert again.status_code == 404


async def test_send_refuses_bad_input(api: httpx.AsyncClient, make_key: MakeKey) -> None:
    key = bearer(await make_key())
    for body in (
        mail(to=[]),
        mail(to=["not an address"]),
        mail(to=["a@b.example\r\nBcc: x@evil.example"]),
        mail(to=[f"u{n}@example.org" for n in range(51)]),
        mail(text="x" * 100_001),
        mail(subject="nul\x00"),
        mail(unknown=True),
        mail(attachments=[{"filename": "a.txt", "content_type": "text/plain", "content_base64": "%%%"}]),
        mail(attachments=[{"filename": "", "content_type": "text/plain", "content_base64": ""}]),
        mail(attachments=[{"filename": "a", "content_type": "nonsense", "content_base64": ""}]),
        {"to": "carol@example.org", "subject": "s", "text": "t"},
    ):
        response = await api.post(SEND, json=body, headers=key)
        assert response.status_code == 400, (body, response.text)
    huge = await api.post(SEND, content=b"{" + b" " * (9 * 1024 * 1024) + b"}", headers=key)
    assert huge.status_code == 413
