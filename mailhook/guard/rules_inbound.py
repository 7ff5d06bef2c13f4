"""Inbound threat rules over the words of a mail: prompt injection, exfiltration, social
engineering, plus the weights of the invisible-text, hidden-HTML and attachment signals.

Patterns run over :func:`mailhook.guard.sanitize.fold_for_matching` output (case-folded, NFKC,
look-alike letters mapped, whitespace squeezed to single spaces), over the visible and the hidden
text alike: instructions a reader cannot see are the strongest sign of an attack. Each rule adds
its weight once, however often it matches. Weights are set so that one unambiguous attack marker
("ignore previous instructions", a fake ``<|im_start|>`` delimiter, an executable) reaches the
escalation threshold (40) alone, while the phrases an honest mail can contain ("act as",
"urgent", "don't tell anyone") stay below the warning threshold (20) unless they add up.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from mailhook.mail.mime import Attachment

from . import attachments as risk
from .sanitize import Removed


@dataclass(frozen=True)
class TextRule:
    """A weighted pattern over folded mail text."""

    id: str
    weight: int
    pattern: re.Pattern[str]

    def matches(self, folded: str) -> bool:
        """True if the pattern occurs in ``folded`` text."""
        return self.pattern.search(folded) is not None


def _rule(rule_id: str, weight: int, *alternatives: str) -> TextRule:
    return TextRule(rule_id, weight, re.compile("|".join(alternatives)))


_W = r"\W+"  # between two words (folded text keeps punctuation)
_URGENT = (
    r"(?:urgent\w*|immediately|within (?:\d{1,2}|twenty-four|forty-eight) hours|asap|right away"
    r"|final (?:notice|warning|reminder)|last (?:warning|chance|notice)|act now|time-sensitive)"
)
_THREAT = (
    r"(?:suspend\w*|terminat\w*|deactivat\w*|clos(?:e|ed|ure of) (?:your )?account|locked|legal action"
    r"|lawsuit|arrest\w*|police|penalt\w*|disabled|deleted|lose access|permanently|prosecut\w*"
    r"|debt collect\w*)"
)
_NOW = r"(?:urgent\w*|today|asap|immediately|right away|confidential\w*|quick\w*|discreet\w*|by eod)"
_SECRETS = (
    r"(?:passwords?|credentials|api[- ]?keys?|login details|2fa codes?|otp|one-time (?:code|password)"
    r"|verification codes?|mfa codes?|access tokens?|secret keys?|private keys?|recovery codes?"
    r"|seed phrase)"
)

INJECTION_RULES: tuple[TextRule, ...] = (
    _rule(
        "injection.ignore_previous",
        40,
        rf"\b(?:ignore|disregard|forget|override|bypass|abandon)\b(?:{_W}\w+){{0,3}}?{_W}"
        r"(?:previous|prior|above|earlier|preceding|foregoing|all|any|your|these|those|original|initial"
        rf"|system|safety)\b(?:{_W}\w+){{0,2}}?{_W}(?:instructions?|prompts?|rules|directions|directives"
        r"|guidelines|guardrails|constraints|programming)\b",
        r"\bignorier\w* (?:\w+ ){0,2}?(?:anweisungen|instruktionen)\b",
        r"\bignore[rz]? (?:\w+ ){0,2}?instructions (?:précédentes|precedentes|ci-dessus)",
        r"\bignora\w* (?:\w+ ){0,2}?instrucciones (?:anteriores|previas)\b",
    ),
    _rule(
        "injection.you_are_now",
        25,
        r"\byou are now (?:\w+ ){0,3}?(?:assistant|ai|model|bot|mode|character|persona|dan|unrestricted"
        r"|jailbroken|admin|administrator|developer|root|evil)\b",
        r"\bfrom now on,? you (?:will|must|are|shall|should) (?:act|behave|respond|answer|ignore|obey"
        r"|pretend|roleplay|reply only)\b",
        r"\byou are no longer (?:an? )?(?:ai|assistant|bound|restricted|limited)\b",
        r"\byour new (?:role|persona|identity) is\b",
    ),
    _rule(
        "injection.new_instructions",
        25,
        r"\b(?:new|updated|real|actual|true|hidden|secret|override|priority) (?:system )?instructions? ?:",
        r"\byour (?:new|real|actual|true) (?:task|instructions?|role|purpose|goal|objective) (?:is|are)\b",
        r"\binstructions? for (?:the |any )?(?:ai|assistant|model|llm|bot|chatbot|language model)\b",
        r"\b(?:attention|note|message) (?:to |for )?(?:the |any )?(?:ai|llm|language model|chatbot"
        r"|ai assistant)\b",
    ),
    _rule(
        "injection.system_prompt",
        20,
        r"\b(?:system|initial|original|hidden|developer|secret) prompts?\b",
        r"\bsystem (?:message|instructions?) ?:",
    ),
    _rule(
        "injection.system_message",
        20,
        r"\bthis is (?:a|an|the) (?:system|admin|administrator) (?:message|notice|override|instruction)\b",
        r"\b(?:message|notice|instructions?) from (?:the )?system\b",
        r"\bi am (?:your|the ai's|the assistant's) (?:owner|operator|developer|creator|administrator"
        r"|admin)\b",
    ),
    _rule(
        "injection.developer_mode",
        20,
        r"\b(?:developer|debug|god|sudo|unrestricted|jailbreak|dan|evil|opposite) mode\b",
    ),
    _rule(
        "injection.fake_delimiter",
        40,
        r"\[/?(?:system|inst|sys|assistant)\]",
        r"<</?sys>>",
        r"<\|(?:im_start|im_end|im_sep|system|user|assistant|endoftext|eot_id|start_header_id"
        r"|end_header_id|begin_of_text)\|>",
        r"</?(?:email|system|instructions?|assistant|untrusted(?:_\w+)?)\b[^<>]{0,40}>",
        r"\b(?:begin|start) (?:system|new) (?:prompt|instructions)\b",
    ),
    _rule(
        "injection.act_as",
        10,
        r"\b(?:act|behave|respond|operate|function) as (?:if you (?:were|are) )?(?:an? |my |the |your )?"
        r"(?:\w+ ){0,2}?(?:assistant|ai|admin|administrator|developer|system|root|hacker|unrestricted|dan"
        r"|jailbroken)\b",
        r"\bpretend (?:to be|you are|you're|that you are)\b",
        r"\brole-?play as\b",
    ),
    _rule(
        "injection.do_not_tell",
        15,
        r"\b(?:do not|don't|dont|never) (?:tell|mention|inform|reveal|disclose|notify|alert|let on to) "
        r"(?:this |it |anything )?(?:to )?(?:the |your |my )?(?:user|owner|operator|human|boss|admin"
        r"|administrator|anyone|anybody|recipient|sender|principal|employer)\b",
        r"\bwithout (?:telling|informing|notifying|alerting) (?:the |your )?(?:user|owner|operator|human"
        r"|boss|admin)\b",
        r"\bkeep this (?:a )?secret from\b",
    ),
    _rule(
        "injection.jailbreak",
        30,
        r"\bjailbr(?:eak|oken)\w*",
        r"\bdo anything now\b",
        r"\b(?:no|without any|free (?:of|from)) (?:ethical|moral|content|safety) (?:restrictions"
        r"|guidelines|filters|limitations|constraints|policies)\b",
        r"\b(?:ignore|bypass|disable) (?:your |all |the )?(?:safety|content) (?:filters?|guidelines"
        r"|policies|restrictions)\b",
    ),
    _rule(
        "injection.base64_run",
        10,
        # 200+ base64 characters standing alone (not a URL parameter, which follows "=" or "/").
        r"(?:^|(?<=[\s:>\"']))[a-z0-9+/]{200,}={0,2}(?=$|[\s<\"'])",
    ),
)

EXFILTRATION_RULES: tuple[TextRule, ...] = (
    _rule(
        "exfil.forward_all",
        30,
        r"\b(?:forward|send|bcc|cc|copy|export|dump|leak|upload) (?:me |us )?(?:a copy of )?(?:all|every"
        r"|each|the entire|your entire|the whole) (?:of )?(?:the |your |my |our |his |her )?(?:\w+ )?"
        r"(?:e-?mails?|messages|mail|correspondence|conversations|inbox|mailbox|threads|contacts)\b",
        r"\bauto-?forward\w*\b",
        r"\bset up (?:a |an )?(?:forwarding|mail forwarding|inbox) rule\b",
    ),
    _rule(
        "exfil.secret_request",
        30,
        r"\b(?:send|give|tell|share|provide|reveal|show|email|forward|reply with|text) (?:me |us )?"
        rf"(?:the |your |my |our |his |her |their |all )?(?:\w+ )?{_SECRETS}\b",
        r"\bwhat(?:'s| is) (?:the |your )(?:\w+ )?password\b",
    ),
    _rule(
        "exfil.reveal_prompt",
        25,
        r"\b(?:reveal|show|print|repeat|output|display|tell me|what (?:are|is|were)|give me|share|list"
        r"|summari[sz]e|translate) (?:me )?(?:all )?(?:of )?(?:your (?:\w+ )?(?:system prompt|initial prompt"
        r"|prompt|instructions|rules|configuration|guidelines)|the (?:system|initial|hidden|original) "
        r"(?:prompt|instructions))\b",
        r"\b(?:repeat|print|output) (?:everything|all (?:the )?text|the text|all) above\b",
    ),
    _rule(
        "exfil.collector_link",
        25,
        # Suffixes only: "\b" before them also matches after the dot of any subdomain, and a
        # "(?:[\w-]+\.)*" prefix would make the search quadratic on long dotted or dashed runs.
        r"\b(?:webhook\.site|requestbin\.(?:com|net)|pipedream\.net|ngrok(?:-free)?\.(?:io|app|dev)"
        r"|interact\.sh|oast\.(?:fun|me|pro|site|online|live)|oastify\.com|burpcollaborator\.net"
        r"|beeceptor\.com|hookbin\.com|requestcatcher\.com|canarytokens\.com|postb\.in|trycloudflare\.com)\b",
    ),
    _rule(
        "exfil.credential_search",
        25,
        r"\b(?:search|look|find|grep|scan|go) (?:through |in |for )?(?:\w+ ){0,4}?(?:for|containing|with) "
        r"(?:any |all |the )?(?:passwords?|credentials|api keys?|secrets|tokens|private keys?"
        r"|bank details|credit card numbers?)\b",
    ),
)

COLLECTOR_LINK = next(rule for rule in EXFILTRATION_RULES if rule.id == "exfil.collector_link")
"""Also run over the hrefs of a mail, which the reader never sees written out."""

SOCIAL_RULES: tuple[TextRule, ...] = (
    _rule(
        "social.urgent_threat",
        20,
        rf"\b{_URGENT}\b.{{0,150}}?\b{_THREAT}",
        rf"\b{_THREAT}.{{0,150}}?\b{_URGENT}\b",
    ),
    _rule(
        "social.gift_card",
        25,
        r"\b(?:buy|purchase|get|pick up|grab|send)\b.{0,60}?\b(?:gift ?cards?|itunes cards?|google play "
        r"cards?|steam cards?|apple cards?|amazon cards?)\b.{0,80}?\b(?:codes?|scratch|photos?|pictures?"
        r"|pins?|numbers)\b",
        r"\bscratch (?:off )?the (?:back|card|silver)\b",
    ),
    _rule(
        "social.wire_transfer",
        20,
        rf"\b(?:wire|bank|swift|money) transfer\b.{{0,120}}?\b{_NOW}\b",
        rf"\b{_NOW}\b.{{0,120}}?\b(?:wire|bank|swift) transfer\b",
    ),
    _rule(
        "social.bank_details_change",
        25,
        r"\b(?:our|my|the) (?:bank(?:ing)?|account|payment|remittance|wire) (?:details|information|info"
        r"|account)(?: \w+){0,3}? (?:have|has) (?:been )?(?:changed|updated)\b",
        r"\b(?:new|updated|changed) (?:bank(?:ing)?|remittance|payment) (?:details|information|account)\b",
        r"\b(?:update|change) (?:our|my|the) (?:bank(?:ing)?|remittance|payment) (?:details|information)\b",
    ),
    _rule(
        "social.ceo_fraud",
        20,
        r"\bare you (?:at|on|near) your (?:desk|computer|pc|laptop)\b",
        r"\bare you available\W+(?:i need|for a quick|to handle|i have a)\b",
        r"\bi need you to (?:handle|process|make|complete|buy|purchase|send) (?:a |an |some )?(?:\w+ )?"
        r"(?:payment|transfer|wire|task|favou?r|purchase|gift cards?)\b",
        r"\bkeep (?:this|it) (?:confidential|between us|quiet|private)\b",
    ),
    _rule(
        "social.account_lure",
        15,
        r"\b(?:verify|confirm|validate|unlock|restore|reactivate)\b (?:your |the )?(?:account|identity"
        r"|password|login|credentials|mailbox|payment (?:details|information|method)|billing (?:details"
        r"|information))\b",
        r"\byour (?:account|mailbox|password|email) (?:has been|was|will be|is being|is) (?:suspended"
        r"|locked|disabled|limited|compromised|deactivated|closed|expired|expiring|on hold|restricted)\b",
        r"\bunusual (?:sign-?in|login) (?:activity|attempt)\b",
        r"\bmailbox (?:is )?(?:full|over ?quota|almost full)\b",
    ),
)

TEXT_RULES: tuple[TextRule, ...] = INJECTION_RULES + EXFILTRATION_RULES + SOCIAL_RULES
"""Every word rule, injection first."""

# Word rules whose presence in *hidden* text marks a deliberate attack (hidden.instructions).
HIDDEN_INSTRUCTION_RULES = frozenset(r.id for r in INJECTION_RULES + EXFILTRATION_RULES) - {
    "injection.base64_run"
}

SIGNAL_WEIGHTS: dict[str, int] = {
    # Invisible code points (counts from mailhook.guard.sanitize).
    "invisible.tags": 30,
    "invisible.zero_width": 10,
    "invisible.bidi": 15,
    "invisible.soft_hyphen": 5,
    # Hidden HTML (mailhook.guard.html_hidden): techniques marketing mail also uses score low.
    "hidden.display_none": 5,
    "hidden.visibility": 10,
    "hidden.font_size": 15,
    "hidden.opacity": 15,
    "hidden.same_color": 15,
    "hidden.offscreen": 15,
    "hidden.clip": 15,
    "hidden.zero_size": 10,
    "hidden.attribute": 5,
    "hidden.aria": 5,
    "hidden.script": 15,
    "hidden.non_rendered": 5,
    "hidden.zero_iframe": 20,
    "hidden.comment": 5,
    "hidden.instructions": 30,
    # Attachments (mailhook.guard.attachments).
    "attach.executable": 40,
    "attach.double_extension": 40,
    "attach.macro_office": 25,
    "attach.disk_image": 30,
    "attach.active_content": 20,
    "attach.archive": 10,
}
"""Weights of the rules that are not word patterns."""

_ZERO_WIDTH_MIN = 3  # one stray U+200B comes from copy-and-paste; three is deliberate
_SOFT_HYPHEN_MIN = 5  # hyphenation hints appear in some newsletters, a few at a time


def invisible_rules(removed: Removed) -> list[str]:
    """``invisible.*`` rules for the counts of removed invisible code points."""
    fired = []
    if removed.tags:
        fired.append("invisible.tags")
    if removed.zero_width >= _ZERO_WIDTH_MIN:
        fired.append("invisible.zero_width")
    if removed.bidi:
        fired.append("invisible.bidi")
    if removed.soft_hyphens >= _SOFT_HYPHEN_MIN:
        fired.append("invisible.soft_hyphen")
    return fired


def attachment_rules(attachments: Iterable[Attachment]) -> list[str]:
    """``attach.*`` rules for inbound attachments, judged by name, type and magic bytes."""
    fired: dict[str, None] = {}
    for item in attachments:
        checks = {
            "attach.executable": risk.is_executable(item),
            "attach.double_extension": risk.has_double_extension(item.filename),
            "attach.macro_office": risk.is_macro_office(item),
            "attach.disk_image": risk.is_disk_image(item),
            "attach.active_content": risk.is_active_content(item),
            "attach.archive": risk.is_archive(item),
        }
        fired.update(dict.fromkeys(rule for rule, hit in checks.items() if hit))
    return list(fired)
