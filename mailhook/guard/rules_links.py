"""Inbound phishing rules over links and the sender's identity.

Links come from the text (``http(s)://`` and ``www.`` runs) and from the HTML anchors, whose
visible text can claim one domain while the ``href`` goes to another. Hosts are judged the way
a careful reader would: an IP literal or a userinfo trick ("paypal.com@evil.example") instead of a
name, a shortener hiding the target, punycode (RFC 3492) or letters from several scripts
(Unicode TR #39 mixed-script confusables), a brand name placed in front of somebody else's domain.

The organizational domain (DMARC's term, RFC 7489 §3.2) is approximated without the Public Suffix
List: the last two labels, or three under a two-letter country code with a generic second level
("co.uk", "com.au"). Hosts on shared platforms ("x.github.io") are therefore all one domain.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import urlsplit

from mailhook.mail.addresses import domain_of

from .html_hidden import Anchor
from .sanitize import CONFUSABLE_LETTERS

LINK_WEIGHTS: dict[str, int] = {
    "phish.ip_url": 20,
    "phish.userinfo_url": 20,
    "phish.shortener": 10,
    "phish.punycode": 15,
    "phish.mixed_script": 25,
    "phish.link_text_mismatch": 20,
    "phish.script_href": 30,
    "phish.brand_lookalike": 20,
    "phish.brand_display_name": 25,
}
"""Weights of the link and sender rules."""

_URL = re.compile(r"(?:\bhttps?://|\bwww\.)[^\s<>\"'(){}\[\]]+", re.IGNORECASE)
_SHORTENERS = frozenset(
    {"bit.ly", "tinyurl.com", "t.co", "goo.gl", "ow.ly", "is.gd", "buff.ly", "rebrand.ly", "cutt.ly"}
    | {"shorturl.at", "rb.gy", "t.ly", "tiny.cc", "bl.ink", "s.id", "v.gd", "shorte.st", "adf.ly"}
    | {"tiny.one", "qrco.de", "u.to", "clck.ru", "surl.li", "short.io", "lnkd.in", "bitly.com"}
)
# Numeric host forms browsers accept as IPv4: "3232235777", "0xc0a80001", "0300.0250.0.1".
_NUMERIC_HOST = re.compile(r"(?:0x[0-9a-f]+|\d+)(?:\.(?:0x[0-9a-f]+|\d+)){0,3}")
_SCRIPT_HREF = ("javascript:", "vbscript:", "data:", "file:")
# Second-level labels under a ccTLD that are public suffixes themselves ("co.uk", "com.br").
_GENERIC_SLD = frozenset({"co", "com", "org", "net", "ac", "gov", "edu", "ne", "or", "go", "gob", "ltd"})
# Brand label → the labels its real domains use (a brand in a display name or in a host in front
# of a foreign organizational domain is impersonation).
_BRANDS: dict[str, frozenset[str]] = {
    "paypal": frozenset({"paypal"}),
    "apple": frozenset({"apple", "icloud"}),
    "icloud": frozenset({"apple", "icloud"}),
    "microsoft": frozenset({"microsoft", "office", "office365", "outlook", "live", "onmicrosoft"}),
    "office365": frozenset({"microsoft", "office", "office365", "outlook", "onmicrosoft"}),
    "outlook": frozenset({"microsoft", "outlook", "live", "office"}),
    "onedrive": frozenset({"microsoft", "onedrive", "live", "sharepoint"}),
    "sharepoint": frozenset({"microsoft", "sharepoint", "onmicrosoft"}),
    "amazon": frozenset({"amazon", "amazonses", "aws"}),
    "google": frozenset({"google", "gmail", "youtube", "googlemail"}),
    "netflix": frozenset({"netflix"}),
    "facebook": frozenset({"facebook", "facebookmail", "meta", "fb"}),
    "instagram": frozenset({"instagram", "facebookmail"}),
    "linkedin": frozenset({"linkedin"}),
    "dropbox": frozenset({"dropbox", "dropboxmail"}),
    "docusign": frozenset({"docusign"}),
    "wellsfargo": frozenset({"wellsfargo", "wf"}),
    "bankofamerica": frozenset({"bankofamerica", "bofa"}),
    "coinbase": frozenset({"coinbase"}),
    "binance": frozenset({"binance"}),
    "dhl": frozenset({"dhl"}),
    "fedex": frozenset({"fedex"}),
    "usps": frozenset({"usps"}),
    "adobe": frozenset({"adobe"}),
    "americanexpress": frozenset({"americanexpress", "aexp"}),
    "hmrc": frozenset({"hmrc", "gov"}),
    "irs": frozenset({"irs"}),
}
# Display-name spellings of the brands above.
_BRAND_NAMES = {"office 365": "office365", "bank of america": "bankofamerica", "wells fargo": "wellsfargo"}
_NAME_EMAIL = re.compile(r"[\w.+-]+@([\w-]+(?:\.[\w-]+)+)")
# Japanese and Korean text mixes these scripts legitimately.
_CJK_FAMILY = {"CJK": "CJK", "HIRAGANA": "CJK", "KATAKANA": "CJK", "HANGUL": "CJK"}


def org_domain(host: str) -> str:
    """Approximate organizational domain of ``host`` ("a.b.example.co.uk" → "example.co.uk")."""
    labels = host.lower().strip(".").split(".")
    keep = 3 if len(labels) > 2 and len(labels[-1]) == 2 and labels[-2] in _GENERIC_SLD else 2
    return ".".join(labels[-keep:])


def urls_in_text(text: str) -> list[str]:
    """The ``http(s)://`` and ``www.`` links written out in ``text``."""
    return [m.group(0).rstrip(".,;:!?") for m in _URL.finditer(text)]


