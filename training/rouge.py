"""Token-level ROUGE-L F1, the similarity behind Shop-R1's value rewards and the exact-match rule of the evaluation.

ROUGE-L compares two token sequences by their longest common subsequence (LCS):
precision P = LCS / len(pred), recall R = LCS / len(ref), and F1 = 2PR / (P + R) = 2·LCS / (len(pred) + len(ref)).
The LCS runs in C through rapidfuzz's `LCSseq` (on lists of token strings, which it hashes), so one score costs about
a microsecond.

Tokenization (`tokenize`): lowercase, then split on everything that is not a letter or a digit (Unicode-aware; `_`
and `.` are separators, so dotted element names split into their words):

>>> tokenize("search_results.Acme_Boot.title")
['search', 'results', 'acme', 'boot', 'title']
>>> tokenize("Waterproof  hiking-boots, size 10½")
['waterproof', 'hiking', 'boots', 'size', '10½']

Edge cases: two texts without any token score 1.0 (nothing to disagree on); exactly one empty scores 0.0.

>>> rouge_l("search_results.acme_boot.title", "search_results.acme_boot.image")
0.8
>>> rouge_l("", "  "), rouge_l("boots", "")
(1.0, 0.0)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from rapidfuzz.distance import LCSseq

__all__ = ["Tokenizer", "lcs_length", "rouge_l", "rouge_l_tokens", "tokenize"]

Tokenizer = Callable[[str], Sequence[str]]

_WORD = re.compile(r"[^\W_]+")  # letters and digits in the Unicode sense; `_` counts as a separator


def tokenize(text: str) -> list[str]:
    """Lowercase `text` and split it on non-alphanumerics (Unicode letters and digits are kept together).

    >>> tokenize("nav_bar.homepage"), tokenize("  "), tokenize("Café CRÈME")
    (['nav', 'bar', 'homepage'], [], ['café', 'crème'])
    """
    return _WORD.findall(text.lower())


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token sequences (rapidfuzz, in C).

    >>> lcs_length(["a", "b", "c", "d"], ["b", "d", "a"])
    2
    """
    return int(LCSseq.similarity(a, b))


def rouge_l_tokens(pred: Sequence[str], ref: Sequence[str]) -> float:
    """ROUGE-L F1 of two token sequences: 2·LCS / (len(pred) + len(ref)); 1.0 when both are empty.

    >>> rouge_l_tokens(["hiking", "boots"], ["waterproof", "hiking", "boots"])
    0.8
    """
    total = len(pred) + len(ref)
    if total == 0:
        return 1.0
    if not pred or not ref:
        return 0.0
    return 2.0 * LCSseq.similarity(pred, ref) / total


def rouge_l(pred: str, ref: str, tokenize: Tokenizer = tokenize) -> float:
    """ROUGE-L F1 between `pred` and `ref` after `tokenize` (default: lowercase, split on non-alphanumerics).

    Symmetric, in [0, 1], 1.0 for texts with the same tokens in the same order.

    >>> rouge_l("Waterproof Hiking Boots", "waterproof hiking boots")
    1.0
    >>> round(rouge_l("hiking boots waterproof", "waterproof hiking boots"), 4)
    0.6667
    """
    return rouge_l_tokens(tokenize(pred), tokenize(ref))
