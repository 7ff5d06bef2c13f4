"""The mailbox document list: hostile lists, the model's pick, and fetching the picked documents.

Fetches go through the real :func:`fetch_document` with an injected resolver and an httpx
MockTransport, so nothing leaves the machine.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import structlog

from mailhook.agent.documents import (
    DocumentRef,
    fetch_selected,
    load_manifest,
    parse_documents,
    parse_selection,
    select_prompt,
)
from mailhook.errors import ValidationFailed
from mailhook.net.fetch import FetchUnavailable

PUBLIC_IP = "93.184.216.34"

PRICING = {"name": "Pricing", "description": "Plans and prices", "url": "https://docs.example.com/pricing"}
RETURNS = {"name": "Returns", "description": "How to send things back", "url": "https://docs.example.com/r"}


def docs(*names: str) -> list[DocumentRef]:
    return [
        DocumentRef(name, f"about {name}", f"https://docs.example.com/{n}") for n, name in enumerate(names)
    ]


# --- parse_documents --------------------------------------------------------------------------


def test_inline_json_list_is_parsed() -> None:
    parsed = parse_documents(json.dumps([PRICING, RETURNS]))
    assert parsed == [
        DocumentRef("Pricing", "Plans and prices", "https://docs.example.com/pricing"),
        DocumentRef("Returns", "How to send things back", "https://docs.example.com/r"),
    ]
    assert parse_documents([PRICING]) == parsed[:1]


def test_blank_setting_means_no_documents_and_description_is_optional() -> None:
    assert parse_documents("") == parse_documents("  \n") == parse_documents([]) == []
    (doc,) = parse_documents([{"name": " FAQ ", "url": "http://docs.example.com/faq"}])
    assert (doc.name, doc.description) == ("FAQ", "")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"name": "Pricing"}', "expected a JSON array of {name, description, url} objects, got an object"),
        ('"just text"', "got a string"),
        ("42", "got a number"),
        ("null", "got null"),
        ("[1, 2", "documents: not valid JSON"),
        ("[" * 100_000, "documents: not valid JSON"),
        ('["Pricing"]', "document 1: expected an object with name, description and url, got a string"),
        ("[[]]", "document 1: expected an object"),
        ('[{"url": "https://x.example"}]', 'document 1: "name" must be a non-empty string, got null'),
        ('[{"name": "  ", "url": "https://x.example"}]', 'document 1: "name" must be a non-empty string'),
        ('[{"name": 7, "url": "https://x.example"}]', '"name" must be a non-empty string, got a number'),
        ('[{"name": true, "url": "https://x.example"}]', "got a boolean"),
        ('[{"name": "A", "url": "https://x.example", "descripton": "typo"}]', "unknown field 'descripton'"),
        (
            '[{"name": "A", "description": ["x"], "url": "https://x.example"}]',
            '"description" must be a string',
        ),
        ('[{"name": "A"}]', 'document 1 ("A"): "url" must be a non-empty string, got null'),
        ('[{"name": "A", "url": 3}]', '"url" must be a non-empty string, got a number'),
    ],
)
def test_malformed_lists_say_which_item_and_field(value: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_documents(value)
    assert message in str(caught.value)


def test_the_bad_item_is_named_by_position() -> None:
    items: list[object] = [PRICING, RETURNS, {"name": "Broken", "url": "ftp://docs.example.com/x"}]
    with pytest.raises(ValidationFailed, match=r'^document 3 \("Broken"\): "url" must start with http'):
        parse_documents(items)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.cookie)",
        "JAVASCRIPT:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "ftp://docs.example.com/a",
        "//docs.example.com/a",
        "/relative/path",
        "https://",
        "https://user:pw@docs.example.com/",
        "https://docs.example.com/a b",
        "https://docs.example.com/\nHost: evil",
        " https://docs.example.com/",
    ],
)
def test_only_plain_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(ValidationFailed, match=r'document 1 \("A"\): "url"'):
        parse_documents([{"name": "A", "url": url}])


def test_duplicate_names_are_refused_even_in_another_case() -> None:
    with pytest.raises(ValidationFailed, match=r'^document 2: name "pricing" is already used by document 1$'):
        parse_documents([PRICING, {**PRICING, "name": "pricing"}])


@pytest.mark.parametrize("name", ["Price\nlist", "Price\r- forged", "Tab\tname", "Nul\x00", "Line\u2028sep"])
def test_names_cannot_break_the_prompt_list(name: str) -> None:
    with pytest.raises(ValidationFailed, match="line breaks or control characters"):
        parse_documents([{"name": name, "url": "https://docs.example.com/"}])


def test_ten_thousand_items_are_refused_by_count() -> None:
    items = [{"name": f"doc {n}", "url": f"https://docs.example.com/{n}"} for n in range(10_000)]
    with pytest.raises(ValidationFailed, match="at most 50 are allowed, got 10000"):
        parse_documents(items)
    with pytest.raises(ValidationFailed, match="longer than"):
        parse_documents(json.dumps(items))  # 10,000 items do not even fit the size limit
    assert len(parse_documents(items[:50])) == 50


@pytest.mark.parametrize(
    ("field", "size", "message"),
    [
        ("name", 201, '"name" is longer than 200 characters'),
        ("description", 1001, '"description" is longer than 1000 characters'),
        ("url", 5000, '"url" is longer than 2048 characters'),
    ],
)
def test_huge_strings_are_refused(field: str, size: int, message: str) -> None:
    item = {"name": "A", "description": "", "url": "https://docs.example.com/"}
    item[field] = "https://docs.example.com/" + "a" * size if field == "url" else "a" * size
    with pytest.raises(ValidationFailed, match=message):
        parse_documents([item])
    with pytest.raises(ValidationFailed, match="longer than"):
        parse_documents("[" + " " * 300_000 + "]")


def test_limits_are_inclusive() -> None:
    (doc,) = parse_documents(
        [{"name": "n" * 200, "description": "d" * 1000, "url": "https://docs.example.com/"}]
    )
    assert len(doc.name) == 200 and len(doc.description) == 1000


def test_huge_unknown_key_is_not_echoed_whole() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_documents([{"name": "A", "url": "https://x.example", "k" * 100_000: 1}])
    assert len(str(caught.value)) < 200


# --- what the model sees and answers ----------------------------------------------------------


def test_select_prompt_lists_names_as_json_with_descriptions() -> None:
    listed = parse_documents(
        [PRICING, {"name": 'Say "hi"', "description": "multi\n  line", "url": PRICING["url"]}]
    )
    prompt = select_prompt(listed)
    lines = prompt.splitlines()
    assert "JSON array" in lines[0] and "at most 3" in lines[0]
    assert lines[1:] == ['- "Pricing": Plans and prices', '- "Say \\"hi\\"": multi line']
    assert select_prompt([]) == ""


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('["Pricing"]', ["Pricing"]),
        ('["pricing", "RETURNS"]', ["Pricing", "Returns"]),
        ('```json\n["Returns"]\n```', ["Returns"]),
        ('I would look at ["Warranty", "Pricing"] for this.', ["Warranty", "Pricing"]),
        ('["A", "B", "C", "D", "E"]', ["A", "B", "C"]),
        ('["Pricing", "Pricing", "pricing"]', ["Pricing"]),
        ('["Unknown", 7, null, {"name": "Pricing"}, ["Returns"]]', []),
        ("[]", []),
        ("none of them", []),
        ("", []),
        ("[[[[[[", []),
        ('{"documents": ["Returns"]}', ["Returns"]),
    ],
)
def test_model_selection_keeps_known_names_only(answer: str, expected: list[str]) -> None:
    available = docs("Pricing", "Returns", "Warranty", "A", "B", "C", "D", "E")
    assert [doc.name for doc in parse_selection(answer, available)] == expected


def test_huge_or_hostile_answers_are_cheap_to_parse() -> None:
    available = docs("Pricing")
    assert parse_selection("[" * 1_000_000 + '"Pricing"]', available) == []
    assert parse_selection("[x" * 100_000 + '["Pricing"]', available) == []
    assert parse_selection("x" * 5_000 + '["Pricing"]', available) == available


# --- fetching ---------------------------------------------------------------------------------


PAGES: dict[str, tuple[int, str, str]] = {
    "/pricing": (200, "text/plain", "Pro plan: 20 EUR a month"),
    "/returns": (200, "text/html", "<h1>Returns</h1><p>Within 30 days.</p><script>evil()</script>"),
    "/down": (503, "text/plain", "maintenance"),
    "/huge": (200, "text/plain", "z" * 50_000),
    "/manifest": (200, "application/json", json.dumps([PRICING, RETURNS])),
    "/bad-manifest": (200, "application/json", json.dumps([PRICING, PRICING])),
}


@pytest.fixture
async def web() -> AsyncIterator[dict[str, Any]]:
    """Fetch options that route docs.example.com to a MockTransport serving ``PAGES``."""
    requested: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requested.append(request.url.path)
        status, content_type, body = PAGES[request.url.path]
        return httpx.Response(status, headers={"content-type": content_type}, text=body)

    async def resolver(host: str, port: int) -> list[str]:
        return {"docs.example.com": [PUBLIC_IP], "intranet.example.com": ["10.0.0.8"]}[host]

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        yield {"client": client, "resolver": resolver, "requested": requested}


def ref(name: str, path: str, host: str = "docs.example.com") -> DocumentRef:
    return DocumentRef(name, "", f"https://{host}{path}")


async def test_selected_documents_are_fetched_fresh_each_time(web: dict[str, Any]) -> None:
    requested = web.pop("requested")
    picked = [ref("Pricing", "/pricing"), ref("Returns", "/returns")]
    first = await fetch_selected(picked, **web)
    second = await fetch_selected(picked, **web)
    assert (
        first
        == second
        == [(picked[0], "Pro plan: 20 EUR a month"), (picked[1], "Returns\n\nWithin 30 days.")]
    )
    assert sorted(requested) == ["/pricing", "/pricing", "/returns", "/returns"]


async def test_failures_are_skipped_and_logged_by_name_only(web: dict[str, Any]) -> None:
    web.pop("requested")
    picked = [
        ref("Status", "/down"),
        ref("Wiki", "/x?token=s3cret", "intranet.example.com"),
        ref("P", "/pricing"),
    ]
    with structlog.testing.capture_logs() as logs:
        fetched = await fetch_selected(picked, **web)
    assert [doc.name for doc, _ in fetched] == ["P"]
    assert sorted((e["event"], e["document"], e["error"]) for e in logs) == [
        ("document_fetch_failed", "Status", "FetchUnavailable"),
        ("document_fetch_failed", "Wiki", "FetchRefused"),
    ]
    assert "s3cret" not in repr(logs) and "intranet" not in repr(logs)


async def test_each_document_is_capped(web: dict[str, Any]) -> None:
    web.pop("requested")
    ((_, text),) = await fetch_selected([ref("Huge", "/huge")], **web)
    assert text == "z" * 20_000 + "\n[DOCUMENT TRUNCATED]"
    ((_, small),) = await fetch_selected([ref("Huge", "/huge")], max_chars=100, **web)
    assert small.startswith("z" * 100 + "\n[")


async def test_at_most_three_are_fetched(web: dict[str, Any]) -> None:
    requested = web.pop("requested")
    fetched = await fetch_selected([ref(f"P{n}", "/pricing") for n in range(6)], **web)
    assert len(fetched) == 3 and len(requested) == 3


async def test_manifest_is_fetched_and_validated(web: dict[str, Any]) -> None:
    web.pop("requested")
    listed = await load_manifest("https://docs.example.com/manifest", **web)
    assert [doc.name for doc in listed] == ["Pricing", "Returns"]
    with pytest.raises(
        ValidationFailed, match=r"^document manifest https://docs\.example\.com/bad-manifest: document 2"
    ):
        await load_manifest("https://docs.example.com/bad-manifest", **web)
    with pytest.raises(FetchUnavailable):
        await load_manifest("https://docs.example.com/down", **web)
