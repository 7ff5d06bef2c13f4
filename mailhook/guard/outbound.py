"""The outbound guard: one scan every delivery path passes before anything leaves.

Each rule has an id and a severity. A ``high`` finding holds the reply for the owner whatever the
mailbox mode; ``medium`` is a warning in the activity log. Findings carry rule ids only, never the
matched text (invariant 3). This is the seed rule set; the oversight issue grows it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser


@dataclass(frozen=True)
class Hit:
    """One rule that matched."""

    rule: str
    severity: str


@dataclass(frozen=True)
class Rule:
    """A named pattern with an optional validator for each match (e.g. a checksum)."""

    id: str
    severity: str
    pattern: re.Pattern[str]
    validate: Callable[[str], bool] | None = None

    def matches(self, text: str) -> bool:
        """True when the pattern matches and, if present, the validator accepts a match."""
        for match in self.pattern.finditer(text):
            if self.validate is None or self.validate(match.group(0)):
                return True
        return False


def luhn_valid(candidate: str) -> bool:
    """ISO/IEC 7812 check digit: filters random digit runs out of the card rule."""
    digits = [int(c) for c in candidate if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for index, digit in enumerate(reversed(digits)):
        doubled = digit * 2 if index % 2 == 1 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10 == 0


RULES: tuple[Rule, ...] = (
    Rule("cred.private_key", "high", re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")),
    Rule("cred.aws_access_key", "high", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    Rule("cred.anthropic_key", "high", re.compile(r"\bsk-ant-[A-Za-z0-9_-]{20,}")),
    Rule("cred.openai_key", "high", re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{32,}")),
    Rule(
        "cred.github_token",
        "high",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_\w{40,})"),
    ),
    Rule(
        "pii.card_number",
        "high",
        re.compile(r"\b(?:\d[ -]?){12,18}\d\b"),
        validate=luhn_valid,
    ),
    Rule(
        "internal.private_ip",
        "medium",
        re.compile(r"\b(?:10\.\d{1,3}|192\.168|172\.(?:1[6-9]|2\d|3[01]))\.\d{1,3}\.\d{1,3}\b"),
    ),
)


class OutboundGuard:
    """Scans outgoing content with a rule set."""

    def __init__(self, rules: Iterable[Rule] = RULES) -> None:
        self.rules = tuple(rules)

    def scan_text(self, text: str) -> list[Hit]:
        """Every rule that matches ``text``."""
        return [Hit(rule.id, rule.severity) for rule in self.rules if rule.matches(text)]

    def scan_bytes(self, data: bytes) -> list[Hit]:
        """Scan a rendered message: subject and every text part."""
        message = BytesParser(policy=policy.default).parsebytes(data)
        texts = [str(message.get("subject", ""))]
        for part in message.walk():
            if part.get_content_maintype() == "text":
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    texts.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
        return self.scan_text("\n".join(texts))
