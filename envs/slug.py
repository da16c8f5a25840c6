"""Slugs for element names: ``"Men's Trail Runner – Navy"`` → ``"men_s_trail_runner_navy"``.

The slug helpers that :mod:`envs.simplify` uses to name elements; a public module in its own right. Everything here
is pure and deterministic.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["cut_segment", "fit_segments", "slugify"]

# Letters that NFKD does not decompose into ASCII, and a few symbols that carry meaning in labels.
_TRANSLIT = str.maketrans(
    {
        "ß": "ss", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ø": "o", "Ø": "o", "đ": "d", "Đ": "d",
        "ð": "d", "Ð": "d", "þ": "th", "Þ": "th", "ł": "l", "Ł": "l", "ı": "i", "ħ": "h", "Ħ": "h",
        "&": " and ", "+": " plus ", "@": " at ", "%": " percent ",
    }
)  # fmt: skip
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    """Lowercase ASCII slug: accents stripped (NFKD), runs of anything else → ``_``, no leading/trailing ``_``.

    Returns ``""`` when nothing ASCII-alphanumeric is left (e.g. ``"›"`` or ``"购物车"``).

    >>> slugify("Crème Brûlée & Co. (12)")
    'creme_brulee_and_co_12'
    """
    text = unicodedata.normalize("NFKD", text.translate(_TRANSLIT))
    text = text.encode("ascii", "ignore").decode("ascii").lower()
    return _NON_ALNUM.sub("_", text).strip("_")


def cut_segment(seg: str, limit: int) -> str:
    """Shorten ``seg`` to at most ``limit`` characters, at a ``_`` word boundary when one is in the second half.

    >>> cut_segment("acme_trail_runner_waterproof", 20)
    'acme_trail_runner'
    """
    if len(seg) <= limit:
        return seg
    if limit <= 0:
        return ""
    head = seg[:limit]
    cut = head.rfind("_") if seg[limit] != "_" else limit
    if cut >= limit // 2:
        head = head[:cut]
    return head.rstrip("_") or seg[:limit]


def fit_segments(segs: list[str], limit: int) -> str:
    """Join ``segs`` with ``.`` so that the result has at most ``limit`` characters.

    The longest segment is shortened first (the last one on ties; word boundaries preferred); leading segments are
    dropped only when every segment is down to a single character.

    >>> fit_segments(["search_results", "acme_trail_runner_waterproof", "title"], 32)
    'search_results.acme_trail.title'
    """
    segs = [s for s in segs if s]
    if limit <= 0 or not segs:
        return ""
    while True:
        total = sum(map(len, segs)) + len(segs) - 1
        if total <= limit:
            return ".".join(segs)
        longest = max(range(len(segs)), key=lambda i: (len(segs[i]), i))
        if len(segs[longest]) > 1:
            segs[longest] = cut_segment(segs[longest], max(1, len(segs[longest]) - (total - limit)))
        elif len(segs) > 1:
            segs.pop(0)
        else:  # pragma: no cover - a single 1-char segment always fits a limit >= 1
            return segs[0][:limit]
