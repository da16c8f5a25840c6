"""training.opera: OPeRA's tables -> our traces -> the same datasets as simulated runs."""

from __future__ import annotations

import csv
import doctest
import json
from pathlib import Path

import pytest
from datafix import OPERA_FIXTURE
from typer.testing import CliRunner

from agent.policy.persona import Persona
from agent.policy.schema import ShopperStep, parse_step
from agent.runtime.trace import Trace, iter_traces
from training.data import SPLITS, DataError, load_meta, load_split
from training.opera import import_opera, map_action, persona_from_survey, read_opera_tables, write_traces


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("opera-data")
    import_opera(OPERA_FIXTURE, out, split=(1.0, 0.0, 0.0))
    return out


@pytest.fixture(scope="module")
def traces(imported: Path) -> dict[str, Trace]:
    return {t.header.model_extra["source_session_id"]: t for t in iter_traces(imported / "opera")}


def _actions(trace: Trace) -> list[dict | None]:
    return [s.action_dict for s in trace.steps]


def test_a_purchase_session_is_ordered_and_mapped(traces: dict[str, Trace]) -> None:
    t = traces["sess_a"]
    assert _actions(t) == [  # rows were out of order; the scroll (action 2) has no counterpart
        {"type": "type_and_submit", "name": "search_input", "text": "wireless earbuds"},
        {"type": "click", "name": "search_results.soundcore_life_p2_wireless_earbuds.product_title"},
        {"type": "click", "name": "product_options.color.button_list.black"},
        {"type": "click", "name": "add_to_cart.buy_now"},
    ]
    assert [s.rationale for s in t.steps] == ["I need new earbuds for the gym.",
                                              "The Soundcore ones have good reviews and fit my budget.", None,
                                              "Black is fine, I'll buy it now."]
    assert t.outcome == "purchase" and t.header.site == "https://www.amazon.com"
    assert t.steps[0].url == "https://www.amazon.com/" and t.steps[0].next_url == t.steps[1].url
    assert t.steps[1].title == "Amazon.com : wireless earbuds"  # from page_meta
    assert 'name="search_input"' in t.steps[0].observation
    assert t.steps[3].model_extra["opera"]["click_type"] == "purchase"


def test_a_session_without_rationales_ends_in_terminate(traces: dict[str, Trace]) -> None:
    t = traces["sess_b"]
    assert [a["type"] for a in _actions(t)] == ["click", "type_and_submit", "terminate"]  # the unnamed click: skipped
    assert all(s.rationale is None for s in t.steps) and t.outcome == "terminate"


def test_session_ids_become_safe_file_names(traces: dict[str, Trace]) -> None:
    t = traces["u3/2024-05-03 09:00"]
    assert t.session_id.startswith("u3_2024-05-03_09_00-") and "/" not in t.session_id
    assert t.header.model_extra["user_id"] == "u3" and t.header.model_extra["survey"] is None


def test_personas_come_from_the_survey(traces: dict[str, Trace]) -> None:
    u1 = Persona.model_validate(traces["sess_a"].header.persona)
    # Likert 1-5: price 5 -> 1.0, brand loyalty 2 -> 0.25, reviews 4 -> 0.75, impulse 1 -> decisiveness 0.0.
    assert (u1.budget_sensitivity, u1.brand_loyalty, u1.review_reading, u1.decisiveness, u1.exploration,
            u1.patience) == (1.0, 0.25, 0.75, 0.0, 0.5, 0.5)
    assert u1.preferred_brands == ("Anker", "Sony") and u1.persona_id == "opera-u1"
    assert "Graduate student" in u1.description and '"price_sensitivity": 5' in u1.description
    assert traces["sess_a"].header.model_extra["survey"]["shopping_frequency"] == "Weekly"  # the raw survey, whole
    u2 = Persona.model_validate(traces["sess_b"].header.persona)
    assert (u2.review_reading, u2.brand_loyalty, u2.decisiveness) == (0.25, 1.0, 0.75)  # words on a 5-point scale
    u3 = Persona.model_validate(traces["u3/2024-05-03 09:00"].header.persona)
    assert u3.traits() == dict.fromkeys(u3.traits(), 0.5) and "Survey: none" in u3.description