def host_of(url: str) -> str:
    """Lower-case host of ``url`` ("" for none or an unparseable URL)."""
    url = url.strip()
    if url.lower().startswith("www."):
        url = "http://" + url
    try:
        return (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:  # "http://[::1" and other broken IPv6 literals
        return ""


def _decoded_label(label: str) -> str:
    if not label.startswith("xn--"):
        return label
    try:
        return label[4:].encode("ascii").decode("punycode")
    except (UnicodeError, ValueError):
        return label


def _scripts(label: str) -> set[str]:
    names = (unicodedata.name(c, "").split(" ", 1)[0] for c in label if c.isalpha())
    return {_CJK_FAMILY.get(name, name) for name in names if name}


def is_spoofed_host(host: str) -> bool:
    """A label mixing scripts ("paypal" with a Cyrillic U+0430 for one "a") or made only of
    Latin look-alikes (all-Cyrillic "\u0430\u0440\u0440\u04cf\u0435" for "apple").
    """
    for label in host.split("."):
        decoded = _decoded_label(label)
        letters = [c for c in decoded if c.isalpha()]
        if len(_scripts(decoded)) > 1:
            return True
        if letters and not decoded.isascii() and all(c in CONFUSABLE_LETTERS for c in letters):
            return True
    return False


def _is_ip_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return _NUMERIC_HOST.fullmatch(host) is not None
    return True


def _brand_lookalike(host: str) -> bool:
    """A brand as a subdomain label or hyphenated word in front of a foreign organizational
    domain: "paypal.com.account-check.example", "paypal-secure.example".
    """
    org = org_domain(host)
    org_label = org.split(".", 1)[0]
    tokens = set(re.split(r"[.-]", host[: -len(org)])) if host.endswith(org) else set()
    if "-" in org_label:
        tokens |= set(org_label.split("-"))
    return any(brand in tokens and org_label not in real for brand, real in _BRANDS.items())


def _host_rules(url: str, host: str) -> set[str]:
    fired: set[str] = set()
    if _is_ip_host(host):
        fired.add("phish.ip_url")
    if "@" in url.split("//", 1)[-1].split("/", 1)[0]:
        fired.add("phish.userinfo_url")
    if host in _SHORTENERS:
        fired.add("phish.shortener")
    if any(label.startswith("xn--") for label in host.split(".")):
        fired.add("phish.punycode")
    if is_spoofed_host(host):
        fired.add("phish.mixed_script")
    if _brand_lookalike(host):
        fired.add("phish.brand_lookalike")
    return fired


_FILE_SUFFIXES = frozenset({"pdf", "doc", "docx", "xls", "xlsx", "csv", "txt", "zip", "png", "jpg", "jpeg"})
_TEXT_AS_URL = re.compile(r"(?:https?://)?((?:[\w-]+\.)+[a-z]{2,})(?:[/:?#]\S*)?", re.IGNORECASE)


def _mismatched(anchor: Anchor) -> bool:
    shown = _TEXT_AS_URL.fullmatch(anchor.text.strip())
    if not shown or shown.group(1).rsplit(".", 1)[-1].lower() in _FILE_SUFFIXES:
        return False
    if not anchor.href.strip().lower().startswith(("http://", "https://")):
        return False
    target = host_of(anchor.href)
    return bool(target) and org_domain(shown.group(1)) != org_domain(target)


def link_rules(urls: Iterable[str], anchors: Iterable[Anchor]) -> list[str]:
    """``phish.*`` rules for the links of a mail (text URLs, HTML hrefs) and its visible anchors."""
    fired: set[str] = set()
    for url in urls:
        if host := host_of(url):
            fired |= _host_rules(url, host)
    for anchor in anchors:
        if anchor.href.strip().lower().startswith(_SCRIPT_HREF):
            fired.add("phish.script_href")
        if _mismatched(anchor):
            fired.add("phish.link_text_mismatch")
    return sorted(fired)


def _named_brands(display_name: str) -> set[str]:
    name = " ".join(re.split(r"[^\w&]+", display_name.lower()))
    found = {key for phrase, key in _BRAND_NAMES.items() if phrase in name}
    return found | {token for token in name.split() if token in _BRANDS}


def sender_rules(from_addr: str, from_name: str) -> list[str]:
    """Impersonation in the From field: a brand or another address in the display name that the
    sending domain does not belong to, and a punycode or mixed-script sending domain.
    """
    domain = domain_of(from_addr)
    if not domain:
        return []
    fired: set[str] = set()
    org = org_domain(domain)
    org_label = org.split(".", 1)[0]
    if any(org_label not in _BRANDS[brand] for brand in _named_brands(from_name)):
        fired.add("phish.brand_display_name")
    shown = _NAME_EMAIL.search(from_name)
    if shown and org_domain(shown.group(1)) != org:
        fired.add("phish.brand_display_name")
    if any(label.startswith("xn--") for label in domain.split(".")):
        fired.add("phish.punycode")
    if is_spoofed_host(domain):
        fired.add("phish.mixed_script")
    return sorted(fired)
