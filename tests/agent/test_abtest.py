"""`agent.analysis.stats` against hand-computed values, and `agent.analysis.abtest` end to end on store variants a and
b."""

from __future__ import annotations

import json
import math
import re

import pytest
import typer
from shoppers import BuyFirstPolicy

from agent.analysis.abtest import abtest, compare_runs, format_abtest
from agent.analysis.stats import (
    Interval,
    diff_interval,
    mean_interval,
    t_quantile,
    welch_interval,
    wilson_interval,
    z_value,
)
from agent.cli.abtest import abtest_command
from agent.policy.persona import Intent, PersonaIntent, sample_personas
from agent.runtime.session import RunConfig
from agent.wiring import featured_items
from sites.store.variants import VARIANT_NAMES, VariantName

Z = 1.959963984540054


# --------------------------------------------------------------------------------------------------------- stats
def test_z_value():
    assert z_value(0.95) == pytest.approx(Z)
    assert z_value(0.90) == pytest.approx(1.644854, abs=1e-6)
    with pytest.raises(ValueError, match="confidence"):
        z_value(1.0)


def test_wilson_by_hand():
    # 5/10: centre (0.5 + z²/20) / (1 + z²/10) = 0.5; half = z·sqrt(0.025 + z²/400) / (1 + z²/10) = 0.26341
    r = wilson_interval(5, 10)
    assert (r.estimate, r.n, r.method) == (0.5, 10, "wilson")
    assert r.low == pytest.approx(0.236593, abs=1e-6) and r.high == pytest.approx(0.763407, abs=1e-6)
    # 0/4: low is exactly 0; high = 2·(z²/8)/(1 + z²/4) = 0.489891
    r = wilson_interval(0, 4)
    assert r.low == 0.0 and r.high == pytest.approx(0.489891, abs=1e-6)
    r = wilson_interval(4, 4)
    assert r.high == 1.0 and r.low == pytest.approx(1 - 0.489891, abs=1e-6)
    # 3/4: centre (0.75 + z²/8)/(1 + z²/4) = 0.627527, half z·sqrt(3/64 + z²/64)/(1 + z²/4) = 0.326886
    r = wilson_interval(3, 4)
    assert r.low == pytest.approx(0.300641, abs=1e-5) and r.high == pytest.approx(0.954413, abs=1e-5)
    assert wilson_interval(0, 0).estimate is None
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(5, 3)


def test_newcombe_published_example():
    # Newcombe (1998), Statistics in Medicine 17:873, Table II example (a): 56/70 vs 48/80, method 10.
    r = diff_interval(48, 80, 56, 70)
    assert r.estimate == pytest.approx(0.2)
    assert r.low == pytest.approx(0.0524, abs=1e-4) and r.high == pytest.approx(0.3339, abs=1e-4)
    assert r.method == "newcombe"


def test_newcombe_by_hand_from_wilson_bounds():
    # B - A with A = 3/4 (0.300641, 0.954413) and B = 0/4 (0, 0.489891):
    # low  = -0.75 - sqrt(0² + (0.954413 - 0.75)²) = -0.954413
    # high = -0.75 + sqrt(0.489891² + (0.75 - 0.300641)²) = -0.085231
    r = diff_interval(3, 4, 0, 4)
    assert r.estimate == pytest.approx(-0.75)
    assert r.low == pytest.approx(-0.954413, abs=1e-5) and r.high == pytest.approx(-0.085231, abs=1e-5)
    assert diff_interval(0, 0, 1, 2).estimate is None


def test_mean_interval_by_hand():
    # [1..5]: mean 3, s² = 2.5, se = sqrt(0.5) = 0.707107, t(0.975, 4) = 2.7764 -> half 1.963213
    r = mean_interval([1, 2, 3, 4, 5])
    assert r.estimate == 3.0
    assert r.low == pytest.approx(1.036787, abs=1e-5) and r.high == pytest.approx(4.963213, abs=1e-5)
    one = mean_interval([7.0])
    assert (one.estimate, one.low, one.high) == (7.0, None, None)
    assert mean_interval([]).estimate is None
    assert mean_interval([4, 4, 4]).low == 4.0


