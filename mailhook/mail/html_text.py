"""Plain text of an HTML mail body, as a reader would see it in a mail client.

Used when a message has no text/plain part. The text goes to the model, so anything a human
reader does not see is dropped: ``<script>``/``<style>``/``<head>`` content and elements hidden
with the ``hidden`` attribute or inline CSS (``display:none``, ``font-size:0``...), a common way to
smuggle instructions past the person who forwards a mail. Parsing uses the stdlib
:class:`html.parser.HTMLParser` (a real tokenizer, not regular expressions); only if it fails on
truly broken markup does a crude tag-stripping fallback run.
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

# Content of these elements is never shown to a mail reader.
_SKIPPED = frozenset({"script", "style", "head", "title", "template", "svg", "object", "iframe"})
# HTML void elements have no end tag, so they must never go on the open-element stack.
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param"}
    | {"source", "track", "wbr"}
)
# Elements that start a new line of text.
_BLOCK = frozenset(
    {"address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt", "fieldset"}
    | {"figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header"}
    | {"hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tr", "ul"}
)
# Items and rows start a line but do not end with a blank one.
_LINE_ITEMS = frozenset({"li", "tr", "dt", "dd"})
_CELLS = frozenset({"td", "th"})
# Inline CSS that makes an element invisible (whitespace and case removed before matching).
_HIDDEN_CSS = re.compile(
    r"(?:^|;)(?:display:none|visibility:hidden|mso-hide:all|opacity:0(?:\.0*)?"
    r"|font-size:0(?:\.0*)?(?:px|pt|em|rem|%)?|max-height:0(?:px)?)(?:;|!|$)"
)
_BLANKS = re.compile(r"[ \t\r\f\v\u00a0]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")
# Fallback only: drop invisible blocks, then every tag.
_FALLBACK_BLOCKS = re.compile(r"<(script|style|head)\b.*?(?:</\1\s*>|\Z)", re.I | re.S)
_FALLBACK_TAGS = re.compile(r"<[^>]*>?")


def _is_hidden(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    if tag in _SKIPPED:
        return True
    for name, value in attrs:
        if name == "hidden":
            return True
        if name == "style" and value:
            css = re.sub(r"\s+", "", value.lower())
            if _HIDDEN_CSS.search(css):
                return True
    return False


class _TextExtractor(HTMLParser):
    """Collects visible text; keeps a stack of open elements to know what is hidden."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._stack: list[tuple[str, bool]] = []
        self._open: dict[str, int] = {}  # tag -> how many are open, so stray end tags are O(1)
        self._hidden = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self._hidden:
            self._separate(tag)
        if tag in _VOID:
            return
        hidden = _is_hidden(tag, attrs)
        self._stack.append((tag, hidden))
        self._open[tag] = self._open.get(tag, 0) + 1
        self._hidden += hidden
        self._pre += tag == "pre"

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK and tag not in _LINE_ITEMS and not self._hidden:
            self.chunks.append("\n")
        if not self._open.get(tag):
            return  # an end tag for nothing open: browsers ignore it too
        while self._stack:  # implicitly close everything opened inside it
            name, hidden = self._stack.pop()
            self._open[name] -= 1
            self._hidden -= hidden
            self._pre -= name == "pre"
            if name == tag:
                break

    def _separate(self, tag: str) -> None:
        if tag in _BLOCK or tag == "br":
            self.chunks.append("\n")
        if tag == "li":
            self.chunks.append("- ")
        elif tag in _CELLS:
            self.chunks.append(" ")

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        self.chunks.append(data if self._pre else _BLANKS.sub(" ", data.replace("\n", " ")))


def _tidy(text: str) -> str:
    lines = (_BLANKS.sub(" ", line).strip() for line in text.split("\n"))
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


def _fallback(html: str) -> str:
    text = _FALLBACK_TAGS.sub(" ", _FALLBACK_BLOCKS.sub(" ", html))
    return _tidy(unescape(text))


def html_to_text(html: str) -> str:
    """Visible text of ``html`` with block elements on their own lines; never raises."""
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # html.parser raises AssertionError on some broken markup ("<![x")
        return _fallback(html)
    return _tidy("".join(parser.chunks))
