"""Outbound rules, PII family: payment cards, bank accounts and national identifiers.

Financial and national identity numbers are ``high`` (card, IBAN, SSN): they enable fraud on their
own. Contact and secondary identifiers are ``medium`` (phone, passport, tax ids): a support reply
legitimately repeats a customer's phone number, so the owner sees a warning rather than a hold.
Numbers are validated with their check digits where one exists (Luhn, ISO 13616 mod-97, §139b AO
MOD 11,10) and with issuing rules otherwise (SSA area/group/serial, IRS EIN prefixes).
"""

from __future__ import annotations

import re

from .checksums import card_valid, ein_valid, iban_valid, ssn_valid, steuer_id_valid
from .rule import HIGH, MEDIUM, Rule

_PHONE_DIGITS = range(8, 16)  # ITU-T E.164: at most 15 digits; 8 keeps dates and years out


def _phone_valid(value: str) -> bool:
    return sum(c.isdigit() for c in value) in _PHONE_DIGITS


# UK National Insurance number prefixes HMRC never allocates (and the administrative "TN").
_NINO_BAD_PREFIXES = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})


def _nino_valid(value: str) -> bool:
    return value[:2].upper() not in _NINO_BAD_PREFIXES


PII_RULES: tuple[Rule, ...] = (
    Rule(
        "pii.card_number",
        HIGH,
        re.compile(r"\b(?:\d[ -]?){12,18}\d\b"),
        validate=card_valid,
    ),
    Rule(
        "pii.iban",
        HIGH,
        # ISO 13616 print format: country, check digits, then groups of four (spaces optional).
        re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"),
        validate=iban_valid,
    ),
    Rule(
        "pii.ssn",
        HIGH,
        re.compile(
            r"(?<![\d-])(?P<v1>\d{3}-\d{2}-\d{4})(?![\d-])"
            r"|(?i:\b(?:ssn|social security(?: number| no\.?| #)?))\b[^\d\n]{0,20}"
            r"(?P<v2>\d{3}[ .]?\d{2}[ .]?\d{4})(?!\d)"
        ),
        validate=ssn_valid,
    ),
    Rule(
        "pii.phone",
        MEDIUM,
        re.compile(
            # E.164 with a leading "+", then NANP "(555) 123-4567" / "555-123-4567", then a labelled
            # national number ("Tel: 030 1234567").
            r"(?<![\w+])(?P<v1>\+[1-9](?:[ .\-/]?\(?\d\)?){6,14})(?!\d)"
            r"|(?<![\w+(])(?P<v2>(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4})(?![\w-])"
            r"|(?i:\b(?:phone|tel|telephone|mobile|cell|fax|handy|telefon|mob)\b\.?:?)[ \t]*"
            r"(?P<v3>\(?0\d[\d ()/.-]{5,16}\d)(?!\d)"
        ),
        validate=_phone_valid,
    ),
    Rule(
        "pii.passport",
        MEDIUM,
        re.compile(
            r"(?i:\b(?:passport|passeport|pasaporte|reisepass)\w*)[^\n]{0,30}?"
            # A digit among the first nine characters, so "PASSPORT NUMBER: ..." skips "NUMBER".
            r"(?<![A-Z0-9])(?P<value>(?=[A-Z]{0,8}\d)[A-Z0-9]{6,9})(?![A-Za-z0-9])"
        ),
    ),
    Rule(
        "pii.ein",
        MEDIUM,
        re.compile(
            r"(?i:\b(?:f?ein|employer identification number|tax id(?:entification)?(?: number| no\.?)?"
            r"|tin)\b)[^\d\n]{0,20}(?P<value>\d{2}-?\d{7})(?!\d)"
        ),
        validate=ein_valid,
    ),
    Rule(
        "pii.itin",
        MEDIUM,
        # IRS ITIN: 9xx-yy-zzzz with the group in 50-65, 70-88, 90-92 or 94-99.
        re.compile(r"(?<![\d-])9\d{2}-(?:5\d|6[0-5]|7\d|8[0-8]|9[0-2]|9[4-9])-\d{4}(?![\d-])"),
    ),
    Rule(
        "pii.de_tax_id",
        MEDIUM,
        re.compile(
            r"(?i:\b(?:steuer-?id\w*|steuerliche identifikationsnummer|identifikationsnummer|idnr|tax id)"
            r"\b\.?)[^\d\n]{0,20}(?P<value>[1-9](?: ?\d){10})(?!\d)"
        ),
        validate=steuer_id_valid,
    ),
    Rule(
        "pii.uk_nino",
        MEDIUM,
        # HMRC format: two prefix letters (D, F, I, Q, U, V never; O not second), six digits, A-D.
        re.compile(r"\b(?P<value>[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D])\b"),
        validate=_nino_valid,
    ),
)
"""The PII family, in the order findings are reported."""