def _t_cdf(x: float, df: float, steps: int = 20000) -> float:
    """Student t CDF by Simpson integration of the density from 0 (an independent check of t_quantile)."""
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    h = x / steps
    total = 0.0
    for i in range(steps + 1):
        t = i * h
        w = 1 if i in (0, steps) else (4 if i % 2 else 2)
        total += w * c * (1 + t * t / df) ** (-(df + 1) / 2)
    return 0.5 + total * h / 3


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5.88, 7.5, 12, 30, 40, 120])
def test_t_quantile_matches_the_t_distribution(df):
    q = t_quantile(0.975, df)
    tol = 5e-3 if df == 3 else 1e-3  # Cornish-Fisher is weakest at small df (the table covers integer df <= 30)
    assert _t_cdf(q, df) == pytest.approx(0.975, abs=tol)


def test_t_quantile_table_and_symmetry():
    assert t_quantile(0.975, 4) == 2.7764 and t_quantile(0.975, 30) == 2.0423
    assert t_quantile(0.025, 10) == -2.2281
    assert t_quantile(0.975, 1) == pytest.approx(12.7062, abs=1e-4)
    assert t_quantile(0.975, 2) == pytest.approx(4.3027, abs=1e-4)
    assert t_quantile(0.975, 120) == pytest.approx(1.9799, abs=1e-3)
    assert t_quantile(0.95, 10) == pytest.approx(1.8125, abs=1e-3)


def test_welch_by_hand():
    # a = [1..5] (mean 3, s² 2.5), b = [2, 4, .., 10] (mean 6, s² 10): se = sqrt(0.5 + 2) = 1.581139,
    # df = 2.5² / (0.5²/4 + 2²/4) = 5.882353
    r = welch_interval([1, 2, 3, 4, 5], [2, 4, 6, 8, 10])
    se, df = math.sqrt(2.5), 6.25 / (0.0625 + 1)
    assert r.estimate == 3.0
    half = t_quantile(0.975, df) * se
    assert r.low == pytest.approx(3 - half) and r.high == pytest.approx(3 + half)
    assert 2.44 < t_quantile(0.975, df) < 2.46
    assert welch_interval([1, 1], [1, 1]).low == 0.0
    assert welch_interval([], [1.0]).estimate is None
    assert welch_interval([1.0], [2.0, 3.0]).low is None


def test_interval_format():
    assert Interval(estimate=0.25, low=0.1, high=0.5).format(percent=True) == "25.0% [10.0, 50.0]"
    assert Interval(estimate=3.2, low=None, high=None).format() == "3.20"
    assert Interval(estimate=None, low=None, high=None).format() == "n/a"


# ---------------------------------------------------------------------------------------------------- end to end
def _items() -> list[PersonaIntent]:
    personas = sample_personas(4, seed=3)
    words = ["shoes", "lamp", "shoes", "zzqqxxnothing"]  # the last finds nothing: a terminate on both arms
    return [PersonaIntent(persona=p, intent=Intent(text=f"I need {w}.", keywords=(w,)))
            for p, w in zip(personas, words, strict=True)]


