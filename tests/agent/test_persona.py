"""`agent.policy.persona`: personas, intents, sampling and the persona-intent JSONL file."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.policy.persona import (
    ARCHETYPES,
    TRAIT_NAMES,
    Intent,
    Persona,
    PersonaFileError,
    PersonaIntent,
    load_persona_intents,
    sample_personas,
    save_persona_intents,
)

BOOTS = dict(title="Acme Men's Waterproof Hiking Boots (Size 10, Brown) - Leather Trail Shoes", brand="Acme",
             department="Shoes", price=89.99, options={"size": "10", "color": "Brown"}, asin="B0BOOTS")


class TestPersona:
    def test_defaults_and_traits(self) -> None:
        p = Persona(persona_id="p1", name="Dana")
        assert p.traits() == dict.fromkeys(TRAIT_NAMES, 0.5)
        assert p.habits() == []  # average traits say nothing
        assert p.preferred_brands == ()

    @pytest.mark.parametrize("value", [-0.01, 1.01, float("nan")])
    def test_traits_are_bounded(self, value: float) -> None:
        with pytest.raises(ValidationError):
            Persona(persona_id="p", name="n", patience=value)

    def test_frozen_and_strict(self) -> None:
        p = Persona(persona_id="p", name="n", preferred_brands=["Acme"])
        with pytest.raises(ValidationError):
            p.patience = 0.1  # type: ignore[misc]
        assert p.preferred_brands == ("Acme",)  # a tuple: cannot be appended to behind the model's back
        with pytest.raises(ValidationError):
            Persona(persona_id="p", name="n", mood="happy")  # type: ignore[call-arg]
        with pytest.raises(ValidationError):
            Persona(persona_id="", name="n")

    def test_habits_follow_thresholds(self) -> None:
        p = Persona(persona_id="p", name="n", budget_sensitivity=0.9, patience=0.1, brand_loyalty=0.5,
                    preferred_brands=("Acme", "Globex"))
        habits = p.habits()
        assert habits == [
            "You watch prices closely and go for the cheaper option.",
            "You get impatient quickly and give up easily.",
            "Brands you like: Acme, Globex.",
        ]


class TestSamplePersonas:
    def test_deterministic(self) -> None:
        assert sample_personas(20, seed=3) == sample_personas(20, seed=3)
        assert sample_personas(20, seed=3) != sample_personas(20, seed=4)
        assert sample_personas(5, seed=3) == sample_personas(5, seed=3)

    def test_sizes(self) -> None:
        assert sample_personas(0) == []
        assert len(sample_personas(100)) == 100
        with pytest.raises(ValueError, match="Expect n >= 0"):
            sample_personas(-1)

    def test_varied(self) -> None:
        personas = sample_personas(len(ARCHETYPES) * 3, seed=0)
        assert len({p.persona_id for p in personas}) == len(personas)
        assert len({p.name for p in personas}) == len(personas)
        keys = {p.persona_id.split("-", 2)[2] for p in personas}
        assert keys == {a.key for a in ARCHETYPES}
        for trait in TRAIT_NAMES:
            values = [getattr(p, trait) for p in personas]
            assert all(0.0 <= v <= 1.0 for v in values)
            assert statistics.pstdev(values) > 0.15, trait  # archetypes differ on every trait
        assert all(p.description.startswith(p.name) for p in personas)

    def test_first_round_covers_every_archetype(self) -> None:
        personas = sample_personas(len(ARCHETYPES), seed=11)
        assert len({p.persona_id.split("-", 2)[2] for p in personas}) == len(ARCHETYPES)

    def test_brands_come_from_the_pool(self) -> None:
        personas = sample_personas(40, seed=1, brands=["Acme", "Globex"])
        loyal = [p for p in personas if p.persona_id.endswith("brand_loyalist")]
        assert loyal and all(p.preferred_brands for p in loyal)
        assert {b for p in personas for b in p.preferred_brands} <= {"Acme", "Globex"}
        assert all(p.preferred_brands == () for p in sample_personas(20, seed=1, brands=[]))

    def test_many_personas_keep_unique_names(self) -> None:
        personas = sample_personas(150, seed=2)
        assert len({p.name for p in personas}) == 150


class TestIntent:
    def test_validation(self) -> None:
        assert Intent(text="  I need tea.  ").text == "I need tea."
        for bad in (dict(text="  "), dict(text="x", max_price=0), dict(text="x", max_price=float("inf")),
                    dict(text="x", colour="red")):
            with pytest.raises(ValidationError):
                Intent(**bad)  # type: ignore[arg-type]

    def test_from_product_is_deterministic(self) -> None:
        assert Intent.from_product(**BOOTS, seed=5) == Intent.from_product(**BOOTS, seed=5)
        texts = {Intent.from_product(**BOOTS, seed=s).text for s in range(40)}
        assert len(texts) >= 20  # reworded, not one template

    def test_from_product_reads_like_a_shopper(self) -> None:
        intents = [Intent.from_product(**BOOTS, seed=s) for s in range(200)]
        for intent in intents:
            assert intent.target_asin == "B0BOOTS" and intent.department == "Shoes"
            assert "B0BOOTS" not in intent.text
            assert intent.text[0].isupper() and intent.text.endswith((".", "?", "!"))
            assert len(intent.text) < 120
            assert "(" not in intent.text and "Leather Trail Shoes" not in intent.text  # shortened
            assert set(intent.options.items()) <= set(BOOTS["options"].items())  # type: ignore[union-attr]
            if intent.max_price is not None:
                assert intent.max_price >= BOOTS["price"]  # the product stays affordable
                assert f"${intent.max_price:.0f}" in intent.text
        assert "hiking" in intents[0].keywords and "acme" not in intents[0].keywords
        budgets = [i.max_price is not None for i in intents]
        assert 0.3 < sum(budgets) / len(budgets) < 0.9  # sometimes a budget, sometimes not
        vague = [i for i in intents if "boots" not in i.text.lower()]
        assert vague, "some intents are vague"
        assert any("Acme" in i.text for i in intents) and any("Acme" not in i.text for i in intents)

    def test_from_product_accepts_a_rng_and_odd_inputs(self) -> None:
        import random

        rng = random.Random(0)
        a, b = Intent.from_product(title="Tea", seed=rng), Intent.from_product(title="Tea", seed=rng)
        assert a.text and b.text
        for title in ("", "   ", "(only specs)", "12 oz", "A" * 500):
            intent = Intent.from_product(title=title, brand="X", department=None, price=float("nan"), seed=1)
            assert intent.text and intent.max_price is None


class TestPersonaIntentFile:
    def _items(self) -> list[PersonaIntent]:
        personas = sample_personas(3, seed=0)
        return [PersonaIntent(persona=p, intent=Intent.from_product(**BOOTS, seed=i)) for i, p in enumerate(personas)]

    def test_round_trip(self, tmp_path: Path) -> None:
        path = tmp_path / "pi.jsonl"
        save_persona_intents(path, self._items())
        path.write_text(path.read_text() + "\n\n")  # trailing blank lines are fine
        assert load_persona_intents(path) == self._items()

    def _write(self, tmp_path: Path, lines: list[str]) -> Path:
        path = tmp_path / "bad.jsonl"
        path.write_text("\n".join(lines), encoding="utf-8")
        return path

    def test_errors_name_the_line_and_problem(self, tmp_path: Path) -> None:
        good = self._items()[0].model_dump_json()
        cases = [
            (["{not json"], ":1: Expect a JSON object per line, actually: invalid JSON"),
            ([good, "[1, 2]"], ":2: Expect a JSON object, actually: list"),
            ([good, "", json.dumps({"persona": {"persona_id": "x", "name": "y"}})], ":3: Expect {persona, intent}"),
            ([json.dumps({"persona": {"persona_id": "x", "name": "y", "patience": 2}, "intent": {"text": "t"}})],
             "persona.patience"),
            ([good, good], ":2: Expect unique (persona_id, intent), actually: repeats line 1"),
        ]
        for lines, expected in cases:
            with pytest.raises(PersonaFileError) as info:
                load_persona_intents(self._write(tmp_path, lines))
            assert expected in str(info.value), str(info.value)
            assert str(tmp_path) in str(info.value)

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(PersonaFileError, match="cannot read"):
            load_persona_intents(tmp_path / "nope.jsonl")
