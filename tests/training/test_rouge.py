"""ROUGE-L: checked against a plain O(n·m) dynamic-programming LCS and hand-computed values."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import training.rouge
from training.rouge import lcs_length, rouge_l, rouge_l_tokens, tokenize


def dp_lcs(a: list[str], b: list[str]) -> int:
    """The textbook LCS table."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a, 1):
        for j, y in enumerate(b, 1):
            table[i][j] = table[i - 1][j - 1] + 1 if x == y else max(table[i - 1][j], table[i][j - 1])
    return table[len(a)][len(b)]


def dp_rouge_l(pred: str, ref: str) -> float:
    p, r = tokenize(pred), tokenize(ref)
    if not p and not r:
        return 1.0
    if not p or not r:
        return 0.0
    lcs = dp_lcs(p, r)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(p), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


def test_doctests() -> None:
    assert doctest.testmod(training.rouge).failed == 0


class TestTokenize:
    @pytest.mark.parametrize(
        ("text", "tokens"),
        [
            ("search_results.acme_boot.title", ["search", "results", "acme", "boot", "title"]),
            ("Waterproof Hiking-Boots", ["waterproof", "hiking", "boots"]),
            ("size 10 (US)", ["size", "10", "us"]),
            ("product_options.style.button_list.4_stars_and_up", ["product", "options", "style", "button", "list",
                                                                 "4", "stars", "and", "up"]),
            ("Crème brûlée", ["crème", "brûlée"]),
            ("___...", []),
            ("", []),
        ],
    )
    def test_examples(self, text: str, tokens: list[str]) -> None:
        assert tokenize(text) == tokens


class TestRougeL:
    @pytest.mark.parametrize(
        ("pred", "ref", "expected"),
        [
            # identical up to case and separators
            ("search_results.acme_boot.title", "Search Results / Acme Boot / Title", 1.0),
            # 4 of 5 tokens in common on both sides: 2*4/10
            ("search_results.acme_boot.title", "search_results.acme_boot.image", 0.8),
            # [nav, bar, home] vs [nav, bar, homepage]: LCS 2, 2*2/6
            ("nav_bar.home", "nav_bar.homepage", 2 / 3),
            # subset: LCS 2 of (2, 3): 2*2/5
            ("hiking boots", "waterproof hiking boots", 0.8),
            # order matters: LCS of [hiking boots waterproof] and [waterproof hiking boots] is 2
            ("hiking boots waterproof", "waterproof hiking boots", 2 / 3),
            # the threshold boundary: 3 of 4 on both sides
            ("waterproof hiking boots men", "waterproof hiking boots women", 0.75),
            # repeated tokens: LCS([a a b], [a b b]) = 2
            ("a a b", "a b b", 2 / 3),
            ("tent", "kettle", 0.0),
            ("", "", 1.0),
            ("...", "_", 1.0),
            ("boots", "", 0.0),
            ("", "boots", 0.0),
        ],
    )
    def test_hand_computed(self, pred: str, ref: str, expected: float) -> None:
        assert rouge_l(pred, ref) == pytest.approx(expected)
        assert dp_rouge_l(pred, ref) == pytest.approx(expected)

    def test_lcs_length_matches_dp(self) -> None:
        a, b = list("abcbdab"), list("bdcaba")
        assert lcs_length(a, b) == dp_lcs(a, b) == 4

    def test_custom_tokenizer(self) -> None:
        assert rouge_l("ab", "ba", tokenize=list) == pytest.approx(0.5)
        assert rouge_l("Boots", "boots", tokenize=str.split) == 0.0

    def test_tokens_api(self) -> None:
        assert rouge_l_tokens([], []) == 1.0
        assert rouge_l_tokens(["a"], []) == 0.0
        assert rouge_l_tokens(["a", "b"], ["a", "b"]) == 1.0

    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(st.sampled_from(["a", "b", "c", "d", "boots", "Boots", "x_y", "ü"]), max_size=12),
        st.lists(st.sampled_from(["a", "b", "c", "d", "boots", "Boots", "x_y", "ü"]), max_size=12),
    )
    def test_matches_dp_reference(self, pred_words: list[str], ref_words: list[str]) -> None:
        pred, ref = " ".join(pred_words), " ".join(ref_words)
        value = rouge_l(pred, ref)
        assert value == pytest.approx(dp_rouge_l(pred, ref))
        assert value == pytest.approx(rouge_l(ref, pred))
        assert 0.0 <= value <= 1.0

    @settings(max_examples=200, deadline=None)
    @given(st.text(max_size=40), st.text(max_size=40))
    def test_arbitrary_text(self, pred: str, ref: str) -> None:
        assert rouge_l(pred, ref) == pytest.approx(dp_rouge_l(pred, ref))
        assert rouge_l(pred, pred) == 1.0