def test_abtest_end_to_end(store_a, store_b, tmp_path):
    """The test shopper buys through variant a's `.buy_now` button; variant b names it differently, so it leaves."""
    config = RunConfig(site="unused", backend="http", concurrency=2, seed=11, max_steps=8)
    result = abtest(store_a.url + "/", store_b.url + "/", BuyFirstPolicy, _items(), config, tmp_path)

    assert (result.a.sessions, result.b.sessions, result.paired_sessions) == (4, 4, 4)
    assert (result.a.purchases, result.b.purchases) == (3, 0)
    assert result.a.conversion.low == pytest.approx(0.300641, abs=1e-5)  # Wilson 3/4, as computed above
    assert result.b.conversion.high == pytest.approx(0.489891, abs=1e-5)
    assert result.conversion_diff.estimate == pytest.approx(-0.75)
    assert result.conversion_diff.high == pytest.approx(-0.085231, abs=1e-5)
    assert result.a.steps_to_purchase.estimate == 4.0  # search, result, buy now, place order
    assert result.a.steps_to_purchase.low == 4.0  # no spread
    assert result.b.steps_to_purchase.estimate is None and result.steps_to_purchase_diff.estimate is None
    assert result.a.searches_per_session.estimate == 1.0 and result.b.searches_per_session.estimate == 1.0
    assert result.searches_diff.estimate == 0.0
    assert (result.a.terminate.estimate, result.b.terminate.estimate) == (0.25, 1.0)

    # Same session ids and seeds on both arms.
    for sid in ("s00000", "s00003"):
        head_a = json.loads((tmp_path / "a" / "sessions" / f"{sid}.jsonl").read_text().splitlines()[0])
        head_b = json.loads((tmp_path / "b" / "sessions" / f"{sid}.jsonl").read_text().splitlines()[0])
        assert head_a["seed"] == head_b["seed"] and head_a["intent"] == head_b["intent"]
        assert head_a["site"] == store_a.url + "/" and head_b["site"] == store_b.url + "/"
    saved = json.loads((tmp_path / "abtest.json").read_text())
    assert saved["conversion_diff"]["method"] == "newcombe"
    report = (tmp_path / "report.html").read_text()
    assert "No difference in conversion detected" in report and "Paired differences B &minus; A" in report
    run_a = json.loads((tmp_path / "a" / "run.json").read_text())
    assert run_a["abtest"]["arm"] == "a" and run_a["config"]["site"] == store_a.url + "/"

    text = format_abtest(result)
    assert "conversion" in text and "75.0% [30.1, 95.4]" in text and "-75.0%" in text and "Newcombe" in text
    # The statistics half alone gives the same answer from the directories.
    again = compare_runs(tmp_path / "a", tmp_path / "b")
    assert again.conversion_diff == result.conversion_diff


def test_default_items_come_from_the_catalog(store_db):
    items = featured_items(5, 0, store_db)
    assert len(items) == 5 and len({i.persona.persona_id for i in items}) == 5
    assert all(i.intent.target_asin for i in items)
    assert featured_items(5, 0, store_db) == items


def test_abtest_command(store_a, store_b, store_db, tmp_path, monkeypatch, capsys):
    import agent.cli.abtest

    made: list[str] = []
    monkeypatch.setattr(agent.cli.abtest, "make_policy", lambda name, **kw: made.append(name) or BuyFirstPolicy())
    abtest_command(a=store_a.url + "/", b=store_b.url + "/", sessions=3, policy="buy-first", concurrency=2,
                   backend="http", seed=1, out=tmp_path, catalog=store_db, max_steps=6)
    out = capsys.readouterr().out
    assert "conversion (purchase rate)" in out and "abtest.json" in out
    assert made == ["buy-first", "buy-first"]  # a fresh policy per arm
    assert json.loads((tmp_path / "abtest.json").read_text())["a"]["sessions"] == 3


def test_abtest_command_bad_input(tmp_path, capsys):
    from agent.policy.persona import save_persona_intents

    good = tmp_path / "good.jsonl"
    save_persona_intents(good, _items()[:1])
    (tmp_path / "bad.jsonl").write_text("{}\n")
    cases = [
        {"policy": "scripted", "catalog": tmp_path / "missing.db"},  # no catalog to sample intents from
        {"policy": "scripted", "personas": tmp_path / "bad.jsonl"},  # a bad persona file
        {"policy": "no-such-policy", "personas": good},  # an unknown policy
    ]
    for case in cases:
        with pytest.raises(typer.Exit) as exc:
            abtest_command(a="http://x/", b="http://y/", sessions=1, backend="http", out=tmp_path / "out", **case)
        assert exc.value.exit_code == 2
    err = capsys.readouterr().err
    assert err.count("ERROR") == 3 and "no-such-policy" in err and not (tmp_path / "out").exists()



# ------------------------------------------------------------------------------------------------ abtest --products
TEAPOTS = [
    {"asin": "T1", "title": "Zanzibar Porcelain Teapot", "brand": "Kilnware", "department": "Home", "price_min": 24.0,
     "options": {"color": ["White", "Blue"]}},
    {"asin": "T2", "title": "Quokka Cast Iron Kettle", "brand": "Ironside", "department": "Home", "price_min": 39.5,
     "options": {}},
    {"asin": "T3", "title": "Marimba Bamboo Tea Whisk", "brand": "Kilnware", "department": "Home", "price_min": 8.0,
     "options": {"size": ["S", "M"]}},
]


