"""Which webhook URLs are called, and where: names are resolved (here by a stub resolver, no
network) and every address must be public unless the operator allowed the host."""

from __future__ import annotations

import pytest

from mailhook.settings import WebhookSettings
from mailhook.webhooks.urls import UrlPolicy, WebhookUrlRefused


def policy(answers: list[str], **settings: object) -> UrlPolicy:
    async def resolver(host: str, port: int) -> list[str]:
        if not answers:
            raise OSError("NXDOMAIN")
        return answers

    return UrlPolicy(WebhookSettings(**settings), resolver)  # type: ignore[arg-type]


async def test_public_name_is_pinned_to_the_vetted_address() -> None:
    target = await policy(["93.184.216.34"]).target("https://hooks.example.com/in?x=1")
    assert str(target.address) == "93.184.216.34" and target.url.host == "hooks.example.com"


@pytest.mark.parametrize(
    "answers",
    [
        ["127.0.0.1"],
        ["93.184.216.34", "10.1.2.3"],
        ["169.254.169.254"],
        ["::1"],
        ["64:ff9b::a00:1"],
        ["fd00::1"],
    ],
)
async def test_a_name_leading_to_a_private_address_is_refused(answers: list[str]) -> None:
    with pytest.raises(WebhookUrlRefused, match="public addresses"):
        await policy(answers).target("https://rebind.example.com/")


async def test_unresolvable_and_bogus_answers_are_refused() -> None:
    with pytest.raises(WebhookUrlRefused, match="cannot resolve"):
        await policy([]).target("https://nowhere.example/")
    with pytest.raises(WebhookUrlRefused, match="no usable address"):
        await policy(["not-an-ip"]).target("https://odd.example/")


async def test_allow_list_by_host_and_by_host_and_port() -> None:
    allowed = policy(["10.0.0.5"], allow_hosts="hooks.internal:8443, 192.168.1.9")
    assert str((await allowed.target("https://hooks.internal:8443/x")).address) == "10.0.0.5"
    assert str((await allowed.target("https://192.168.1.9/x")).address) == "192.168.1.9"
    with pytest.raises(WebhookUrlRefused):
        await allowed.target("https://hooks.internal/x")  # port 443 is not the allowed one


async def test_http_only_when_allowed() -> None:
    with pytest.raises(WebhookUrlRefused, match="only https"):
        await policy(["93.184.216.34"]).target("http://hooks.example.com/")
    assert await policy(["93.184.216.34"], allow_http=True).target("http://hooks.example.com/")
