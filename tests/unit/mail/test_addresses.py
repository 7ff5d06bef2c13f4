"""Address parsing: normalisation, list parsing of hostile headers, display names, domains."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailhook.mail.addresses import (
    decode_address_header,
    display_name,
    domain_of,
    is_valid_address,
    normalize_address,
    parse_address_list,
)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("Bob@Example.ORG", "bob@example.org"),
        ("  <Bob@Example.org>  ", "bob@example.org"),
        ("Bob Smith <Bob@Example.org>", "bob@example.org"),
        ("<@relay.example:bob@example.org>", "bob@example.org"),  # RFC 5321 source route
        ("MAILER-DAEMON", "mailer-daemon"),
        ("<>", ""),
        ("", ""),
        ("   ", ""),
    ],
)
def test_normalize_address(raw: str, normalized: str) -> None:
    assert normalize_address(raw) == normalized


@pytest.mark.parametrize(
    "addr",
    ["a@b", "first.last@example.org", "x+tag@sub.example.co.uk", '"john smith"@x.org', "jörg@bücher.de"],
)
def test_is_valid_address_accepts_real_addresses(addr: str) -> None:
    assert is_valid_address(addr)


@pytest.mark.parametrize(
    "addr",
    [
        "",
        "nobody",
        "@x.org",
        "a@",
        "a b@x.org",
        "a@b@c",
        "a@x.org\r\nBcc: v@x",
        "<a@x>",
        "a@x,b@y",
        "x" * 65 + "@x",
    ],
)
def test_is_valid_address_rejects_garbage(addr: str) -> None:
    assert not is_valid_address(addr)


def test_parse_address_list_normalizes_dedupes_and_keeps_order() -> None:
    values = ["Bob <Bob@X.org>, carol@x.org", "BOB@x.org, dave@x.org", "Carol <CAROL@X.ORG>"]
    assert parse_address_list(values) == ("bob@x.org", "carol@x.org", "dave@x.org")


def test_parse_address_list_respects_quotes_comments_and_groups() -> None:
    values = [
        '"Doe, John" <john@x.org>, "a <fake@evil.org>" <real@x.org>',
        "team: ann@x.org, ben@x.org;, undisclosed-recipients:;",
        "old@x.org (Old, Style <not@this.org>)",
    ]
    assert parse_address_list(values) == (
        "john@x.org",
        "real@x.org",
        "ann@x.org",
        "ben@x.org",
        "old@x.org",
    )


def test_parse_address_list_skips_garbage_items() -> None:
    values = ["not an address, , ;;, <>, @@@, a@, still@ok.org", "", "<unterminated@x.org"]
    assert parse_address_list(values) == ("still@ok.org", "unterminated@x.org")


def test_two_angle_addrs_in_one_item_are_refused() -> None:
    # An illegal encoded-word hiding "<x@evil>" before the real address: we do not guess.
    assert parse_address_list(["=?utf-8?q?a_<x@evil.org>?= <real@x.org>, ok@x.org"]) == ("ok@x.org",)


def test_encoded_display_name_cannot_add_a_recipient() -> None:
    # RFC 2047 §5: a decoded phrase is never address syntax. "=2C" is ",", "=3C" "<".
    value = "=?utf-8?q?Mallory=2C_=3Cvictim@x.org=3E?= <mallory@x.org>"
    assert parse_address_list([value]) == ("mallory@x.org",)
    assert parse_address_list([decode_address_header(value)]) == ("mallory@x.org",)
    assert decode_address_header(value) == '"Mallory, <victim@x.org>" <mallory@x.org>'


def test_decode_address_header_without_encoded_words_is_unchanged() -> None:
    assert decode_address_header("a@x.org,\r\n B <b@x.org>") == "a@x.org, B <b@x.org>"


def test_ten_thousand_addresses_parse_fast_and_dedupe() -> None:
    value = ", ".join(f"User {i} <User{i % 5000}@Example.com>" for i in range(10_000))
    started = time.perf_counter()
    result = parse_address_list([value])
    elapsed = time.perf_counter() - started
    assert len(result) == 5000
    assert result[0] == "user0@example.com"
    assert result[-1] == "user4999@example.com"
    assert elapsed < 2.0


@pytest.mark.parametrize(
    "hostile",
    [
        '"' + '\\"a' * 50_000 + "\\",
        "<" * 100_000,
        '<"' * 50_000,
        "[" * 100_000,
        "(" * 100_000,
        "a," * 100_000,
    ],
)
def test_pathological_values_parse_in_linear_time(hostile: str) -> None:
    started = time.perf_counter()
    assert parse_address_list([hostile]) == ()
    assert time.perf_counter() - started < 2.0


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.text(alphabet=st.sampled_from('ab@.<>"(),;:\\[] \r\n\x00é=?'), max_size=60), max_size=4))
def test_parse_address_list_never_raises_and_returns_valid_addresses(values: list[str]) -> None:
    result = parse_address_list(values)
    assert all(is_valid_address(addr) and addr == addr.lower() for addr in result)
    assert len(set(result)) == len(result)


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("Alice Example <alice@x.org>", "Alice Example"),
        ('"Doe, John" <john@x.org>', "Doe, John"),
        ('"say \\"hi\\"" <q@x.org>', 'say "hi"'),
        ("=?utf-8?q?J=C3=B6rg?= <j@x.org>", "Jörg"),
        ("bob@x.org (Bob Builder)", "Bob Builder"),
        ("bob@x.org", ""),
        ("garbage without address", ""),
        ("Evil\r\n Name <e@x.org>", "Evil Name"),
    ],
)
def test_display_name(value: str, name: str) -> None:
    assert display_name(value) == name


@pytest.mark.parametrize(
    ("addr", "domain"),
    [("bob@Example.ORG", "example.org"), ("<bob@example.org.>", "example.org"), ("nodomain", ""), ("", "")],
)
def test_domain_of(addr: str, domain: str) -> None:
    assert domain_of(addr) == domain
