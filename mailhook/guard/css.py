"""Just enough inline CSS to tell whether an element's text is visible (CSS 2.1 / CSS Color 4).

Mail clients ignore most stylesheets but honour inline ``style`` attributes, which is where hidden
mail text lives: ``display:none``, zero font sizes, zero opacity, off-screen offsets, clipping,
and text painted in the background colour. Values are parsed, not pattern-matched, so
``font-size: 0.0em`` and ``color: rgb(255, 255, 255)`` are recognised like ``0`` and ``#fff``.
"""

from __future__ import annotations

import re

Color = tuple[int, int, int, float]
"""Red, green, blue (0-255) and alpha (0-1)."""

WHITE: Color = (255, 255, 255, 1.0)
BLACK: Color = (0, 0, 0, 1.0)

# CSS Color 4 named colours that matter for "text in the background colour": whites, near-whites,
# blacks and the basic palette. Anything else is "unknown", which never hides text.
_NAMED = {
    "white": "ffffff", "snow": "fffafa", "ivory": "fffff0", "ghostwhite": "f8f8ff",
    "whitesmoke": "f5f5f5", "floralwhite": "fffaf0", "seashell": "fff5ee", "mintcream": "f5fffa",
    "azure": "f0ffff", "aliceblue": "f0f8ff", "honeydew": "f0fff0", "linen": "faf0e6",
    "black": "000000", "red": "ff0000", "green": "008000", "blue": "0000ff", "yellow": "ffff00",
    "gray": "808080", "grey": "808080", "silver": "c0c0c0", "navy": "000080", "maroon": "800000",
    "purple": "800080", "orange": "ffa500", "lime": "00ff00", "aqua": "00ffff", "cyan": "00ffff",
    "fuchsia": "ff00ff", "magenta": "ff00ff", "teal": "008080", "olive": "808000",
}  # fmt: skip
_HEX = re.compile(r"#([0-9a-f]{3,8})")
_FUNC = re.compile(r"rgba?\(([^)]*)\)")
_NUMBER = re.compile(r"(-?\d*\.?\d+)\s*(px|pt|em|rem|%|vw|vh|cm|mm|in)?")
_COMMENT = re.compile(r"/\*.*?\*/", re.S)
# A channel difference small enough that a reader cannot see the text (#fefefe on #ffffff).
_INVISIBLE_CONTRAST = 24
_OFFSCREEN_PX = -500.0
_PX_PER_UNIT = {"px": 1.0, "pt": 4 / 3, "em": 16.0, "rem": 16.0, "cm": 37.8, "mm": 3.78, "in": 96.0}


def parse_style(value: str) -> dict[str, str]:
    """Declarations of an inline style attribute, lower-cased, ``!important`` dropped."""
    declarations: dict[str, str] = {}
    for item in _COMMENT.sub("", value).split(";"):
        name, colon, val = item.partition(":")
        if colon and name.strip():
            declarations[name.strip().lower()] = val.replace("!important", "").strip().lower()
    return declarations


def _hex_color(digits: str) -> Color | None:
    if len(digits) in (3, 4):
        digits = "".join(c * 2 for c in digits)
    if len(digits) not in (6, 8):
        return None
    alpha = int(digits[6:8], 16) / 255 if len(digits) == 8 else 1.0
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16), alpha


def _channel(token: str, scale: float) -> float:
    token = token.strip()
    if token.endswith("%"):
        return float(token[:-1]) * scale / 100
    return float(token)


def _func_color(args: str) -> Color | None:
    parts = [p for p in re.split(r"[\s,/]+", args.strip()) if p]
    if len(parts) not in (3, 4):
        return None
    try:
        rgb = [max(0, min(255, round(_channel(p, 255)))) for p in parts[:3]]
        alpha = max(0.0, min(1.0, _channel(parts[3], 1))) if len(parts) == 4 else 1.0
    except ValueError:
        return None
    return rgb[0], rgb[1], rgb[2], alpha


def parse_color(value: str) -> Color | None:
    """A colour value (#rgb, #rrggbbaa, rgb()/rgba(), names, transparent); None if unknown."""
    value = value.strip().lower()
    if value == "transparent":
        return (0, 0, 0, 0.0)
    if value in _NAMED:
        return _hex_color(_NAMED[value])
    if match := _HEX.fullmatch(value):
        return _hex_color(match.group(1))
    if match := _FUNC.fullmatch(value):
        return _func_color(match.group(1))
    return None


