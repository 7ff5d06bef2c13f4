"""The outbound guard: one scan every delivery path passes before anything leaves.

Each rule has an id and a severity. A ``high`` finding holds the message for the owner whatever
the mailbox mode; ``medium`` is a warning in the activity log. Findings carry rule ids only, never
the matched text (invariant 3). The rule tables live in :mod:`~mailhook.guard.rules_credentials`,
:mod:`~mailhook.guard.rules_pii` and :mod:`~mailhook.guard.rules_internal`; risky attachment
types in :mod:`~mailhook.guard.attachments`. docs/guard.md lists every rule and why it has its
severity.

:meth:`OutboundGuard.scan_message` reads a rendered message the way its recipients will: the
subject, the text part, the HTML part (its visible text, and also the text it hides and the URLs
it links, since those leave the building too), every text-like attachment (decoded from its
transfer encoding) and attached messages, recursively. Recipients (To, Cc, Bcc) are not its
business: the caller scans the message once for all of them.

The owner's allow-list holds rule ids to skip ("pii.phone", or "pii.*" for a family) and exact
values that may be sent (the owner's own support number, a public office IP): a match whose value
equals an allowed literal, ignoring case, blanks and ``-().`` formatting, is not a finding.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from mailhook.errors import MalformedMessage
from mailhook.mail.html_text import html_to_text
from mailhook.mail.mime import Attachment
from mailhook.mail.parse import parse_message

from . import attachments as risk
from .checksums import luhn_valid
from .html_hidden import inspect_html
from .rule import HIGH, MEDIUM, Hit, Rule
from .rules_credentials import CREDENTIAL_RULES
from .rules_internal import INTERNAL_RULES, hostname_rule
from .rules_pii import PII_RULES

__all__ = ["HIGH", "MEDIUM", "RULES", "Hit", "OutboundGuard", "Rule", "luhn_valid"]

RULES: tuple[Rule, ...] = CREDENTIAL_RULES + PII_RULES + INTERNAL_RULES
"""The default text rules (the configured internal host names are added per guard)."""

ATTACHMENT_RULES: dict[str, str] = {
    "attach.secret_file": HIGH,
    "attach.database": HIGH,
    "attach.executable": HIGH,
    "attach.double_extension": HIGH,
}
"""Rule id → severity of the risky-attachment checks."""

# Formatting that does not change a literal: "+1 (555) 010-0199" is "+15550100199".
_FORMATTING = re.compile(r"[\s().\-]")
# A composed message may be large and carry forwarded mail, but it is still bounded.
_MAX_PARTS = 5000
_MAX_DEPTH = 50
_MAX_NESTED_MESSAGES = 5


def _literal(value: str) -> str:
    return _FORMATTING.sub("", value).casefold()


def _attachment_checks(item: Attachment) -> dict[str, bool]:
    return {
        "attach.secret_file": risk.is_secret_file(item.filename),
        "attach.database": risk.is_database(item.filename),
        "attach.executable": risk.is_executable(item),
        "attach.double_extension": risk.has_double_extension(item.filename),
    }


class OutboundGuard:
    """Scans outgoing content with a rule set, the owner's internal names and allow-list."""

    def __init__(
        self,
        rules: Iterable[Rule] = RULES,
        *,
        internal_hostnames: Iterable[str] = (),
        allow: Iterable[str] = (),
    ) -> None:
        internal = hostname_rule(internal_hostnames)
        every = (*rules, internal) if internal is not None else tuple(rules)
        known = {rule.id for rule in every} | set(ATTACHMENT_RULES)
        entries = {entry.strip() for entry in allow if entry.strip()}
        families = {entry[:-1] for entry in entries if entry.endswith(".*")}
        self._skipped = {
            rule_id for rule_id in known if rule_id in entries or rule_id.startswith(tuple(families))
        }
        self._allowed = {_literal(e) for e in entries if e not in known and e[:-1] not in families}
        self.rules = tuple(rule for rule in every if rule.id not in self._skipped)

    def _allowed_value(self, value: str) -> bool:
        return bool(self._allowed) and _literal(value) in self._allowed

    def scan_text(self, text: str) -> list[Hit]:
        """Every rule with at least one match in ``text`` that is not an allowed literal."""
        text = text.replace("\r\n", "\n")
        return [
            Hit(rule.id, rule.severity)
            for rule in self.rules
            if any(not self._allowed_value(value) for value in rule.values(text))
        ]

    def scan_message(self, data: bytes) -> list[Hit]:
        """Scan a rendered RFC 5322 message: subject, text, HTML and attachments.

        Each rule is reported once, in the order first found. A message without a parseable
        header section is scanned as plain text rather than waved through.
        """
        found: dict[str, Hit] = {}
        self._scan_message(data, found, depth=0)
        return list(found.values())

    scan_bytes = scan_message
    """The name the pipeline step has always called."""

    def _add(self, found: dict[str, Hit], hits: Iterable[Hit]) -> None:
        for hit in hits:
            found.setdefault(hit.rule, hit)

    def _scan_message(self, data: bytes, found: dict[str, Hit], *, depth: int) -> None:
        try:
            message = parse_message(data, max_parts=_MAX_PARTS, max_depth=_MAX_DEPTH)
        except MalformedMessage:
            self._add(found, self.scan_text(risk.decode_text(data)))
            return
        texts = [message.subject, message.text]
        if message.html is not None:
            view = inspect_html(message.html)
            texts += [html_to_text(message.html), view.hidden_text, "\n".join(view.urls)]
        for text in texts:
            self._add(found, self.scan_text(text))
        for item in message.attachments:
            self._scan_attachment(item, found, depth=depth)

    def _scan_attachment(self, item: Attachment, found: dict[str, Hit], *, depth: int) -> None:
        if not self._allowed_value(item.filename):
            checks = _attachment_checks(item)
            self._add(
                found,
                (
                    Hit(rule, ATTACHMENT_RULES[rule])
                    for rule, hit in checks.items()
                    if hit and rule not in self._skipped
                ),
            )
        self._add(found, self.scan_text(item.filename))
        if item.content_type.lower().startswith("message/") and depth < _MAX_NESTED_MESSAGES:
            self._scan_message(item.data, found, depth=depth + 1)
        elif risk.is_text_like(item):
            self._add(found, self.scan_text(risk.decode_text(item.data)))
