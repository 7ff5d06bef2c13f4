"""Removes what a reader cannot see from mail text, and counts what it removed.

Invisible code points are how instructions get past a human reviewer ("ASCII smuggling" with
Unicode tag characters) and how keywords get past filters ("ig\\u200bnore"). They are stripped
from everything the model reads, and the counts per kind feed the inbound threat score: a mail
that needed 40 zero-width spaces was not written by a person. Hidden HTML is handled by
:mod:`mailhook.guard.html_hidden`; :func:`fold_for_matching` prepares text for the rule patterns.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Unicode tag block (U+E0000-E007F; Unicode 15 §23.9), zero-width space/joiners (U+200B-200D),
# word joiner and invisible operators (U+2060-2064), BOM/ZWNBSP (U+FEFF), soft hyphen (U+00AD),
# Mongolian vowel separator (U+180E), and the bidi embedding/override/isolate controls of UAX #9
# (U+202A-202E, U+2066-2069) that reorder what a reader sees ("Trojan Source", CVE-2021-42574).
STRIPPED = re.compile(
    "[\U000e0000-\U000e007f\u200b-\u200d\u2060-\u2064\ufeff\u00ad\u180e\u202a-\u202e\u2066-\u2069]"
)
_TAGS = re.compile("[\U000e0000-\U000e007f]")
# Emoji tag sequences (UTS #51 §2.4: the subdivision flags 🏴 + tags + CANCEL TAG) are legitimate.
_EMOJI_TAG_SEQUENCE = re.compile("\U0001f3f4[\U000e0020-\U000e007e]{1,30}\U000e007f")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_ZERO_WIDTH = re.compile("[\u200b\u2060-\u2064\u180e]|(?<!^)\ufeff")
# ZWNJ/ZWJ shape Arabic, Indic and emoji text; inside a Latin word they only split keywords.
_JOINER_IN_LATIN_WORD = re.compile("(?<=[A-Za-z])[\u200c\u200d](?=[A-Za-z])")
_SOFT_HYPHEN = "\u00ad"

# Cyrillic and Greek letters that look like Latin ones (Unicode TR #39 confusables, lower case),
# so "ign\u043ere" with a Cyrillic o still matches the "ignore" rule. Matching only: never shown.
_CONFUSABLES = str.maketrans(
    "\u0430\u0435\u043e\u0440\u0441\u0443\u0445\u0456\u0458\u0455\u0501\u04bb\u04cf\u051b\u051d"  # Cyrillic
    "\u03bf\u03b1\u03bd\u03b9\u03ba\u03c1\u03c4\u03c5\u03c7",  # Greek
    "aeopcyxijsdhlqwoavikptux",
)
CONFUSABLE_LETTERS = frozenset(chr(code) for code in _CONFUSABLES)
"""Non-Latin letters that pass for Latin ones (a host name made only of them is a spoof)."""
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Removed:
    """How many invisible code points of each kind were removed (tags inside emoji flags excluded
    from ``tags``; joiners between non-Latin letters excluded from ``zero_width``).
    """

    tags: int = 0
    zero_width: int = 0
    bidi: int = 0
    soft_hyphens: int = 0

    def __add__(self, other: Removed) -> Removed:
        return Removed(
            self.tags + other.tags,
            self.zero_width + other.zero_width,
            self.bidi + other.bidi,
            self.soft_hyphens + other.soft_hyphens,
        )


def count_invisible(text: str) -> Removed:
    """Suspicious invisible code points in ``text``, by kind."""
    flags = sum(len(m.group(0)) - 1 for m in _EMOJI_TAG_SEQUENCE.finditer(text))
    return Removed(
        tags=len(_TAGS.findall(text)) - flags,
        zero_width=len(_ZERO_WIDTH.findall(text)) + len(_JOINER_IN_LATIN_WORD.findall(text)),
        bidi=len(_BIDI.findall(text)),
        soft_hyphens=text.count(_SOFT_HYPHEN),
    )


def strip_invisible(text: str) -> tuple[str, Removed]:
    """``text`` without any :data:`STRIPPED` code point, and the counts of what was suspicious."""
    if not STRIPPED.search(text):
        return text, Removed()
    return STRIPPED.sub("", text), count_invisible(text)


def fold_for_matching(text: str) -> str:
    """Text for the rule patterns: invisible code points gone, NFKC (full-width and styled
    letters become ASCII), case-folded, look-alike letters mapped, whitespace squeezed.
    """
    folded = unicodedata.normalize("NFKC", STRIPPED.sub("", text)).casefold()
    return _WHITESPACE.sub(" ", folded.translate(_CONFUSABLES))