def test_abtest_command_draws_intents_from_products(store_a, store_b, tmp_path, monkeypatch):
    """--products FILE: both arms' shoppers want the export's products (the intents `simulate --products` draws)."""
    import agent.cli.abtest
    from agent.runtime.population import sample_from_products
    from agent.runtime.products import load_products
    from agent.runtime.trace import iter_traces

    export = tmp_path / "products.jsonl"
    export.write_text("".join(json.dumps(p) + "\n" for p in TEAPOTS))
    monkeypatch.setattr(agent.cli.abtest, "make_policy", lambda name, **kw: BuyFirstPolicy())
    abtest_command(a=store_a.url + "/", b=store_b.url + "/", sessions=4, policy="buy-first", concurrency=2,
                   backend="http", seed=5, out=tmp_path / "ab", products=str(export), max_steps=4)
    want = [item.intent.model_dump(mode="json") for item in sample_from_products(load_products(export), 4, 5)]
    title_words = {w.lower() for p in TEAPOTS for w in p["title"].split()}
    for arm in ("a", "b"):
        intents = [t.header.intent for t in iter_traces(tmp_path / "ab" / arm)]
        assert intents == want, arm
        assert {i["target_asin"] for i in intents} <= {"T1", "T2", "T3"}
        assert all(set(i["keywords"]) <= title_words | {"home"} for i in intents), intents
        assert any("quokka cast iron kettle" in i["text"].lower() for i in intents), intents


def _abtest_cli(*argv: str):
    from typer.testing import CliRunner

    from agent.cli.root import app

    return CliRunner().invoke(app, ["abtest", "--a", "http://127.0.0.1:1/", "--b", "http://127.0.0.1:2/",
                                    "--policy", "scripted", "--backend", "http", *argv], env={"COLUMNS": "400"})


def _flat(text: str) -> str:
    """The output without the error box's borders and line breaks."""
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", text))


def test_abtest_with_a_bad_export_is_a_usage_error(tmp_path):
    result = _abtest_cli("--products", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "ab"))
    assert result.exit_code == 2, result.output
    assert "Expect a JSONL product export at" in _flat(result.output), result.output
    assert not (tmp_path / "ab").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["--personas", "p.jsonl"], "Expect one of --personas FILE.jsonl or --products FILE|URL, actually: both"),
    (["--catalog", "c.db"], "Expect one of --products FILE|URL or --catalog DB to draw intents from with --a and --b "
                            "URLs, actually: both"),
])
def test_abtest_refuses_two_sources_of_intents(tmp_path, argv, message):
    result = _abtest_cli("--products", "x.jsonl", *argv, "--out", str(tmp_path / "ab"))
    assert result.exit_code == 2 and message in _flat(result.output), result.output


# ---------------------------------------------------------------------------------------------------------- paired
def test_abtest_pairs_the_sessions(store_a, store_b, tmp_path):
    """The BuyFirst shopper buys on a in 3 of 4 sessions and never on b: 3 discordant pairs, all A-only."""
    config = RunConfig(site="unused", backend="http", concurrency=2, seed=11, max_steps=8)
    result = abtest(store_a.url + "/", store_b.url + "/", BuyFirstPolicy, _items(), config, tmp_path)
    paired = result.paired
    assert paired is not None and paired.pairs == 4
    assert paired.conversion_table == {"both": 0, "a_only": 3, "b_only": 0, "neither": 1}
    assert paired.conversion.p_value == 0.25 and not paired.conversion.detected  # 2 · (1/2)^3: too few pairs
    assert paired.conversion.diff.estimate == pytest.approx(-0.75)
    assert paired.conversion.diff.method == "newcombe-paired"
    assert paired.conversion.unpaired_diff == result.conversion_diff
    # Connor: (1.96·sqrt(.75) + 0.8416·sqrt(.75 - .5625))² / .5625 = 7.56 -> 8 pairs
    assert paired.conversion.sessions_needed == 8
    # Steps per session: 4 on a where it buys (search, open, buy now, place order), 3 on b (search, open, leave);
    # the session that finds nothing ends after 2 steps on both.
    assert paired.steps.diff.estimate == pytest.approx(-0.75) and paired.steps.diff.method == "paired-t"
    assert paired.searches.diff.estimate == 0.0 and paired.searches.sessions_needed is None
    assert paired.seconds.diff.estimate is not None
    text = format_abtest(result)
    assert "Paired comparison (4 pairs" in text and "McNemar" in text and "A only 3" in text
    saved = json.loads((tmp_path / "abtest.json").read_text())
    assert saved["paired"]["conversion"]["p_value"] == 0.25


