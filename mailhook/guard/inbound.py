"""Inbound threat scoring: runs before the model sees a message and decides what it may see.

:func:`score_inbound` sanitizes the mail (invisible code points out, hidden HTML out), scores it
with the rule families of :mod:`~mailhook.guard.rules_inbound` (words),
:mod:`~mailhook.guard.rules_links` (links and sender) and :mod:`~mailhook.guard.rules_auth`
(authentication verdicts and header anomalies), and returns a :class:`ThreatReport`. Each rule
adds its weight once. The pipeline gives the model ``sanitized_text`` (never ``message.text``),
answers an ``ok`` or ``warn`` mail, and escalates an ``escalate`` one to the owner instead; the
score and rule ids go to the activity log, the text never does (invariant 3).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from mailhook.mail.html_text import html_to_text
from mailhook.mail.parse import ParsedMessage

from .html_hidden import HtmlView, inspect_html
from .rules_auth import AUTH_WEIGHTS, auth_rules, header_rules
from .rules_inbound import (
    COLLECTOR_LINK,
    HIDDEN_INSTRUCTION_RULES,
    SIGNAL_WEIGHTS,
    TEXT_RULES,
    attachment_rules,
    invisible_rules,
)
from .rules_links import LINK_WEIGHTS, link_rules, sender_rules, urls_in_text
from .sanitize import Removed, fold_for_matching, strip_invisible

Verdict = Literal["ok", "warn", "escalate"]

WARN_AT = 20
"""Default score from which a message is answered but flagged in the activity log."""
ESCALATE_AT = 40
"""Default score from which a message goes to the owner instead of the model."""

WEIGHTS: dict[str, int] = {
    **{rule.id: rule.weight for rule in TEXT_RULES},
    **SIGNAL_WEIGHTS,
    **LINK_WEIGHTS,
    **AUTH_WEIGHTS,
}
"""Every inbound rule id and its weight."""


@dataclass(frozen=True)
class ThreatReport:
    """The verdict on one inbound message. Only ``score``, ``rules`` and ``verdict`` may be logged."""

    score: int
    rules: tuple[str, ...]
    sanitized_text: str = field(repr=False)
    verdict: Verdict
    sanitized_subject: str = field(default="", repr=False)


@dataclass(frozen=True)
class _Content:
    """What the reader sees (for the model) and what they do not (for scoring only)."""

    subject: str
    text: str
    alternative: str  # the visible text of an HTML alternative the model does not read
    hidden: str
    html: HtmlView | None
    removed: Removed


def _html_derived(message: ParsedMessage) -> bool:
    """True when ``message.text`` was rendered from the HTML part (there was no text/plain)."""
    return message.html is not None and (not message.text or message.text == html_to_text(message.html))


def _content(message: ParsedMessage) -> _Content:
    view = inspect_html(message.html) if message.html is not None else None
    from_html = view is not None and _html_derived(message)
    body = view.text if view is not None and from_html else message.text
    subject, removed_subject = strip_invisible(message.subject)
    text, removed_text = strip_invisible(body)
    _, removed_name = strip_invisible(message.from_name)
    # The model reads the text/plain part; what the HTML alternative shows is still scored.
    alternative = view.text if view is not None and not from_html else ""
    hidden = view.hidden_text if view is not None else ""
    removed = removed_subject + removed_text + removed_name
    return _Content(subject, text, alternative, hidden, view, removed)


def _word_rules(content: _Content) -> list[str]:
    seen = fold_for_matching("\n".join((content.subject, content.text, content.alternative)))
    unseen = fold_for_matching(content.hidden)
    fired = [rule.id for rule in TEXT_RULES if rule.matches(seen) or rule.matches(unseen)]
    if any(rule.id in HIDDEN_INSTRUCTION_RULES and rule.matches(unseen) for rule in TEXT_RULES):
        fired.append("hidden.instructions")
    return fired


def _link_rules(message: ParsedMessage, content: _Content) -> list[str]:
    view = content.html
    urls = urls_in_text("\n".join((content.text, content.alternative, content.hidden)))
    if view is not None:
        urls.extend(view.urls)
    fired = link_rules(urls, view.anchors if view is not None else ())
    if COLLECTOR_LINK.matches(fold_for_matching(" ".join(urls))):  # an href the reader never sees
        fired.append(COLLECTOR_LINK.id)
    return fired + sender_rules(message.from_addr, message.from_name)


def verdict_for(score: int, *, warn_at: int = WARN_AT, escalate_at: int = ESCALATE_AT) -> Verdict:
    """``escalate`` from ``escalate_at``, ``warn`` from ``warn_at``, else ``ok``."""
    if score >= escalate_at:
        return "escalate"
    return "warn" if score >= warn_at else "ok"


def score_inbound(
    message: ParsedMessage,
    *,
    trusted_authserv_ids: Iterable[str] = (),
    warn_at: int = WARN_AT,
    escalate_at: int = ESCALATE_AT,
) -> ThreatReport:
    """Sanitize and score ``message``; never raises on any parsed message.

    ``trusted_authserv_ids`` are the authserv-ids our own MTA writes into Authentication-Results
    (e.g. the Postfix host name); with none configured, SPF/DKIM/DMARC verdicts are ignored.
    """
    content = _content(message)
    candidates = [
        *invisible_rules(content.removed),
        *(content.html.rules if content.html is not None else ()),
        *_word_rules(content),
        *_link_rules(message, content),
        *attachment_rules(message.attachments),
        *auth_rules(message, trusted_authserv_ids),
        *header_rules(message),
    ]
    rules = tuple(sorted(set(candidates)))
    score = sum(WEIGHTS[rule] for rule in rules)
    verdict = verdict_for(score, warn_at=warn_at, escalate_at=escalate_at)
    return ThreatReport(score, rules, content.text, verdict, content.subject)
