"""Check digits and structural tests that turn "looks like a number" into "is one".

Each function takes the matched text (separators allowed) and never raises. A checksum is what
separates a card number from an order number: without one, every long digit run in a reply would
hold it for approval.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter

_CARD_LENGTHS = range(13, 20)
# ISO/IEC 7812 major industry identifiers of payment cards: 2 (Mastercard 2-series), 3 (Amex,
# Diners, JCB), 4 (Visa), 5 (Mastercard), 6 (Discover, UnionPay, Maestro).
_CARD_FIRST_DIGITS = frozenset("23456")


def _digits(candidate: str) -> list[int]:
    return [int(c) for c in candidate if c.isdigit()]


def luhn_valid(candidate: str) -> bool:
    """ISO/IEC 7812 check digit: filters random digit runs out of the card rule."""
    digits = _digits(candidate)
    if len(digits) not in _CARD_LENGTHS:
        return False
    total = 0
    for index, digit in enumerate(reversed(digits)):
        doubled = digit * 2 if index % 2 == 1 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10 == 0


def card_valid(candidate: str) -> bool:
    """A payment card number: Luhn-valid, 13-19 digits, a card industry's first digit."""
    digits = "".join(c for c in candidate if c.isdigit())
    return bool(digits) and digits[0] in _CARD_FIRST_DIGITS and luhn_valid(digits)


# ISO 13616 registry: IBAN length per country (SWIFT IBAN Registry). Countries not listed are
# checked with the mod-97 test alone over the generic 15-34 length range.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
_IBAN_MIN, _IBAN_MAX = 15, 34


def _mod97_ok(iban: str) -> bool:
    """ISO 7064 MOD 97-10 as ISO 13616 applies it: rotate 4, letters to 10..35, remainder 1."""
    rotated = iban[4:] + iban[:4]
    if not rotated.isalnum() or not rotated.isascii():
        return False
    return int("".join(str(int(c, 36)) for c in rotated)) % 97 == 1


def iban_valid(candidate: str) -> bool:
    """An IBAN: registry length for its country (if known) and the mod-97 check."""
    compact = "".join(candidate.split()).upper()
    country = compact[:2]
    if not (country.isalpha() and compact[2:4].isdigit()):
        return False
    known = _IBAN_LENGTHS.get(country)
    # The match may run into a following word ("... 00 BIC"): try the registry length first.
    lengths = [known] if known else range(min(len(compact), _IBAN_MAX), _IBAN_MIN - 1, -1)
    return any(len(compact) >= n and _mod97_ok(compact[:n]) for n in lengths)


# SSA numbers never issued or publicly burnt (the 1938 Woolworth wallet card, a 1940s advert).
_FAMOUS_FAKE_SSNS = frozenset({"078051120", "219099999", "123456789"})


def ssn_valid(candidate: str) -> bool:
    """US SSN structure (SSA rules): area not 000/666/9xx, group not 00, serial not 0000."""
    digits = "".join(c for c in candidate if c.isdigit())
    if len(digits) != 9 or digits in _FAMOUS_FAKE_SSNS:
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in {"000", "666"} and area[0] != "9" and group != "00" and serial != "0000"


# IRS "How EINs are assigned and valid EIN prefixes": these two-digit prefixes are never issued.
_UNUSED_EIN_PREFIXES = frozenset(
    {"00", "07", "08", "09", "17", "18", "19", "28", "29", "49", "69", "70", "78", "79", "89"} | {"96", "97"}
)


def ein_valid(candidate: str) -> bool:
    """US Employer Identification Number: 9 digits with an assigned campus prefix."""
    digits = "".join(c for c in candidate if c.isdigit())
    return len(digits) == 9 and digits[:2] not in _UNUSED_EIN_PREFIXES


def steuer_id_valid(candidate: str) -> bool:
    """German tax id (Steuerliche Identifikationsnummer, §139b AO): 11 digits, no leading 0,
    exactly one digit repeated (twice or thrice) in the first ten, ISO/IEC 7064 MOD 11,10 check.
    """
    digits = _digits(candidate)
    if len(digits) != 11 or digits[0] == 0:
        return False
    counts = Counter(digits[:10])
    repeated = [n for n in counts.values() if n > 1]
    if len(repeated) != 1 or repeated[0] > 3:
        return False
    product = 10
    for digit in digits[:10]:
        total = (digit + product) % 10 or 10
        product = (total * 2) % 11
    check = 11 - product
    return (0 if check == 10 else check) == digits[10]


def _b64url_json(segment: str) -> object:
    padded = segment + "=" * (-len(segment) % 4)
    try:
        return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError):
        return None


def jwt_valid(candidate: str) -> bool:
    """A JWS compact serialization (RFC 7515 §7.1): its header decodes to JSON with "alg"."""
    header = candidate.split(".", 1)[0]
    decoded = _b64url_json(header)
    return isinstance(decoded, dict) and isinstance(decoded.get("alg"), str)
