"""Checks on a shopper's first search query: does it look like what people type for the request it came from?

One function, `first_query_checks`, shared by the scripted shopper's tests and the trained shopper's evaluation
(against the same hand-written requests in `tests/agent/data/free_text_intents.jsonl`). A good first query:

- has 2 to `MAX_QUERY_WORDS` (8) words;
- keeps the product's head noun ("blanket" for "a 50 by 60 inch machine washable throw blanket"), singular or plural,
  allowing one typing slip in words of 5+ letters (people's queries have typos);
- has none of the request's filler: pronouns, request verbs, politeness, the budget ("i", "looking", "need", "please",
  "dollars").

>>> first_query_checks("machine washable throw blanket", "blanket")
[]
>>> first_query_checks("50", "blanket")
["Expect 2-8 words, actually: 1 in '50'", "Expect the head noun 'blanket', actually: '50'"]
>>> first_query_checks("i need a throw blanket please", "blanket")
["Expect no filler words, actually: ['i', 'need', 'please'] in 'i need a throw blanket please'"]
"""

from __future__ import annotations

import re

from agent.policy.request_reader import one_slip
from agent.policy.scripted_text import MAX_QUERY_WORDS, stem

__all__ = ["MAX_QUERY_WORDS", "QUERY_FILLER", "first_query_checks", "has_head_noun"]

QUERY_FILLER = frozenset(
    "i im i'm i'd id i've me my we you your it it's its they they're them that's "
    "looking look searching need needs want wanna find buy show help please pls plz thanks thank thx hi hey hello "
    "sure something anything dollars dollar bucks budget cheaper would could should".split()
)
"""Words of a request that never belong in its search query."""

_WORD = re.compile(r"[a-z0-9][a-z0-9'&+-]*")


def has_head_noun(query: str, head_noun: str) -> bool:
    """True when a word of `query` is `head_noun`, singular or plural, or one typing slip from it (5+ letters).

    >>> has_head_noun("Hiking Bots", "boots"), has_head_noun("throw blnaket", "blanket"), has_head_noun("bag", "bags")
    (False, True, True)
    """
    want = stem(head_noun.lower())
    for word in _WORD.findall(query.lower()):
        got = stem(word)
        if got == want or (len(want) >= 5 and (one_slip(got, want) or one_slip(word, head_noun.lower()))):
            return True
    return False


def first_query_checks(query: str, expected_head_noun: str) -> list[str]:
    """The problems of `query` as a first search for a request whose head noun is `expected_head_noun`; [] if none.

    Each problem reads "Expect ..., actually: ..." (see the module docstring for the rules).
    """
    problems = []
    words = _WORD.findall(query.lower())
    if not 2 <= len(words) <= MAX_QUERY_WORDS:
        problems.append(f"Expect 2-{MAX_QUERY_WORDS} words, actually: {len(words)} in {query!r}")
    if not has_head_noun(query, expected_head_noun):
        problems.append(f"Expect the head noun {expected_head_noun!r}, actually: {query!r}")
    filler = [w for w in words if w in QUERY_FILLER]
    if filler:
        problems.append(f"Expect no filler words, actually: {filler} in {query!r}")
    return problems
