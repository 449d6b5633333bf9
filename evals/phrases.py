"""The phrase-matching rule of the question format: case-insensitive, markdown stripped,
whitespace folded.

    contains("**Engage with diverse**\n communities", "engage with DIVERSE communities")  # True

Typographic quotes and dashes are folded to their ASCII forms too, so a question author who
types ``plan's`` matches the toolkit's ``plan’s``.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

_SUP = re.compile(r"<sup>\s*\d+\s*</sup>")
_TAG = re.compile(r"<[^>]+>")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MARKER = re.compile(r"\[\d+\]")
_HEADING = re.compile(r"(?m)^\s{0,3}#{1,6}\s*")
_QUOTE = re.compile(r"(?m)^\s*>\s?")
_BULLET = re.compile(r"(?m)^\s*(?:[-*+]|\d+[.)])\s+")
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`|~~)")
_FOLD = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u00a0": " ",
        "\u2192": " ",
    }
)


@lru_cache(maxsize=8192)
def normalize(text: str) -> str:
    """``text`` as the matcher sees it: plain, lower-case, single-spaced."""
    text = html.unescape(text)
    text = _SUP.sub("", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _MARKER.sub("", text)
    text = _TAG.sub("", text)
    text = _HEADING.sub("", text)
    text = _QUOTE.sub("", text)
    text = _BULLET.sub("", text)
    text = _EMPHASIS.sub("", text)
    text = text.replace("\\", "").translate(_FOLD)
    return re.sub(r"\s+", " ", text).strip().casefold()


def contains(text: str, phrase: str) -> bool:
    """Whether ``phrase`` occurs in ``text`` under the matching rule."""
    needle = normalize(phrase)
    return bool(needle) and needle in normalize(text)


def found_in_any(texts: list[str], phrase: str) -> bool:
    """Whether ``phrase`` occurs in at least one of ``texts``."""
    needle = normalize(phrase)
    return bool(needle) and any(needle in normalize(text) for text in texts)
