"""Mailbox API: create, validate, configure, persona history, lifecycle, activity, stats, and
tenant isolation, over real HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mailhook.billing.credits import Credits
from mailhook.errors import Conflict
from mailhook.services import Services
from mailhook.store.activity import ActivityAction, ActivityLog
from mailhook.store.mailboxes import Actor, Mailboxes
from mailhook.store.models import Mailbox, MailboxStatus
from mailhook.store.persona_history import PersonaHistory
from tests.support import TwoUserApi, mailbox_row, two_user_api

IMAP_LOGIN = "imap-user-4242"
IMAP_SECRET = "app-password-Zq8#x1"
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@dataclass
class Api(TwoUserApi):
    async def row(self, mailbox_id: int) -> Mailbox:
        return await mailbox_row(self.services, mailbox_id)

    def service(self) -> Mailboxes:
        return Mailboxes(self.services.sessions, self.services.sealer, self.services.settings)


def external(**overrides: Any) -> dict[str, Any]:
    body = {
        "kind": "external",
        "address": "help@example.org",
        "imap_host": "imap.example.org",
        "imap_port": 993,
        "smtp_host": "smtp.example.org",
        "smtp_port": 587,
        "login": IMAP_LOGIN,
        "password": IMAP_SECRET,
        "poll_interval_minutes": 60,
    }
    return body | overrides


@pytest.fixture
async def api(services: Services) -> AsyncIterator[Api]:
    async with two_user_api(services) as (http, (_, owner), (_, other)):
        yield Api(http, services, owner, other)


def assert_no_secrets(text: str) -> None:
    # "has_llm_api_key" is shown; the key and its sealed column never are.
    for secret in (IMAP_SECRET, IMAP_LOGIN, "password_sealed", '"llm_api_key"', "_sealed", "gAAAAA"):
        assert secret not in text


async def test_create_hosted_and_external(api: Api) -> None:
    domain = api.services.settings.agent.domain
    hosted = await api.create(
        {"kind": "hosted", "handle": "support", "persona": "You are Alex.", "mode": "gated"}
    )
    assert hosted["address"] == f"support@{domain}"
    assert (hosted["kind"], hosted["status"], hosted["mode"]) == ("hosted", "active", "gated")
    assert hosted["has_credentials"] is False and hosted["imap"] is None

    ext = await api.create(external())
    assert ext["kind"] == "external" and ext["has_credentials"] is True
    assert ext["imap"] == {"host": "imap.example.org", "port": 993}
    assert ext["smtp"] == {"host": "smtp.example.org", "port": 587}
    assert ext["poll_interval_minutes"] == 60

    listed = await api.http.get("/api/v1/mailboxes", headers=api.owner)
    assert [m["id"] for m in listed.json()] == [hosted["id"], ext["id"]]
    got = await api.http.get(f"/api/v1/mailboxes/{ext['id']}", headers=api.owner)
    assert got.json() == ext
    for text in (json.dumps(ext), listed.text, got.text):
        assert_no_secrets(text)

    row = await api.row(ext["id"])
    assert row.password_sealed is not None and IMAP_SECRET.encode() not in row.password_sealed
    assert api.services.sealer.open(row.password_sealed) == IMAP_SECRET.encode()

    for body, headers in (
        ({"kind": "hosted", "handle": "support"}, api.owner),
        ({"kind": "hosted", "handle": "support"}, api.other),
        (external(), api.other),
    ):
        response = await api.http.post("/api/v1/mailboxes", json=body, headers=headers)
        assert response.status_code == 409, response.text
        assert_no_secrets(response.text)


BAD_HANDLES = [
    "Support",
    "-support",
    "sup port",
    "süpport",
    "a" * 65,
    "",
    "sup_port",
    "sup.port",
    "bot+tag",
    "support\n",
    "postmaster",
    "abuse",
    "mailer-daemon",
    "root",
    "admin",
]
BAD_EXTERNAL: list[dict[str, Any]] = [
    {"address": "not-an-address"},
    {"imap_host": "imap host"},
    {"imap_host": "-imap.example.org"},
    {"smtp_host": "smtp..example.org"},
    {"imap_port": 0},
    {"smtp_port": 70000},
    {"poll_interval_minutes": 30},
    {"poll_interval_minutes": 1500},
    {"login": ""},
    {"password": ""},
    {"password": "x" * 5000},
]
BAD_CONFIG: list[tuple[dict[str, Any], str]] = [
    ({"mode": "yolo"}, "mode"),
    ({"triggers": ["x"] * 51}, "at most 50"),
    ({"triggers": ["x" * 501]}, "trigger 1"),
    ({"triggers": ["  "]}, "empty"),
    ({"thread_depth": 51}, "thread_depth"),
    ({"thread_depth": -1}, "thread_depth"),
    ({"max_output_tokens": 49}, "max_output_tokens"),
    ({"max_output_tokens": 8001}, "max_output_tokens"),
    ({"tone": "x" * 201}, "tone"),
    ({"rules": "x" * 10_001}, "rules"),
    ({"signature": "x" * 2_001}, "signature"),
    ({"documents": [{"name": "faq", "url": "file:///etc/passwd"}]}, "document 1"),
    ({"documents": [{"name": "faq"}]}, "url"),
    ({"documents": "ftp://example.org/manifest.json"}, "manifest"),
    ({"poll_interval_minutes": 60}, "external mailboxes only"),
    ({"persona": "nul\x00byte"}, "NUL"),
    ({"persona": "hello " * 3000}, "the limit is 2,000"),
]


@SQLITE_ONLY
async def test_validation(api: Api) -> None:
    for handle in BAD_HANDLES:
        response = await api.http.post(
            "/api/v1/mailboxes", json={"kind": "hosted", "handle": handle}, headers=api.owner
        )
        assert response.status_code == 400, handle
        assert "handle" in response.json()["detail"], handle
    for handle in ("a" * 64, "0-bot", "bot-2"):
        await api.create({"kind": "hosted", "handle": handle})

    domain = api.services.settings.agent.domain
    for change in [*BAD_EXTERNAL, {"address": f"bot@{domain}"}]:
        response = await api.http.post("/api/v1/mailboxes", json=external(**change), headers=api.owner)
        assert response.status_code == 400, change
        assert_no_secrets(response.text)
    for minutes in (0, 1, 120, 1440):
        await api.create(external(address=f"p{minutes}@example.org", poll_interval_minutes=minutes))

    hosted = await api.create({"kind": "hosted", "handle": "config"})
    for patch, detail in BAD_CONFIG:
        response = await api.http.patch(f"/api/v1/mailboxes/{hosted['id']}", json=patch, headers=api.owner)
        assert response.status_code == 400, patch
        assert detail in response.json()["detail"], (patch, response.text)
    # Nothing of the refused patches was applied, and no persona version was recorded.
    assert (await api.http.get(f"/api/v1/mailboxes/{hosted['id']}", headers=api.owner)).json() == hosted
    history = await api.http.get(f"/api/v1/mailboxes/{hosted['id']}/persona/history", headers=api.owner)
    assert history.json() == []


@SQLITE_ONLY
async def test_bad_bodies(api: Api) -> None:
    hosted = await api.create({"kind": "hosted", "handle": "bodies"})
    base = f"/api/v1/mailboxes/{hosted['id']}"
    writes = [("POST", "/api/v1/mailboxes"), ("PATCH", base), ("POST", f"{base}/status")]
    json_header = {**api.owner, "content-type": "application/json"}
    wrong_types = {
        "/api/v1/mailboxes": [
            {"kind": "hosted", "handle": 5},
            {"kind": "martian", "handle": "x"},
            {"handle": "no-kind"},
            {"kind": "hosted", "handle": "ok", "thread_depth": "ten"},
            {"kind": "hosted", "handle": "ok", "surprise": 1},
            external(imap_port="imaps"),
            [1, 2],
        ],
        base: [
            {"thread_depth": True},
            {"triggers": "not a list"},
            {"triggers": [1]},
            {"persona": None},
            {"persna": "typo"},
            {"reply_all": "yes"},
            "persona",
        ],
        f"{base}/status": [{"status": "deleted"}, {"status": "pending_billing"}, {"status": 1}, {}],
    }
    for method, url in writes:
        for raw in (b"{not json", b"", b"\xff\xfe"):
            response = await api.http.request(method, url, content=raw, headers=json_header)
            assert response.status_code == 400, (method, url, raw)
        for body in wrong_types[url]:
            response = await api.http.request(method, url, json=body, headers=api.owner)
            assert response.status_code == 400, (method, url, body, response.text)
        huge = {"kind": "hosted", "handle": "big", "persona": "x" * (5 * 1024 * 1024)}
        response = await api.http.request(method, url, json=huge, headers=api.owner)
        assert response.status_code == 413, (method, url)
    assert (await api.http.get(base, headers=api.owner)).json() == hosted


async def test_config_and_persona_history(api: Api) -> None:
    created = await api.create({"kind": "hosted", "handle": "alex", "persona": "Version one."})
    url = f"/api/v1/mailboxes/{created['id']}"
    change = {
        "display_name": "Alex",
        "tone": "warm, brief",
        "rules": "Never promise refunds.",
        "signature": "-- Alex",
        "triggers": ["Legal threats", "Refunds over $500"],
        "mode": "monitored",
        "documents": [{"name": "FAQ", "description": "Questions", "url": "https://example.org/faq"}],
        "thread_depth": 3,
        "max_output_tokens": 400,
        "reply_all": False,
    }
    patched = (await api.http.patch(url, json=change, headers=api.owner)).json()
    assert {key: patched[key] for key in change} == change
    assert (await api.http.get(url, headers=api.owner)).json() == patched

    manifest = "https://example.org/docs.json"
    patched = (await api.http.patch(url, json={"documents": manifest}, headers=api.owner)).json()
    assert patched["documents"] == manifest and patched["tone"] == "warm, brief"

    second = "Version two, which is longer."
    for body in ({"persona": second}, {"persona": second}, {"tone": "formal"}):
        assert (await api.http.patch(url, json=body, headers=api.owner)).status_code == 200
    history = (await api.http.get(f"{url}/persona/history", headers=api.owner)).json()
    assert [(v["author"], v["chars"]) for v in history] == [
        ("owner@example.com", len(second)),
        ("owner@example.com", len("Version one.")),
    ]
    newest, oldest = history[0]["commit"], history[1]["commit"]
    for commit, text in ((newest, second), (oldest, "Version one."), (oldest[:7].upper(), "Version one.")):
        response = await api.http.get(f"{url}/persona/history/{commit}", headers=api.owner)
        assert response.json()["persona"] == text
    for commit, status in (("xyz", 400), ("12345", 400), ("0" * 40, 404), ("a" * 41, 400)):
        response = await api.http.get(f"{url}/persona/history/{commit}", headers=api.owner)
        assert response.status_code == status, commit


async def test_status_lifecycle_and_delete(api: Api) -> None:
    mailbox = await api.create(external())
    url = f"/api/v1/mailboxes/{mailbox['id']}"
    service = api.service()

    async def owner_sets(status: str) -> int:
        response = await api.http.post(f"{url}/status", json={"status": status}, headers=api.owner)
        return response.status_code

    assert await owner_sets("inactive") == 200
    assert await owner_sets("inactive") == 200  # asking again changes nothing
    assert await owner_sets("active") == 200
    await service.set_status(mailbox["id"], MailboxStatus.PENDING_BILLING, Actor.BILLING)
    assert await owner_sets("inactive") == 409  # only billing wakes a paused mailbox
    assert await owner_sets("active") == 409
    await service.set_status(mailbox["id"], MailboxStatus.ACTIVE, Actor.BILLING)
    await service.set_status(mailbox["id"], MailboxStatus.ERROR, Actor.SYSTEM, reason="IMAP login failed")
    assert (await api.http.get(url, headers=api.owner)).json()["status_reason"] == "IMAP login failed"
    assert await owner_sets("inactive") == 200
    with pytest.raises(Conflict):
        await service.set_status(mailbox["id"], MailboxStatus.ERROR, Actor.SYSTEM)
    with pytest.raises(Conflict):
        await service.set_status(mailbox["id"], MailboxStatus.PENDING_BILLING, Actor.BILLING)
    await service.set_status(mailbox["id"], MailboxStatus.PENDING_BILLING, Actor.ADMIN)
    await service.set_status(mailbox["id"], MailboxStatus.ACTIVE, Actor.ADMIN)

    assert (await api.http.delete(url, headers=api.owner)).status_code == 204
    deleted = (await api.http.get(url, headers=api.owner)).json()
    assert deleted["status"] == "deleted" and deleted["has_credentials"] is False
    row = await api.row(mailbox["id"])
    assert (row.password_sealed, row.llm_api_key_sealed, row.login) == (None, None, "")
    assert (await api.http.get("/api/v1/mailboxes", headers=api.owner)).json() == []
    with_deleted = await api.http.get("/api/v1/mailboxes?include_deleted=true", headers=api.owner)
    assert [m["id"] for m in with_deleted.json()] == [mailbox["id"]]

    assert (await api.http.patch(url, json={"tone": "x"}, headers=api.owner)).status_code == 409
    assert await owner_sets("active") == 409
    with pytest.raises(Conflict):
        await service.set_status(mailbox["id"], MailboxStatus.ACTIVE, Actor.ADMIN)
    assert (await api.http.delete(url, headers=api.owner)).status_code == 204
    assert (await api.http.get(f"{url}/activity", headers=api.owner)).status_code == 200
    # The address stays reserved: mail for the old mailbox must never reach a new one.
    response = await api.http.post("/api/v1/mailboxes", json=external(), headers=api.owner)
    assert response.status_code == 409


async def test_activity_pages_and_stats(api: Api) -> None:
    first = await api.create({"kind": "hosted", "handle": "first"})
    second = await api.create({"kind": "hosted", "handle": "second"})
    log = ActivityLog(api.services.sessions)
    plan = {
        ActivityAction.REPLIED: 20,
        ActivityAction.DRAFTED: 5,
        ActivityAction.TESTED_PERSONA: 3,
        ActivityAction.ESCALATED: 7,
        ActivityAction.SKIPPED: 10,
    }
    for action, count in plan.items():
        for n in range(count):
            await log.record(
                first["id"], action, recipient=f"r{n}@example.org", reason="test", message_id_hash="ab" * 32
            )
    await log.record(second["id"], ActivityAction.ESCALATED)
    url = f"/api/v1/mailboxes/{first['id']}/activity"

    page = (await api.http.get(url, headers=api.owner)).json()
    assert (page["total"], page["page"], page["size"], page["pages"], len(page["items"])) == (
        45,
        1,
        20,
        3,
        20,
    )
    assert set(page["items"][0]) == {
        "id",
        "action",
        "recipient",
        "reason",
        "message_id_hash",
        "created_at",
        "reply_outbox_id",  # metadata only: content is never in the log (it links the sandbox outbox)
    }
    assert page["items"][0]["reply_outbox_id"] is None, "no job, no reply"
    last = (await api.http.get(url, params={"page": 3, "size": 20}, headers=api.owner)).json()
    assert len(last["items"]) == 5
    ids = [item["id"] for item in page["items"]] + [item["id"] for item in last["items"]]
    assert ids == sorted(ids, reverse=True)
    assert (await api.http.get(url, params={"page": 9}, headers=api.owner)).json()["items"] == []
    escalated = (
        await api.http.get(url, params={"action": "escalated", "size": 200}, headers=api.owner)
    ).json()
    assert escalated["total"] == 7 and {i["action"] for i in escalated["items"]} == {"escalated"}
    for params in ({"size": 500}, {"size": 0}, {"page": 0}, {"page": "x"}, {"action": "bogus"}):
        response = await api.http.get(url, params=params, headers=api.owner)
        assert response.status_code == 400, params
    assert "200" in (await api.http.get(url, params={"size": 500}, headers=api.owner)).json()["detail"]

    stats = (await api.http.get("/api/v1/stats", headers=api.owner)).json()
    assert (stats["handled"], stats["escalated"]) == (28, 8)
    owner_id = (await api.row(first["id"])).owner_id
    remaining = await Credits(api.services.sessions, api.services.settings).remaining(owner_id)
    assert stats["remaining_credits"] == remaining
    by_id = {m["id"]: m for m in stats["mailboxes"]}
    assert (by_id[first["id"]]["handled"], by_id[first["id"]]["escalated"]) == (28, 7)
    assert by_id[first["id"]]["counts"]["skipped"] == 10
    assert (by_id[second["id"]]["handled"], by_id[second["id"]]["escalated"]) == (0, 1)
    other = (await api.http.get("/api/v1/stats", headers=api.other)).json()
    assert (other["handled"], other["escalated"], other["mailboxes"]) == (0, 0, [])


def mailbox_routes(mailbox_id: int, commit: str) -> list[tuple[str, str, Any]]:
    base = f"/api/v1/mailboxes/{mailbox_id}"
    return [
        ("GET", base, None),
        ("PATCH", base, {"tone": "hijacked"}),
        ("POST", f"{base}/status", {"status": "inactive"}),
        ("GET", f"{base}/persona/history", None),
        ("GET", f"{base}/persona/history/{commit}", None),
        ("GET", f"{base}/activity", None),
        ("DELETE", base, None),
    ]


async def test_tenant_isolation(api: Api) -> None:
    hosted = await api.create({"kind": "hosted", "handle": "mine", "persona": "Secret persona."})
    ext = await api.create(external())
    history = await api.http.get(f"/api/v1/mailboxes/{hosted['id']}/persona/history", headers=api.owner)
    commit = history.json()[0]["commit"]
    for mailbox in (hosted, ext, {"id": 2**40}):
        for method, url, body in mailbox_routes(mailbox["id"], commit):
            response = await api.http.request(method, url, json=body, headers=api.other)
            assert response.status_code == 404, (method, url)
            assert "Secret persona" not in response.text
    assert (await api.http.get("/api/v1/mailboxes", headers=api.other)).json() == []
    assert (await api.http.get("/api/v1/mailboxes?include_deleted=true", headers=api.other)).json() == []
    for mailbox in (hosted, ext):
        mine = await api.http.get(f"/api/v1/mailboxes/{mailbox['id']}", headers=api.owner)
        assert mine.json() == mailbox  # untouched by the other user's attempts


@SQLITE_ONLY
async def test_every_route_needs_a_token(api: Api) -> None:
    hosted = await api.create({"kind": "hosted", "handle": "guarded"})
    routes = [
        *mailbox_routes(hosted["id"], "a" * 40),
        ("POST", "/api/v1/mailboxes", {"kind": "hosted", "handle": "x"}),
        ("GET", "/api/v1/mailboxes", None),
        ("GET", "/api/v1/stats", None),
    ]
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic b3duZXI6cHc="}):
        for method, url, body in routes:
            response = await api.http.request(method, url, json=body, headers=headers)
            assert response.status_code == 401, (method, url, headers)
    assert (await api.http.get(f"/api/v1/mailboxes/{hosted['id']}", headers=api.owner)).json() == hosted


async def test_persona_history_ignores_user_git_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / "hooks").mkdir(parents=True)
    (home / "hooks" / "pre-commit").write_text("#!/bin/sh\nexit 1\n")
    (home / "hooks" / "pre-commit").chmod(0o755)
    hostile = [
        "[user]\n\temail = intruder@example.com",
        "[commit]\n\tgpgsign = true",
        f"[core]\n\thooksPath = {home / 'hooks'}",
    ]
    (home / ".gitconfig").write_text("\n".join(hostile) + "\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))
    history = PersonaHistory(tmp_path / "personas")
    await history.record(1, "one", "a@example.com")
    await history.record(2, "two", "b@example.com")
    versions = await history.history(1)
    assert [(v.author, v.chars) for v in versions] == [("a@example.com", 3)]
    assert await history.version(1, versions[0].commit) == "one"

    await history.erase_mailboxes([1])
    assert not (tmp_path / "personas" / "1").exists()
    assert await history.history(1) == []
    assert [v.author for v in await history.history(2)] == ["b@example.com"]