def background_color(declarations: dict[str, str], bgcolor: str | None) -> tuple[Color | None, bool]:
    """(colour, set here) from ``background-color``, ``background`` or the ``bgcolor`` attribute.

    A background image or gradient makes the colour unknown (text over a picture can be white).
    """
    shorthand = declarations.get("background", "")
    if "url(" in shorthand or "gradient" in shorthand or "background-image" in declarations:
        return None, True
    if "background-color" in declarations:
        return parse_color(declarations["background-color"]), True
    if shorthand:
        for token in re.findall(r"#[0-9a-f]+|rgba?\([^)]*\)|[a-z]+", shorthand):
            if (color := parse_color(token)) is not None:
                return color, True
        return None, True
    if bgcolor is not None:
        return parse_color(bgcolor), True
    return None, False


def same_color(fg: Color, bg: Color) -> bool:
    """Text in ``fg`` on ``bg`` cannot be seen: transparent text or (nearly) equal colours."""
    if fg[3] <= 0.05:
        return True
    return bg[3] > 0.5 and sum(abs(a - b) for a, b in zip(fg[:3], bg[:3], strict=True)) <= _INVISIBLE_CONTRAST


def _px(value: str) -> float | None:
    match = _NUMBER.match(value.strip())
    if not match:
        return None
    number = float(match.group(1))
    unit = match.group(2) or "px"
    if unit == "%":
        return number * 0.16  # of a 16px parent font, close enough for "is it tiny"
    return number * _PX_PER_UNIT.get(unit, 1.0)


def _zero(value: str | None) -> bool:
    if value is None:
        return False
    size = _px(value)
    return size is not None and size <= 1.0


def _offscreen(declarations: dict[str, str]) -> bool:
    positioned = declarations.get("position", "") in {"absolute", "fixed"}
    offsets = ("left", "top", "right", "bottom") if positioned else ()
    for name in (*offsets, "margin-left", "margin-top", "text-indent"):
        size = _px(declarations.get(name, ""))
        if size is not None and size <= _OFFSCREEN_PX:
            return True
    return False


def _clipped(declarations: dict[str, str]) -> bool:
    clip = declarations.get("clip", "")
    if clip.startswith("rect("):
        sizes = [_px(v) for v in re.split(r"[\s,]+", clip[5:].rstrip(")").strip()) if v]
        if len(sizes) == 4 and None not in sizes:
            top, right, bottom, left = (s or 0.0 for s in sizes)
            return bottom - top <= 1 or right - left <= 1
    path = declarations.get("clip-path", "")
    inset = re.match(r"inset\(\s*(\d+(?:\.\d+)?)%", path)
    return bool(inset and float(inset.group(1)) >= 50) or path.startswith("circle(0")


def _zero_size(declarations: dict[str, str]) -> bool:
    if _zero(declarations.get("max-height")) or _zero(declarations.get("max-width")):
        return True
    if "scale(0" in declarations.get("transform", ""):
        return True
    overflow = declarations.get("overflow", "") == "hidden"
    return overflow and (_zero(declarations.get("width")) or _zero(declarations.get("height")))


def _opacity(value: str) -> float | None:
    try:
        return float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        return None


def _display_none(declarations: dict[str, str]) -> bool:
    return declarations.get("display") == "none" or declarations.get("mso-hide") == "all"


def _invisible(declarations: dict[str, str]) -> bool:
    return declarations.get("visibility") in {"hidden", "collapse"}


def _tiny_font(declarations: dict[str, str]) -> bool:
    return _zero(declarations.get("font-size"))


def _transparent(declarations: dict[str, str]) -> bool:
    opacity = _opacity(declarations.get("opacity", "1"))
    return opacity is not None and opacity <= 0.05


_STYLE_CHECKS = (
    ("hidden.display_none", _display_none),
    ("hidden.visibility", _invisible),
    ("hidden.font_size", _tiny_font),
    ("hidden.opacity", _transparent),
    ("hidden.offscreen", _offscreen),
    ("hidden.clip", _clipped),
    ("hidden.zero_size", _zero_size),
)


def hidden_by_style(declarations: dict[str, str]) -> str | None:
    """The ``hidden.*`` rule id an inline style hides its element with, or None if visible."""
    return next((rule for rule, hides in _STYLE_CHECKS if hides(declarations)), None)
