"""Splits an HTML mail body into what a reader sees and what is hidden from them.

Hidden text is the classic way to slip instructions past the human who forwards a mail to an
agent: the person sees a harmless note, the model reads "ignore previous instructions". The
stdlib :class:`html.parser.HTMLParser` tokenizes the markup (no regular expressions over HTML);
each element is judged by its tag, its ``hidden``/``aria-hidden`` attributes and its inline CSS
(:mod:`mailhook.guard.css`), including text painted in its background colour. Visible markup is
re-emitted and rendered by :func:`mailhook.mail.html_text.html_to_text`, so the model gets the
same text layout as for any other HTML mail. The hidden text is kept apart for scoring, and each
hiding technique that actually hid some text is reported as a ``hidden.*`` rule id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from html.parser import HTMLParser

from mailhook.mail.html_text import html_to_text

from .css import BLACK, WHITE, Color, background_color, hidden_by_style, parse_color, parse_style, same_color

# HTML void elements have no end tag, so they never go on the open-element stack.
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param"}
    | {"source", "track", "wbr"}
)
# Elements whose content is never rendered as mail text: the rule id to report when they hold
# text, or "" when that is normal (a stylesheet, the document head).
_NOT_RENDERED = {
    "script": "hidden.script",
    "template": "hidden.non_rendered",
    "noscript": "hidden.non_rendered",
    "style": "",
    "head": "",
    "title": "",
    "svg": "",
    "object": "",
    "frame": "",
}
# Hidden text is kept for scoring, except stylesheets (CSS is not prose).
_NO_TEXT = frozenset({"style"})
# Outlook conditional comments ("<!--[if mso]>") are markup, not hidden prose.
_CONDITIONAL = ("[if", "<![endif]", "[endif]")
_COMMENT_MIN_WORDS = 3
# Elements that are a signal by their mere presence, text or not (a mail has no use for them).
_SIGNAL_TAGS = frozenset({"hidden.script", "hidden.zero_iframe"})


@dataclass(frozen=True)
class Anchor:
    """A visible link: where it goes and the text the reader sees."""

    href: str
    text: str


@dataclass(frozen=True)
class HtmlView:
    """The visible text, the hidden text, the hiding rules that fired, links and URLs."""

    text: str = field(repr=False)
    hidden_text: str = field(repr=False)
    rules: tuple[str, ...]
    anchors: tuple[Anchor, ...] = field(repr=False)
    urls: tuple[str, ...] = field(repr=False)


@dataclass
class _Frame:
    tag: str
    reason: str | None  # the rule that starts hiding here; None when this element is visible
    hidden: bool  # hidden here or by an ancestor
    fg: Color | None  # effective text colour; None when unknown
    bg: Color | None  # effective background colour; None when unknown
    # A class/id sits closer than the nearest inline background: a stylesheet may paint one.
    bg_uncertain: bool


_ROOT = _Frame("", None, False, BLACK, WHITE, False)


def _zero_iframe(attrs: dict[str, str]) -> bool:
    style = parse_style(attrs.get("style", ""))
    sizes = [attrs.get("width", ""), attrs.get("height", ""), style.get("width", ""), style.get("height", "")]
    return any(s.strip().rstrip("px").strip() in {"0", "1"} for s in sizes)


def _hidden_by_attribute(attrs: dict[str, str]) -> str | None:
    """HTML ``hidden`` (WHATWG §6.1) or ``aria-hidden="true"`` (WAI-ARIA 1.2)."""
    if "hidden" in attrs:
        return "hidden.attribute"
    if attrs.get("aria-hidden", "").strip().lower() == "true":
        return "hidden.aria"
    return None


class _Splitter(HTMLParser):
    """Walks the markup once, re-emitting visible markup and collecting hidden text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.visible: list[str] = []
        self.hidden: list[str] = []
        self.rules: dict[str, None] = {}
        self.anchors: list[Anchor] = []
        self.urls: list[str] = []
        self._stack: list[_Frame] = []
        self._open: dict[str, int] = {}
        self._link: tuple[str, list[str]] | None = None
        self._hiding: list[str] = []  # reasons of the open elements that start hiding text
        self._css_backgrounds = False  # a <style> block sets backgrounds by class

    def _top(self) -> _Frame:
        return self._stack[-1] if self._stack else _ROOT

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.urls.extend(values[name] for name in ("href", "src", "action") if values.get(name))
        frame = self._frame(tag, values, self._top())
        if frame.reason in _SIGNAL_TAGS:
            self.rules[frame.reason] = None
        if not frame.hidden:
            self.visible.append(self.get_starttag_text() or "")
            if tag == "a" and "href" in values:
                self._link = (values["href"], [])
        if tag in _VOID:
            return
        self._stack.append(frame)
        self._open[tag] = self._open.get(tag, 0) + 1
        if frame.reason is not None:
            self._hiding.append(frame.reason)

    def _frame(self, tag: str, attrs: dict[str, str], parent: _Frame) -> _Frame:
        style = parse_style(attrs.get("style", ""))
        fg = parent.fg
        if tag == "font" and "color" in attrs:
            fg = parse_color(attrs["color"])
        if "color" in style:
            fg = parse_color(style["color"])
        bg, bg_here = background_color(style, attrs.get("bgcolor"))
        classed = "class" in attrs or "id" in attrs
        frame = _Frame(
            tag,
            None,
            parent.hidden,
            fg,
            bg if bg_here else parent.bg,
            False if bg_here else parent.bg_uncertain or classed,
        )
        if not parent.hidden:
            frame.reason = self._hide_reason(tag, attrs, style)
            frame.hidden = frame.reason is not None
        return frame

    def _hide_reason(self, tag: str, attrs: dict[str, str], style: dict[str, str]) -> str | None:
        if tag in _NOT_RENDERED:
            return _NOT_RENDERED[tag]
        if tag == "iframe":
            return "hidden.zero_iframe" if _zero_iframe(attrs) else ""
        return _hidden_by_attribute(attrs) or hidden_by_style(style)

    def _invisible_colors(self, frame: _Frame) -> bool:
        """Text painted in (nearly) its background colour, judged where the text is."""
        if frame.fg is None or frame.bg is None:
            return False
        if frame.bg_uncertain and self._css_backgrounds:
            return False
        return same_color(frame.fg, frame.bg)

    def handle_endtag(self, tag: str) -> None:
        if not self._open.get(tag):
            return  # an end tag for nothing open: browsers ignore it too
        while self._stack:  # implicitly close everything opened inside it
            frame = self._stack.pop()
            self._open[frame.tag] -= 1
            if frame.reason is not None:
                self._hiding.pop()
            if not frame.hidden:
                self.visible.append(f"</{frame.tag}>")
                if frame.tag == "a":
                    self._close_link()
            if frame.tag == tag:
                break

    def _close_link(self) -> None:
        if self._link is not None:
            href, text = self._link
            self.anchors.append(Anchor(href, " ".join("".join(text).split())))
            self._link = None

    def handle_data(self, data: str) -> None:
        frame = self._top()
        if frame.tag == "style" and "background" in data.lower():
            self._css_backgrounds = True
        if frame.hidden:
            if frame.tag not in _NO_TEXT and data.strip():
                self.hidden.append(data)
                if self._hiding and self._hiding[0]:  # the outermost hiding element names it
                    self.rules[self._hiding[0]] = None
        elif data.strip() and self._invisible_colors(frame):
            self.hidden.append(data)
            self.rules["hidden.same_color"] = None
        else:
            self.visible.append(escape(data, quote=False))
            if self._link is not None:
                self._link[1].append(data)

    def handle_comment(self, data: str) -> None:
        text = data.strip()
        if text.lower().startswith(_CONDITIONAL):
            return
        self.hidden.append(text)
        if sum(word.isalpha() for word in text.split()) >= _COMMENT_MIN_WORDS:
            self.rules["hidden.comment"] = None


def inspect_html(html: str) -> HtmlView:
    """Visible text, hidden text and hiding rules of ``html``; never raises."""
    splitter = _Splitter()
    try:
        splitter.feed(html)
        splitter.close()
    except Exception:  # html.parser raises AssertionError on some broken markup ("<![x")
        return HtmlView(html_to_text(html), "", (), (), ())
    splitter._close_link()
    return HtmlView(
        text=html_to_text("".join(splitter.visible)),
        hidden_text="\n".join(splitter.hidden),
        rules=tuple(splitter.rules),
        anchors=tuple(splitter.anchors),
        urls=tuple(splitter.urls),
    )
