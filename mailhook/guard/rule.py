"""The rule and finding types the outbound guard's tables are written in.

A :class:`Rule` is a compiled pattern plus an optional validator (a checksum, a sanity check). When
the pattern has named groups, the first group that took part in a match is the *value* that the
validator and the owner's allow-list see (the number after "Passport no.", not the label); without
named groups the whole match is the value. A :class:`Hit` carries a rule id and severity only,
never the matched text, so findings can be logged (invariant 3: logs hold no bodies or secrets).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

HIGH = "high"
"""Held for the owner's approval whatever the mailbox mode."""
MEDIUM = "medium"
"""A warning in the activity log; the reply goes out."""


@dataclass(frozen=True)
class Hit:
    """One rule that matched."""

    rule: str
    severity: str


@dataclass(frozen=True)
class Rule:
    """A named pattern with an optional validator for each match's value (e.g. a checksum)."""

    id: str
    severity: str
    pattern: re.Pattern[str]
    validate: Callable[[str], bool] | None = None
    hints: tuple[str, ...] = ()
    """Literal substrings every match contains (case-sensitive): a cheap test that skips the
    regular expression on text that cannot match (a large attachment has no "AKIA" in it)."""

    def values(self, text: str) -> Iterator[str]:
        """The value of every match in ``text`` that the validator accepts."""
        if self.hints and not any(hint in text for hint in self.hints):
            return
        for match in self.pattern.finditer(text):
            value = value_of(match)
            if self.validate is None or self.validate(value):
                yield value

    def matches(self, text: str) -> bool:
        """True when the pattern matches and, if present, the validator accepts a match."""
        return next(self.values(text), None) is not None


def value_of(match: re.Match[str]) -> str:
    """The first named group that took part in ``match``, else the whole match."""
    for value in match.groupdict().values():
        if value is not None:
            return value
    return match.group(0)


def has_digit_and_letter(value: str) -> bool:
    """Secrets are random: a run of letters alone is far more likely to be a word."""
    return any(c.isdigit() for c in value) and any(c.isalpha() for c in value)


# Values people write instead of a real secret: masks, template slots, obvious dummies.
_PLACEHOLDER_WORDS = frozenset(
    {"password", "passwort", "passwd", "secret", "changeme", "redacted", "hidden", "none", "null"}
    | {"empty", "example", "sample", "test", "dummy", "xxx", "todo", "tbd", "n/a", "required"}
)
_MASK = re.compile("[*x\u2022\u00b7.#_\\-\u2013\u2014]+|\\.\\.\\.|\u2026", re.IGNORECASE)
_TEMPLATE_OPENERS = ("<", "{", "[", "$", "%", "(")


def is_placeholder(value: str) -> bool:
    """True for masked, templated or dummy values ("********", "<password>", "${DB_PASS}")."""
    core = value.strip("\"'`.,;:!?)")
    lowered = core.lower()
    return (
        not core
        or core.startswith(_TEMPLATE_OPENERS)
        or _MASK.fullmatch(core) is not None
        or lowered in _PLACEHOLDER_WORDS
        or lowered.startswith(("your", "example"))
    )