def test_abtest_on_embedded_variants(store_db, tmp_path, monkeypatch, capsys):
    """--variant-a/--variant-b serve the variants in-process; the shopper meets unlabeled buttons only on the page."""
    import agent.cli.abtest
    from agent.policy.persona import save_persona_intents

    monkeypatch.setattr(agent.cli.abtest, "make_policy", lambda name, **kw: BuyFirstPolicy())
    save_persona_intents(tmp_path / "people.jsonl", _items())
    abtest_command(variant_a=VariantName("a"), variant_b=VariantName("unlabeled-buttons"), sessions=4,
                   policy="buy-first", concurrency=2, backend="http", seed=11, out=tmp_path / "ab", catalog=store_db,
                   personas=tmp_path / "people.jsonl", max_steps=8)
    tmp_path = tmp_path / "ab"
    out = capsys.readouterr().out
    saved = json.loads((tmp_path / "abtest.json").read_text())
    assert (saved["a"]["variant"], saved["b"]["variant"]) == ("a", "unlabeled-buttons")
    assert saved["a"]["purchases"] > 0 and saved["b"]["purchases"] == 0, "no named Buy Now button on b"
    assert "unlabeled-buttons" in out and "Paired comparison" in out
    assert "A/B test \u00b7 a vs unlabeled-buttons" in (tmp_path / "report.html").read_text()
    assert "report.html" in out
    for arm in ("a", "b"):  # the shoppers were given a URL, never the variant's name
        run = (tmp_path / arm / "run.json").read_text()
        assert "unlabeled" not in run and saved[arm]["site"].startswith("http://127.0.0.1:")


def test_abtest_command_wants_one_site_per_arm(tmp_path):
    cases = [({"a": "http://x/", "variant_a": VariantName("a"), "b": "http://y/"}, "both"),
             ({"b": "http://y/"}, "neither")]
    for case, word in cases:
        with pytest.raises(typer.BadParameter, match=f"Expect exactly one of --a URL or --variant-a NAME, actually: "
                                                      f"{word}"):
            abtest_command(sessions=1, backend="http", out=tmp_path / "out", **case)


def test_abtest_help_lists_every_variant():
    from typer.testing import CliRunner

    from agent.cli.root import app

    out = CliRunner().invoke(app, ["abtest", "--help"], env={"COLUMNS": "250"}).output
    for name in VARIANT_NAMES:
        assert name in out, name
    simulate_help = CliRunner().invoke(app, ["simulate", "--help"], env={"COLUMNS": "250"}).output
    assert "price-shock" in simulate_help


def test_aa_run_shows_no_effect(store_a, store_db, tmp_path):
    """A real A/A test: the scripted shopper on two servers of variant a. It is deterministic per seed, so every pair
    ends the same way: no discordant pair, McNemar p = 1, and every paired interval covers 0."""
    from agent.policy.scripted import ScriptedPolicy
    from sites.store.server import StoreServer

    items = featured_items(8, 0, store_db)
    config = RunConfig(site="unused", backend="http", concurrency=4, seed=3, max_steps=30)
    with StoreServer(store_db, variant="a") as twin:
        result = abtest(store_a.url + "/", twin.url + "/", ScriptedPolicy, items, config, tmp_path)
    paired = result.paired
    assert paired is not None and paired.pairs == 8
    assert paired.conversion_table["a_only"] == paired.conversion_table["b_only"] == 0
    assert paired.conversion.p_value == 1.0 and not paired.conversion.detected
    for metric in (paired.conversion, paired.steps, paired.searches):
        assert metric.diff.estimate == 0 and not metric.detected
    assert result.conversion_diff.low <= 0 <= result.conversion_diff.high
