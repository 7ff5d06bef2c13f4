"""Onboarding API: e-mail autoconfig (auth, validation, rate limit) and the CSV batch import
(per-row results streamed as NDJSON, refusals, tenant isolation), over real HTTP on SQLite and
PostgreSQL.

Discovery runs with an injected DNS fake and fetcher (``app.state[DISCOVER_STATE_KEY]``): no test
asks a real DNS server or web host anything.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mailhook.api.controllers.onboarding import DISCOVER_STATE_KEY
from mailhook.app import create_app
from mailhook.autoconfig import MxRecord, SrvRecord, discover
from mailhook.errors import ValidationFailed
from mailhook.net.fetch import FetchRefused
from mailhook.services import Services
from mailhook.store.batch import MAX_ROWS, BatchRow, import_rows, parse_batch_csv
from mailhook.store.models import Mailbox, User
from tests.support import TwoUserApi, two_user_api

SECRET = "batch-secret-Qx7#p2"
HOSTED = "agent_name,password\n"
EXTERNAL = "email,username,password,imap_host,imap_port,smtp_host,smtp_port\n"
CSV = {"Content-Type": "text/csv"}


class FakeDns:
    """SRV and MX answers for example.org only; everything else does not exist."""

    async def srv(self, name: str) -> list[SrvRecord]:
        records = {
            "_imaps._tcp.example.org": [SrvRecord(0, 1, 993, "mail.example.org")],
            "_submission._tcp.example.org": [SrvRecord(0, 1, 587, "mail.example.org")],
        }
        return records.get(name, [])

    async def mx(self, domain: str) -> list[MxRecord]:
        return [MxRecord(10, "aspmx.l.google.com")] if domain == "workspace.example" else []


async def no_documents(url: str) -> str:
    raise FetchRefused(f"{url}: the server answered HTTP 404")


@dataclass
class Api(TwoUserApi):
    owner_id: int

    async def batch(
        self, kind: str, text: str | bytes, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.http.post(
            "/api/v1/mailboxes/batch",
            params={"kind": kind},
            content=text.encode() if isinstance(text, str) else text,
            headers={**CSV, **(headers if headers is not None else self.owner)},
        )

    async def mailboxes(self) -> list[Mailbox]:
        async with self.services.sessions() as session:
            return list((await session.scalars(select(Mailbox).order_by(Mailbox.id))).all())


@pytest.fixture
async def api(services: Services) -> AsyncIterator[Api]:
    app = create_app(services, migrate=False)
    app.state[DISCOVER_STATE_KEY] = functools.partial(discover, resolver=FakeDns(), fetch=no_documents)
    async with two_user_api(services, app) as (http, (owner_id, owner), (_, other)):
        yield Api(http, services, owner, other, owner_id)


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


# --- autoconfig ---------------------------------------------------------------------------------


async def test_autoconfig_answers_with_sources(api: Api) -> None:
    response = await api.http.get(
        "/api/v1/email-autoconfig", params={"email": "Alice@Example.org"}, headers=api.owner
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["email"] == "alice@example.org"
    assert body["imap"] == {
        "host": "mail.example.org",
        "port": 993,
        "security": "ssl",
        "source": "srv",
        "username": "alice@example.org",
    }
    assert (body["smtp"]["host"], body["smtp"]["port"], body["smtp"]["security"]) == (
        "mail.example.org",
        587,
        "starttls",
    )
    assert body["smtp"]["source"] == "srv"
    assert isinstance(body["notes"], list)

    gmail = (await api.http.get("/api/v1/email-autoconfig?email=a@gmail.com", headers=api.owner)).json()
    assert (gmail["imap"]["source"], gmail["provider"]) == ("preset", "Gmail")
    workspace = (
        await api.http.get("/api/v1/email-autoconfig?email=a@workspace.example", headers=api.owner)
    ).json()
    assert (workspace["imap"]["host"], workspace["imap"]["source"]) == ("imap.gmail.com", "mx-guess")
    guess = (await api.http.get("/api/v1/email-autoconfig?email=a@unknown.example", headers=api.owner)).json()
    assert guess["imap"]["host"] == "imap.unknown.example" and guess["imap"]["source"] == "mx-guess"


async def test_autoconfig_needs_auth_and_a_valid_address(api: Api) -> None:
    path = "/api/v1/email-autoconfig"
    assert (await api.http.get(path, params={"email": "a@gmail.com"})).status_code == 401
    bad_token = {"Authorization": "Bearer nope"}
    assert (await api.http.get(path, params={"email": "a@gmail.com"}, headers=bad_token)).status_code == 401
    for email in ("not-an-address", "a@127.0.0.1", "a@localhost"):
        response = await api.http.get(path, params={"email": email}, headers=api.owner)
        assert response.status_code == 400, (email, response.text)
        assert response.json()["error"] == "ValidationFailed"
    assert (await api.http.get(path, headers=api.owner)).status_code == 400  # no email at all


async def test_autoconfig_is_rate_limited_per_user(api: Api) -> None:
    path = "/api/v1/email-autoconfig?email=a@gmail.com"
    # The limit counts every call in the minute; earlier tests in this app do not share it.
    statuses = [(await api.http.get(path, headers=api.owner)).status_code for _ in range(11)]
    assert statuses == [200] * 10 + [429]
    limited = await api.http.get(path, headers=api.owner)
    assert limited.json()["error"] == "RateLimited"
    assert (await api.http.get(path, headers=api.other)).status_code == 200  # per user


# --- batch import -------------------------------------------------------------------------------


async def test_hosted_batch_reports_each_row_and_carries_on(api: Api) -> None:
    domain = api.services.settings.agent.domain
    text = HOSTED + 'support,\nabuse,\nsales,\n=HYPERLINK("http://x"),\nbilling,hunter2-unused\n'
    response = await api.batch("hosted", text)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    lines = ndjson(response)
    assert len(lines) == 5 + 1
    rows, summary = lines[:-1], lines[-1]
    assert [(r["row"], r["of"], r["status"]) for r in rows] == [
        (1, 5, "created"),
        (2, 5, "error"),
        (3, 5, "created"),
        (4, 5, "error"),
        (5, 5, "created"),
    ]
    assert summary == {"done": True, "of": 5, "created": 3, "failed": 2}
    assert rows[0]["address"] == f"support@{domain}" and isinstance(rows[0]["mailbox_id"], int)
    assert rows[1]["error"] == "ValidationFailed" and "reserved" in rows[1]["detail"]
    assert rows[3]["error"] == "ValidationFailed" and "formula" in rows[3]["detail"]
    assert "HYPERLINK" not in response.text  # a formula cell is never echoed
    assert "ignored" in rows[4]["warnings"][0]  # the hosted password column
    assert "hunter2" not in response.text

    created = [m for m in await api.mailboxes() if m.kind == "hosted"]
    assert {m.address for m in created} == {f"{h}@{domain}" for h in ("support", "sales", "billing")}
    assert all(m.owner_id == api.owner_id and m.password_sealed is None for m in created)
    # The caller's own list has them; the other tenant sees none of them.
    mine = (await api.http.get("/api/v1/mailboxes", headers=api.owner)).json()
    assert {m["id"] for m in mine} == {r["mailbox_id"] for r in rows if r["status"] == "created"}
    assert (await api.http.get("/api/v1/mailboxes", headers=api.other)).json() == []
    hidden = await api.http.get(f"/api/v1/mailboxes/{rows[0]['mailbox_id']}", headers=api.other)
    assert hidden.status_code == 404


async def test_external_batch_seals_passwords_and_reports_errors(api: Api) -> None:
    text = EXTERNAL + "\n".join(
        [
            f"help@example.org,help-login,{SECRET},imap.example.org,993,smtp.example.org,465",
            f"sales@example.org,sales-login,{SECRET},imap.example.org,,smtp.example.org,",
            f"bad-port@example.org,x,{SECRET},imap.example.org,nine,smtp.example.org,465",
            f"help@example.org,again,{SECRET},imap.example.org,993,smtp.example.org,465",  # duplicate
            "short@example.org,only,three",
            f'"quoted@example.org","login, with comma"," {SECRET} ",mail.example.org,143,'
            "mail.example.org,587",
        ]
    )
    response = await api.batch("external", text)
    assert response.status_code == 200, response.text
    rows = ndjson(response)[:-1]
    assert [r["status"] for r in rows] == ["created", "created", "error", "error", "error", "created"]
    assert rows[2]["detail"] == "imap_port must be a whole number between 1 and 65535"
    assert rows[3]["error"] == "Conflict"
    assert rows[4]["detail"] == "expected 7 columns, found 3"
    for secret in (SECRET, "help-login", "login, with comma"):
        assert secret not in response.text

    by_address = {m.address: m for m in await api.mailboxes()}
    sales = by_address["sales@example.org"]
    assert (sales.imap_port, sales.smtp_port) == (993, 465)  # empty ports: the defaults
    quoted = by_address["quoted@example.org"]
    assert quoted.login == "login, with comma"
    assert quoted.password_sealed is not None
    assert api.services.sealer.open(quoted.password_sealed).decode() == f" {SECRET} "  # kept as typed
    assert SECRET.encode() not in quoted.password_sealed


async def test_batch_streams_progress_line_by_line(api: Api) -> None:
    text = HOSTED + "".join(f"agent-{n},\n" for n in range(1, 8))
    seen: list[dict[str, Any]] = []
    async with api.http.stream(
        "POST", "/api/v1/mailboxes/batch?kind=hosted", content=text.encode(), headers={**CSV, **api.owner}
    ) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line:
                seen.append(json.loads(line))
    assert [line.get("row") for line in seen] == [1, 2, 3, 4, 5, 6, 7, None]
    assert all(line["of"] == 7 for line in seen)
    assert seen[-1] == {"done": True, "of": 7, "created": 7, "failed": 0}


async def test_batch_refuses_unusable_files_before_creating_anything(api: Api) -> None:
    hundred_and_one = HOSTED + "".join(f"agent-{n},\n" for n in range(101))
    cases: list[tuple[str, str | bytes, int, dict[str, str] | None]] = [
        ("hosted", "handle,password\nsupport,\n", 400, None),  # wrong header
        ("hosted", "", 400, None),  # empty
        ("hosted", HOSTED, 400, None),  # header only
        ("hosted", hundred_and_one, 400, None),
        ("hosted", EXTERNAL + "a@example.org,a,b,c,1,d,2\n", 400, None),  # the other kind's header
        ("external", HOSTED + "support,\n", 400, None),
        ("hosted", HOSTED + 'support,"unterminated\n', 400, None),
        ("hosted", HOSTED.encode() + b"caf\xe9,\n", 400, None),  # not UTF-8
        ("mixed", HOSTED + "support,\n", 400, None),  # unknown kind
        ("hosted", HOSTED + "x" * (1024 * 1024) + ",\n", 413, None),
        ("hosted", HOSTED + "support,\n", 401, {}),
    ]
    for kind, text, status, headers in cases:
        response = await api.batch(kind, text, headers)
        assert response.status_code == status, (kind, str(text)[:60], response.text[:200])
        if status == 400:
            assert response.json()["error"] in {"ValidationFailed", "ValidationException"}
    wrong_type = await api.http.post(
        "/api/v1/mailboxes/batch?kind=hosted",
        content=(HOSTED + "support,\n").encode(),
        headers={**api.owner, "Content-Type": "application/json"},
    )
    assert wrong_type.status_code == 415
    assert await api.mailboxes() == []

    too_many = await api.batch("hosted", hundred_and_one)
    assert "at most 100 rows" in too_many.json()["detail"]
    header = await api.batch("hosted", "=cmd|' /C calc'!A0,password\n")
    assert "cmd" not in header.text  # the header error does not repeat what it got


# --- parsing and the row loop, without HTTP -----------------------------------------------------


def test_parse_batch_csv_details() -> None:
    text = "\ufeffagent_name,password\r\n\r\nsupport, keep spaces ,,\r\n  sales  ,\r\n"
    rows = parse_batch_csv(text, "hosted")
    assert [(r.number, r.values, r.problem) for r in rows] == [
        (1, {"agent_name": "support", "password": " keep spaces "}, None),
        (2, {"agent_name": "sales", "password": ""}, None),
    ]
    assert "keep spaces" not in repr(rows[0])
    assert len(parse_batch_csv(HOSTED + "a,\n" * MAX_ROWS, "hosted")) == MAX_ROWS
    with pytest.raises(ValidationFailed, match="at most 100"):
        parse_batch_csv(HOSTED + "a,\n" * (MAX_ROWS + 1), "hosted")
    multiline = parse_batch_csv(HOSTED + 'support,"two\nlines"\n', "hosted")
    assert multiline[0].values["password"] == "two\nlines"
    for cell in ("+1", "-x", "@SUM(A1)", "=1+1"):
        (row,) = parse_batch_csv(HOSTED + f"{cell},\n", "hosted")
        assert row.problem is not None and cell not in row.problem
    (ok,) = parse_batch_csv(HOSTED + "support,=password-may-start-like-this\n", "hosted")
    assert ok.problem is None


async def test_an_unexpected_error_fails_one_row_only() -> None:
    class Flaky:
        def __init__(self) -> None:
            self.calls = 0

        async def create_hosted(self, owner: User, handle: str) -> Mailbox:
            self.calls += 1
            if handle == "boom":
                raise RuntimeError("database exploded: secret details")
            return Mailbox(id=self.calls, address=f"{handle}@agents.test")

    rows = [
        BatchRow(n, "hosted", {"agent_name": h, "password": ""}) for n, h in enumerate(["a", "boom", "c"], 1)
    ]
    flaky = Flaky()
    results = [r async for r in import_rows(flaky, User(id=1), rows)]  # type: ignore[arg-type]
    assert [(r.row, r.status) for r in results] == [(1, "created"), (2, "error"), (3, "created")]
    assert results[1].error == "InternalError" and "secret" not in (results[1].detail or "")
    assert flaky.calls == 3