def test_the_datasets_are_built_from_the_traces(imported: Path) -> None:
    meta = load_meta(imported)
    assert meta["opera"]["sessions"] == 3 and meta["opera"]["steps"] == 9
    assert meta["opera"]["skipped_scroll"] == 1 and meta["opera"]["skipped_click"] == 1
    assert meta["stats"]["sft_template_rationales"] == 4
    rl = load_split(imported, "rl", "train")
    assert len(rl) == 9 and sorted(set(rl["gold_type"])) == ["click", "terminate", "type_and_submit"]
    assert rl.filter(lambda r: r["session_id"] == "opera:sess_b")["gold_rationale"] == ["", "", ""]
    assert all(sid.startswith("opera:") for sid in rl["session_id"])
    sft = load_split(imported, "sft", "train")
    assert len(sft) == 3
    for row in sft:
        steps = [parse_step(m["content"]) for m in row["messages"] if m["role"] == "assistant"]
        assert all(isinstance(s, ShopperStep) for s in steps)  # every assistant turn is a valid step
    b = sft.filter(lambda r: r["session_id"] == "opera:sess_b")[0]["messages"]
    assert parse_step(b[-1]["content"]).rationale == "Nothing here is what I want, so I'll leave."
    assert "A real Amazon shopper (OPeRA user u2)" in b[1]["content"]
    assert [len(load_split(imported, "rl", s)) for s in SPLITS] == [9, 0, 0]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_parquet_and_json_tables_are_detected_by_their_columns(tmp_path: Path, traces: dict[str, Trace]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with open(OPERA_FIXTURE / "action.csv", newline="") as f:
        actions = list(csv.DictReader(f))
    shards = tmp_path / "raw" / "data" / "action"
    shards.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(actions[:5]), shards / "train-00000.parquet")
    pq.write_table(pa.Table.from_pylist(actions[5:]), shards / "train-00001.parquet")
    with open(OPERA_FIXTURE / "session.csv", newline="") as f:
        _write_jsonl(tmp_path / "raw" / "sessions.jsonl", list(csv.DictReader(f)))
    users = [json.loads(line) for line in (OPERA_FIXTURE / "user.jsonl").read_text().splitlines()]
    (tmp_path / "raw" / "people.json").write_text(json.dumps({"rows": users}))
    (tmp_path / "raw" / "README.json").write_text(json.dumps({"name": "not a table"}))

    tables = read_opera_tables(tmp_path / "raw")
    assert {k: len(v) for k, v in tables.items()} == {"action": 11, "session": 3, "user": 2}
    write_traces(tables, tmp_path / "run")
    again = {t.header.model_extra["source_session_id"]: t for t in iter_traces(tmp_path / "run")}
    assert {k: _actions(t) for k, t in again.items()} == {k: _actions(t) for k, t in traces.items()}
    assert again["sess_a"].header.persona == traces["sess_a"].header.persona


def test_missing_or_empty_directories_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        import_opera(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "users.csv").write_text("user_id,survey\nu1,{}\n")
    with pytest.raises(DataError, match="action table"):
        import_opera(tmp_path, tmp_path / "out")
    (tmp_path / "actions.csv").write_text("session_id,action_type,semantic_id\ns1,scroll,\n")
    with pytest.raises(DataError, match="at least one click"):
        import_opera(tmp_path, tmp_path / "out")


@pytest.mark.parametrize(("row", "expected"), [
    ({"action_type": "input", "semantic_id": "search_input", "input_text": "tea"},
     {"type": "type_and_submit", "name": "search_input", "text": "tea"}),
    ({"action_type": "click", "semantic_id": " nav_bar.homepage ", "click_type": "nav"},
     {"type": "click", "name": "nav_bar.homepage"}),
    ({"action_type": "terminate", "semantic_id": None}, {"type": "terminate"}),
    ({"action_type": "TERMINATE"}, {"type": "terminate"}),
    ({"action_type": "click", "semantic_id": ""}, None),
    ({"action_type": "input", "semantic_id": float("nan")}, None),
    ({"action_type": "tab_switch", "semantic_id": "x"}, None),
])
def test_map_action(row: dict, expected: dict | None) -> None:
    assert map_action(row) == expected


def test_persona_from_survey_edge_cases() -> None:
    long = persona_from_survey("u9", {"bio": "x" * 5000, "budget": "Very important", "name": "Ana"})
    assert len(long.description) == 1000 and long.description.endswith("...") and long.name == "Ana"
    assert long.budget_sensitivity == 1.0
    assert persona_from_survey("u9", "not json").description.endswith('Survey: {"survey": "not json"}')
    seven = persona_from_survey("u9", '{"price_sensitivity": 7, "review_frequency": 4}')  # a 7-point scale
    assert (seven.budget_sensitivity, seven.review_reading) == (1.0, 0.5)
    brands = persona_from_survey("u9", {"preferred_brands": "Nike; Adidas, Nike"})
    assert brands.preferred_brands == ("Nike", "Adidas")


def test_cli_import_opera(tmp_path: Path) -> None:
    from agent.cli.root import app

    result = CliRunner().invoke(app, ["data", "import-opera", str(OPERA_FIXTURE), "--out", str(tmp_path / "d"),
                                      "--intent", "Buy a gift."])
    assert result.exit_code == 0, result.output
    assert "OPeRA: 3 sessions, 9 steps (5 with a rationale)" in result.output
    rl = load_split(tmp_path / "d", "rl", "train")
    assert {json.loads(i)["text"] for i in rl["intent"]} == {"Buy a gift."}
    result = CliRunner().invoke(app, ["data", "import-opera", str(tmp_path / "nope"), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_doctests() -> None:
    import training.opera

    assert doctest.testmod(training.opera).failed == 0
