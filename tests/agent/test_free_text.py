"""Free-text intents: written (`agent.policy.free_text`, `Intent.from_product(free_text=True)`, `sample_from_catalog`),
read by the scripted shopper (`agent.policy.request_reader`, `read_intent`, `query_variants`), and the first-query
check (`agent.analysis.query_checks`) against hand-written requests in `data/free_text_intents.jsonl`.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from test_scripted import page, persona

from agent.analysis.query_checks import first_query_checks, has_head_noun
from agent.policy.free_text import RequestParts, write_request
from agent.policy.persona import Intent
from agent.policy.request_reader import one_slip
from agent.policy.scripted import decide, step_rng
from agent.policy.scripted_text import query_variants, read_intent
from envs.actions import TypeAndSubmit

REQUESTS = [json.loads(line) for line in (Path(__file__).parent / "data" / "free_text_intents.jsonl")
            .read_text(encoding="utf-8").splitlines() if line.strip()]
BOOTS = dict(title="Acme Trail Runner Waterproof Hiking Boots, Men's (Size 10)", brand="Acme", department="Shoes",
             price=89.5, options={"size": "10", "color": "Navy"}, asin="B0BOOTS")


def test_the_request_file_is_varied() -> None:
    assert len(REQUESTS) >= 40
    styles = {r["style"] for r in REQUESTS}
    assert {"short", "chatty", "typos", "caps", "odd order", "numbers", "webshop"} <= styles, styles
    for r in REQUESTS:
        assert r["head"].lower() in r["text"].lower(), r


class TestWriting:
    def test_deterministic_and_varied(self) -> None:
        parts = RequestParts(thing="waterproof hiking boots", options={"color": "navy", "size": "10"}, max_price=120,
                             brand="Acme")
        assert write_request(parts, random.Random(3)) == write_request(parts, random.Random(3))
        texts = [write_request(parts, random.Random(s)) for s in range(300)]
        assert len(set(texts)) == 300
        lengths = [len(t.split()) for t in texts]
        assert min(lengths) <= 10 and max(lengths) >= 25, (min(lengths), max(lengths))  # short and long (4 constraints)
        assert any(t.isupper() for t in texts) and sum(t == t.lower() for t in texts) > 100  # ALL CAPS, lowercase
        assert any(re.match(r"(?i)(under|less|for less|max|no more|budget|<|\$|below|in |size|navy|acme)", t)
                   for t in texts)  # constraints before the product
        assert sum("boots" in t.lower() for t in texts) == 300  # the head noun is never misspelt
        openers = {t.lower().split(" ")[0] for t in texts}
        assert len(openers) >= 25, openers  # not one sentence pattern
        tidy = {w for t in [write_request(parts, _NoTypos(s)) for s in range(300)] for w in _words(t)}
        with_slips = [t for t in texts if any(w not in tidy and any(one_slip(w, k) for k in tidy) for w in _words(t))]
        assert 0.15 <= len(with_slips) / len(texts) <= 0.5, len(with_slips)  # typos, in some requests

    def test_from_product_free_text_keeps_the_hidden_fields(self) -> None:
        for seed in range(100):
            tidy = Intent.from_product(**BOOTS, seed=seed)
            free = Intent.from_product(**BOOTS, seed=seed, free_text=True)
            assert (free.max_price, free.options, free.keywords, free.target_asin, free.department) == (
                tidy.max_price, tidy.options, tidy.keywords, tidy.target_asin, tidy.department)
            assert free == Intent.from_product(**BOOTS, seed=seed, free_text=True)
        texts = {Intent.from_product(**BOOTS, seed=s, free_text=True).text for s in range(100)}
        tidy_texts = {Intent.from_product(**BOOTS, seed=s).text for s in range(100)}
        assert len(texts) == 100 and not texts & tidy_texts

    def test_sampling_mixes_both_styles(self, store_db: Path) -> None:
        from agent.wiring import sample_from_catalog

        tidy = sample_from_catalog(store_db, 40, seed=2, free_text_share=0.0)
        mixed = sample_from_catalog(store_db, 40, seed=2)
        assert mixed == sample_from_catalog(store_db, 40, seed=2, free_text_share=0.5)
        assert [(a.persona, a.intent.target_asin, a.intent.max_price, a.intent.options) for a in tidy] == [
            (b.persona, b.intent.target_asin, b.intent.max_price, b.intent.options) for b in mixed]
        changed = sum(a.intent.text != b.intent.text for a, b in zip(tidy, mixed, strict=True))
        assert 10 <= changed <= 30, changed
        every = sample_from_catalog(store_db, 40, seed=2, free_text_share=1.0)
        assert all(a.intent.text != b.intent.text for a, b in zip(tidy, every, strict=True))
        with pytest.raises(ValueError, match=r"Expect free_text_share in \[0, 1\], actually: 1.5"):
            sample_from_catalog(store_db, 2, free_text_share=1.5)


class _NoTypos(random.Random):
    """A `random.Random` under which `write_request` makes no typos (its typo draw is the only `sample` call)."""

    def sample(self, population, k, **kwargs):  # type: ignore[override]
        return []


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


class TestReading:
    @pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: r["text"][:40])
    def test_full_query_keeps_the_head_noun_and_drops_filler(self, request_: dict) -> None:
        want = read_intent(request_["text"])
        kinds = dict(query_variants(want))
        full = next(q for k, q in query_variants(want) if k == "full")
        assert first_query_checks(full, request_["head"]) == [], (request_["text"], kinds)

    def test_key_attributes_are_kept(self) -> None:
        kept = [any(a in next(q for k, q in query_variants(read_intent(r["text"])) if k == "full")
                    for a in r["attributes"]) for r in REQUESTS if r["attributes"]]
        assert sum(kept) / len(kept) >= 0.9, f"Expect >= 90% of queries with a key attribute, actually: {kept}"

    def test_budget_and_size_are_read_from_the_text(self) -> None:
        want = read_intent("under $100, black, size 9 - need running shoes for women")
        assert (want.max_price, want.options, want.head) == (100.0, {"size": "9"}, "shoe")
        assert read_intent("Adjustable dumbbells. Up to 50 lbs each. Budget around $200.").max_price == 200.0
        given = read_intent("find me tea under 30 dollars", max_price=12.0, options={"size": "M"})
        assert (given.max_price, given.options) == (12.0, {"size": "M"})  # the intent's own fields win

    def test_issue_examples(self) -> None:
        """The stray one-word queries the issue reports ("50", "washable", "color", "buy it") are gone."""
        for text, head in (("i need a 50 by 60 inch machine washable throw blanket", "blanket"),
                           ("i am looking for a headphones case that is apple compatible and is navy blue colored",
                            "case"),
                           ("buy it: a stainless steel electric kettle, any color", "kettle")):
            for _, q in query_variants(read_intent(text)):
                assert q not in ("50", "washable", "color", "buy it"), (text, q)
                assert has_head_noun(q, head), (text, q)


class TestScriptedFirstQuery:
    @pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: r["text"][:40])
    def test_first_search_passes_the_checks(self, request_: dict) -> None:
        intent = Intent(text=request_["text"])
        shopper = persona(exploration=0.0, decisiveness=1.0)
        searches = [s.action.text for s in (decide(shopper, intent, [], page("home"), step_rng(seed, 0))
                                            for seed in range(12)) if isinstance(s.action, TypeAndSubmit)]
        assert searches, f"Expect a search among 12 seeds, actually: none for {request_['text']!r}"
        for query in searches:
            assert first_query_checks(query, request_["head"]) == [], (request_["text"], query)


class TestChecks:
    def test_good_queries_pass(self) -> None:
        for query, head in (("navy blue apple compatible headphones case", "case"), ("Hiking Boots", "boots"),
                            ("vegan snack bar", "bars"), ("throw blnaket 50x60", "blanket")):
            assert first_query_checks(query, head) == [], query

    def test_bad_queries_say_what_is_wrong(self) -> None:
        assert first_query_checks("washable", "blanket") == [
            "Expect 2-8 words, actually: 1 in 'washable'", "Expect the head noun 'blanket', actually: 'washable'"]
        assert first_query_checks("i am looking for a headphones case please", "case") == [
            "Expect no filler words, actually: ['i', 'looking', 'please'] in 'i am looking for a headphones case "
            "please'"]
        long = "soft warm cozy machine washable fleece sherpa throw blanket"
        assert first_query_checks(long, "blanket") == [f"Expect 2-8 words, actually: 9 in {long!r}"]
        assert first_query_checks("hiking bots", "boots") == ["Expect the head noun 'boots', actually: 'hiking bots'"]
