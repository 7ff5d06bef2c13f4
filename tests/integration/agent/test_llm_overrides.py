"""Per-mailbox model overrides over the API: the write-only key (sealed, never shown, never
logged), the override reaching a second model server for real mail, the install key kept from
tenant URLs, SSRF refusals (400), and a URL refused at call time escalating to the owner."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mailhook.services import Services
from mailhook.store.models import Mailbox
from tests.fakes.llm import FakeLLM
from tests.integration.agent.conftest import LOOPBACK_ALLOWED, HeaderRecordingLLM, configure_mailbox
from tests.lmtp_client import lmtp_send, make_message
from tests.support import TwoUserApi, activity, mailbox_row, outbox, two_user_api, wait_for_jobs

MAILBOX_KEY = "sk-mailbox-KEY-CANARY-0042"
INSTALL_KEY = "sk-install-KEY-CANARY-7777"
ALLOWED = {**LOOPBACK_ALLOWED, "MAILHOOK_LLM_API_KEY": INSTALL_KEY}
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@dataclass
class Api(TwoUserApi):
    mailbox_id: int

    async def patch(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
        url = f"/api/v1/mailboxes/{self.mailbox_id}"
        return await self.http.patch(url, json=body, headers=headers or self.owner)

    async def row(self) -> Mailbox:
        return await mailbox_row(self.services, self.mailbox_id)

    async def send_mail(self) -> None:
        port = self.services.settings.lmtp.port
        data = make_message(to="support@agents.localhost")
        await asyncio.to_thread(lmtp_send, port, "alice@example.org", ["support@agents.localhost"], data)


@pytest.fixture
async def api(services: Services) -> AsyncIterator[Api]:
    async with two_user_api(services) as (http, (_, owner), (_, other)):
        created = await http.post(
            "/api/v1/mailboxes", json={"kind": "hosted", "handle": "support"}, headers=owner
        )
        assert created.status_code == 201, created.text
        yield Api(http, services, owner, other, created.json()["id"])


@pytest.mark.parametrize("extra_env", [ALLOWED])
async def test_override_is_used_and_the_key_is_write_only(
    api: Api, fake_llm: FakeLLM, second_llm: HeaderRecordingLLM, json_log: io.StringIO
) -> None:
    fresh = (await api.http.get(f"/api/v1/mailboxes/{api.mailbox_id}", headers=api.owner)).json()
    assert (fresh["llm_provider"], fresh["llm_base_url"], fresh["llm_model"]) == ("", "", "")
    assert fresh["has_llm_api_key"] is False and "llm_api_key" not in fresh

    body = {"llm_provider": "openai", "llm_base_url": second_llm.base_url + "/", "llm_model": "tenant-model"}
    response = await api.patch({**body, "llm_api_key": MAILBOX_KEY})
    assert response.status_code == 200, response.text
    shown = response.json()
    assert shown["llm_base_url"] == second_llm.base_url, "stored without the trailing slash"
    assert (shown["llm_provider"], shown["llm_model"], shown["has_llm_api_key"]) == (
        "openai",
        "tenant-model",
        True,
    )
    assert MAILBOX_KEY not in response.text
    listed = await api.http.get("/api/v1/mailboxes", headers=api.owner)
    assert MAILBOX_KEY not in listed.text
    row = await api.row()
    assert row.llm_api_key_sealed is not None and MAILBOX_KEY.encode() not in row.llm_api_key_sealed
    assert api.services.sealer.open(row.llm_api_key_sealed).decode() == MAILBOX_KEY

    await api.send_mail()
    await wait_for_jobs(api.services, 1)
    assert fake_llm.requests == [], "the install's model is not asked"
    [payload] = second_llm.requests
    assert payload["model"] == "tenant-model"
    assert second_llm.authorizations == [f"Bearer {MAILBOX_KEY}"]
    assert [r.action for r in await activity(api.services)] == ["replied"]
    assert len(await outbox(api.services)) == 1
    assert MAILBOX_KEY not in json_log.getvalue()

    cleared = await api.patch({"llm_api_key": "", "llm_provider": "", "llm_base_url": "", "llm_model": ""})
    assert cleared.json()["has_llm_api_key"] is False and (await api.row()).llm_api_key_sealed is None


@SQLITE_ONLY
@pytest.mark.parametrize("extra_env", [ALLOWED])
async def test_the_install_key_never_goes_to_a_tenant_url(
    api: Api, fake_llm: FakeLLM, second_llm: HeaderRecordingLLM
) -> None:
    assert (await api.patch({"llm_base_url": second_llm.base_url})).status_code == 200
    await api.send_mail()
    await wait_for_jobs(api.services, 1)
    assert second_llm.authorizations == [""], "no key of its own: none is sent"
    assert (await api.patch({"llm_api_key": MAILBOX_KEY})).status_code == 200
    await api.send_mail()
    await wait_for_jobs(api.services, 2)
    assert second_llm.authorizations == ["", f"Bearer {MAILBOX_KEY}"]
    assert fake_llm.requests == []


REFUSED_URLS = [
    "http://127.0.0.1:8000/v1",
    "https://127.0.0.1/v1",
    "https://localhost/v1",
    "https://169.254.169.254/latest/meta-data",
    "https://10.0.0.5/v1",
    "https://[::1]/v1",
    "https://[::ffff:10.0.0.5]/v1",
    "http://models.example.com/v1",
    "https://user:secret@models.example.com/v1",
    "https://models.example.com/v1?api-key=x",
    "file:///etc/passwd",
    "https://models.example.com/" + "a" * 600,
]
BAD_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"llm_provider": "gpt"}, "llm_provider"),
    ({"llm_provider": None}, ""),
    ({"llm_model": "m" * 201}, "llm_model"),
    ({"llm_model": "bad\nmodel"}, "llm_model"),
    ({"llm_api_key": "k" * 5000}, "llm_api_key"),
    ({"llm_api_key": "bad\x00key"}, "llm_api_key"),
    ({"llm_api_key_sealed": "x"}, ""),
    ({"has_llm_api_key": True}, ""),
]


@SQLITE_ONLY
async def test_private_or_malformed_urls_and_bad_fields_are_400(api: Api) -> None:
    for url in REFUSED_URLS:
        response = await api.patch({"llm_base_url": url})
        assert response.status_code == 400, (url, response.text)
        assert "llm_base_url" in response.json()["detail"], url
    for body, field in BAD_FIELDS:
        response = await api.patch(body)
        assert response.status_code == 400, (body, response.text)
        assert field in response.json()["detail"], body
    row = await api.row()
    assert (row.llm_provider, row.llm_base_url, row.llm_model, row.llm_api_key_sealed) == ("", "", "", None)


@SQLITE_ONLY
@pytest.mark.parametrize("extra_env", [ALLOWED])
async def test_other_tenants_cannot_set_or_see_overrides(api: Api, second_llm: FakeLLM) -> None:
    refused = await api.patch({"llm_base_url": second_llm.base_url, "llm_api_key": MAILBOX_KEY}, api.other)
    assert refused.status_code == 404
    row = await api.row()
    assert row.llm_base_url == "" and row.llm_api_key_sealed is None


@SQLITE_ONLY
@pytest.mark.parametrize("extra_env", [ALLOWED])
async def test_a_url_refused_at_call_time_escalates_to_the_owner(api: Api, fake_llm: FakeLLM) -> None:
    # Allowed when it was set, refused now (e.g. the allow-list changed): checked before each use.
    await configure_mailbox(api.services, "support@agents.localhost", llm_base_url="https://10.0.0.5/v1")
    await api.send_mail()
    await wait_for_jobs(api.services, 1)
    [row] = await activity(api.services)
    assert row.action == "escalated" and "10.0.0.5" in row.reason
    assert fake_llm.requests == []
