"""One-click unsubscribe (RFC 8058): the link in a reply stops every later reply to that person."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from mailhook.services import Services
from tests.fakes.llm import FakeLLM
from tests.lmtp_client import lmtp_send, make_message
from tests.support import activity, outbox, text_of, wait_for_jobs


async def send(services: Services, subject: str) -> None:
    port = services.settings.lmtp.port
    await asyncio.to_thread(
        lmtp_send, port, "alice@example.org", ["bot@agents.test"], make_message(subject=subject)
    )


async def test_unsubscribe_link_stops_replies(
    services: Services, api: httpx.AsyncClient, fake_llm: FakeLLM
) -> None:
    await send(services, "first")
    await wait_for_jobs(services, 1)
    [reply] = await outbox(services)
    assert reply["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = reply["List-Unsubscribe"].strip("<>")
    assert url in text_of(reply), "the footer carries the same link"
    path = "/" + url.split("/", 3)[3]

    page = await api.get(path)
    assert page.status_code == 200 and "alice@example.org" in page.text and "<form" in page.text
    assert (await api.get(path[:-3] + "xyz")).status_code == 404, "a forged link does nothing"
    assert (await api.post("/u/garbage")).status_code == 404
    await send(services, "after only looking at the page")
    await wait_for_jobs(services, 2)
    done = await api.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200 and "Unsubscribed" in done.text
    requests_before = len(fake_llm.requests)
    await send(services, "after unsubscribing")
    await wait_for_jobs(services, 3)
    rows = await activity(services)
    assert [r.action for r in rows] == ["replied", "replied", "skipped"], "GET alone never unsubscribes"
    assert rows[-1].reason == "unsubscribed"
    assert len(fake_llm.requests) == requests_before, "no model call for an unsubscribed sender"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_hostile_unsubscribe_links_are_404_not_errors(api: httpx.AsyncClient) -> None:
    forged = [
        "YWxpY2VAZXhhbXBsZS5vcmc.é",  # a MAC with non-ASCII text
        "YWxpY2VAZXhhbXBsZS5vcmc.%F0%9F%92%A5",
        "%FF%FE.abc",
        "." + "a" * 2000,
        "YWxpY2VAZXhhbXBsZS5vcmc.",
        "!!!.???",
    ]
    for token in forged:
        for method, url in (
            ("GET", f"/u/{token}"),
            ("POST", f"/u/{token}"),
            ("GET", f"/unsubscribe?token={token}"),
            ("POST", f"/unsubscribe?token={token}"),
        ):
            response = await api.request(method, url)
            assert response.status_code == 404, (method, url, response.status_code)
            assert "This unsubscribe link is not valid." in response.text
