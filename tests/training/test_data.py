"""training.data: traces -> SFT and RL datasets, split by session."""

from __future__ import annotations

import doctest
import inspect
import json
import shutil
from pathlib import Path

import pytest
from datafix import BUDGET, cached_data_dir, cached_run_dir
from tracefix import step, write_session
from typer.testing import CliRunner

from agent.policy.prompt import approx_tokens
from agent.policy.schema import ShopperStep, format_step, parse_step
from agent.runtime.trace import iter_traces
from envs.actions import parse_action
from training.data import (
    SPLITS,
    DataConfig,
    DataError,
    assign_splits,
    build_datasets,
    load_meta,
    load_split,
    parse_split,
    split_states,
    template_rationale,
)


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory, store_db: Path, store_url: str) -> Path:
    return cached_run_dir(tmp_path_factory, store_db, store_url)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory, store_db: Path, store_url: str) -> Path:
    return cached_data_dir(tmp_path_factory, store_db, store_url)


def _tokens(messages: list[dict[str, str]]) -> int:
    return sum(approx_tokens(m["content"]) for m in messages)


# --------------------------------------------------------------------------------------------------------------------
# The scripted run's datasets


def test_layout_and_columns(data_dir: Path) -> None:
    for kind, columns in (("sft", {"messages", "session_id"}),
                          ("rl", {"prompt", "prompt_latest", "gold_action", "gold_type", "gold_rationale",
                                  "session_id", "step", "url", "persona", "intent", "site"})):
        for split in SPLITS:
            assert set(load_split(data_dir, kind, split).column_names) == columns
    meta = load_meta(data_dir)
    assert meta["split"] == {"train": 0.7, "validation": 0.15, "test": 0.15} and meta["seed"] == 0
    assert meta["prompt_budget"]["max_context_tokens"] == BUDGET
    assert [s["sessions"] for s in meta["sources"]] == [24]
    for split in SPLITS:
        assert meta["counts"][split]["rl_rows"] == len(load_split(data_dir, "rl", split))
        assert meta["counts"][split]["sft_rows"] == len(load_split(data_dir, "sft", split))


def test_splits_are_by_session_and_shared_by_sft_and_rl(data_dir: Path, run_dir: Path) -> None:
    splits = json.loads((data_dir / "splits.json").read_text())
    seen: dict[str, str] = {}
    for split in SPLITS:
        sft_ids = set(load_split(data_dir, "sft", split)["session_id"])
        rl_ids = set(load_split(data_dir, "rl", split)["session_id"])
        assert sft_ids == rl_ids == set(splits[split])
        for sid in rl_ids:
            assert sid not in seen, f"{sid} is in {seen.get(sid)} and {split}"
            seen[sid] = split
    assert len(seen) == 24 and all(sid.startswith("run:s000") for sid in seen)
    assert [len(splits[s]) for s in SPLITS] == [17, 4, 3]  # 24 x 0.7/0.15/0.15, largest remainders


def test_rl_prompts_hold_no_previous_rationale(data_dir: Path) -> None:
    rows = load_split(data_dir, "rl", "train")
    rationales: dict[str, list[str]] = {}
    for row in rows:
        prompt = row["prompt"]
        assert [m["role"] for m in prompt[:2]] == ["system", "user"] and prompt[-1]["role"] == "user"
        assert [m["role"] for m in row["prompt_latest"]] == ["system", "user"]
        for message in prompt:
            if message["role"] == "assistant":
                assert list(json.loads(message["content"])) == ["action"]
        text = "\n".join(m["content"] for m in prompt)
        for earlier in rationales.get(row["session_id"], []):
            assert earlier not in text
        rationales.setdefault(row["session_id"], []).append(row["gold_rationale"])
    assert sum(len(r) for r in rationales.values()) == len(rows)
    assert all(r for rs in rationales.values() for r in rs)  # the scripted shopper always says why


def test_prompts_fit_the_budget(data_dir: Path) -> None:
    meta = load_meta(data_dir)
    dropped = 0
    for split in SPLITS:
        for row in load_split(data_dir, "rl", split):
            assert _tokens(row["prompt"]) <= BUDGET and _tokens(row["prompt_latest"]) <= BUDGET
            dropped += "[page html omitted:" in "".join(m["content"] for m in row["prompt"])
        for row in load_split(data_dir, "sft", split):
            assert _tokens(row["messages"]) <= BUDGET
    assert dropped > 0 and dropped == meta["prompt_budget"]["rl_prompt"]["with_dropped"]
    assert meta["prompt_budget"]["rl_prompt"]["over_budget"] == 0


def test_gold_actions_parse_and_match_the_traces(data_dir: Path) -> None:
    for split in SPLITS:
        rows = load_split(data_dir, "rl", split)
        states = {(s.session_id, s.step): s for s in split_states(data_dir, split)}
        assert len(states) == len(rows)
        for row in rows:
            action = parse_action(row["gold_action"])
            assert action.type == row["gold_type"]
            state = states[(row["session_id"], row["step"])]
            assert action == state.action and row["url"] == state.url
            assert row["gold_rationale"] == state.rationale
            assert json.loads(row["persona"])["persona_id"] and json.loads(row["intent"])["text"]
            assert row["site"].startswith("http://127.0.0.1:")


def test_sft_chats_are_whole_sessions_of_valid_steps(data_dir: Path, run_dir: Path) -> None:
    traces = {f"run:{t.session_id}": t for t in iter_traces(run_dir)}
    for row in load_split(data_dir, "sft", "train"):
        messages = row["messages"]
        assert messages[0]["role"] == "system"
        assert [m["role"] for m in messages[1:]] == ["user", "assistant"] * ((len(messages) - 1) // 2)
        assistant = [m["content"] for m in messages if m["role"] == "assistant"]
        trace = traces[row["session_id"]]
        assert len(assistant) == len([s for s in trace.steps if s.action is not None])
        for content, record in zip(assistant, trace.steps, strict=True):
            parsed = parse_step(content)
            assert isinstance(parsed, ShopperStep) and format_step(parsed) == content
            assert parsed.rationale == record.rationale and parsed.action == parse_action(record.action)


def test_the_split_is_deterministic_and_seeded() -> None:
    ids = [f"s{i}" for i in range(50)]
    a, b = assign_splits(ids, (0.8, 0.1, 0.1), 0), assign_splits(list(reversed(ids)), (0.8, 0.1, 0.1), 0)
    assert a == b and [len(a[s]) for s in SPLITS] == [40, 5, 5]
    assert assign_splits(ids, (0.8, 0.1, 0.1), 1) != a
    assert [len(v) for v in assign_splits(ids[:3], (0.8, 0.1, 0.1), 0).values()] == [1, 1, 1]
    assert [len(v) for v in assign_splits(ids[:10], (1.0, 0.0, 0.0), 0).values()] == [10, 0, 0]


def test_two_runs_with_the_same_session_ids_do_not_collide(run_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "run"  # the same directory name, too
    (other / "sessions").mkdir(parents=True)
    for path in sorted((run_dir / "sessions").glob("*.jsonl"))[:3]:
        shutil.copy(path, other / "sessions" / path.name)
    meta = build_datasets([run_dir, other], tmp_path / "data", DataConfig(max_context_tokens=BUDGET))
    assert [s["label"] for s in meta["sources"]] == ["run", "run-2"]
    ids = [sid for split in SPLITS for sid in load_split(tmp_path / "data", "sft", split)["session_id"]]
    assert len(ids) == len(set(ids)) == 27 and sum(sid.startswith("run-2:") for sid in ids) == 3


# --------------------------------------------------------------------------------------------------------------------
# Hand-written traces: missing rationales, failed and unparseable steps


SEARCH = {"type": "type_and_submit", "name": "search.q_input", "text": "tea"}
OPEN = {"type": "click", "name": "results.green_tea.title"}


def _hand_run(root: Path) -> Path:
    write_session(root, "s00000", [
        step(1, "/", SEARCH, next_url="/search?q=tea", rationale=None),
        step(2, "/search?q=tea", None, valid=False, error_kind="parse_error", rationale=None),
        step(3, "/search?q=tea", {"type": "click", "name": "nope"}, valid=False, error_kind="unknown_name",
             rationale="I'll try this."),
        step(4, "/search?q=tea", OPEN, next_url="/product/B1", rationale=""),
        step(5, "/product/B1", {"type": "terminate"}, rationale="Too pricey."),
    ], "terminate")
    write_session(root, "s00001", [step(1, "/", None, valid=False, error_kind="parse_error")], "error")
    return root


def test_missing_rationales_failed_and_unparsed_steps(tmp_path: Path) -> None:
    run = _hand_run(tmp_path / "hand")
    meta = build_datasets([run], tmp_path / "data", DataConfig(split=(1.0, 0.0, 0.0)))
    assert meta["stats"]["sessions_without_actions"] == 1  # s00001 never acted
    assert meta["stats"]["sft_template_rationales"] == 2 and meta["stats"]["rl_invalid_targets_skipped"] == 1
    rl = load_split(tmp_path / "data", "rl", "train")
    assert rl["step"] == [1, 4, 5] and rl["gold_rationale"] == ["", "", "Too pricey."]
    assert "Your last action failed: failed: unknown_name" in rl[1]["prompt"][-1]["content"]
    assert '"name": "nope"' in "".join(m["content"] for m in rl[1]["prompt"])  # still in the history
    sft = load_split(tmp_path / "data", "sft", "train")
    assistant = [parse_step(m["content"]) for m in sft[0]["messages"] if m["role"] == "assistant"]
    assert [a.rationale for a in assistant] == ['I\'ll search for "tea".', "I'll try this.", "I'll click title.",
                                                "Too pricey."]
    skipped = build_datasets([run], tmp_path / "skip", DataConfig(split=(1.0, 0.0, 0.0), missing_rationale="skip"))
    assert skipped["counts"]["train"]["sft_rows"] == 0 and skipped["counts"]["train"]["rl_rows"] == 3


def test_template_rationale_reads_the_element_text() -> None:
    page = '<ul><li><a name="results.green_tea.title">Green Tea &amp; Honey</a></li></ul>'
    assert template_rationale(OPEN, page) == 'I\'ll click "Green Tea & Honey".'
    assert template_rationale(OPEN) == "I'll click title."
    assert template_rationale({"type": "type_and_submit", "name": "q", "text": " "}) == "I'll submit this."


# --------------------------------------------------------------------------------------------------------------------
# Bad input


def test_bad_input_raises_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        build_datasets([tmp_path / "missing"], tmp_path / "out")
    (tmp_path / "nosessions").mkdir()
    with pytest.raises(DataError, match="no sessions/"):
        build_datasets([tmp_path / "nosessions"], tmp_path / "out")
    (tmp_path / "empty" / "sessions").mkdir(parents=True)
    with pytest.raises(DataError, match="no readable"):
        build_datasets([tmp_path / "empty"], tmp_path / "out")
    with pytest.raises(DataError, match="at least one run"):
        build_datasets([], tmp_path / "out")
    with pytest.raises(DataError, match="sum to 1"):
        build_datasets([tmp_path / "empty"], tmp_path / "out", DataConfig(split=(0.5, 0.2, 0.2)))
    with pytest.raises(DataError, match="meta.json"):
        load_split(tmp_path, "rl", "train")


def test_load_split_rejects_unknown_kinds_and_splits(data_dir: Path) -> None:
    with pytest.raises(DataError, match="kind"):
        load_split(data_dir, "dpo", "train")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="split one of"):
        load_split(data_dir, "rl", "dev")


@pytest.mark.parametrize(("text", "expected"), [
    ("0.8/0.1/0.1", (0.8, 0.1, 0.1)), ("80/10/10", (0.8, 0.1, 0.1)), ("0.9,0.1,0", (0.9, 0.1, 0.0)),
])
def test_parse_split(text: str, expected: tuple[float, float, float]) -> None:
    assert parse_split(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["0.5/0.5", "a/b/c", "0.8/0.3/0.1", "0/0.5/0.5", "-0.2/0.6/0.6", "nan/0/1"])
def test_parse_split_rejects(text: str) -> None:
    with pytest.raises(DataError):
        parse_split(text)


def test_cli_data_build(run_dir: Path, tmp_path: Path) -> None:
    from agent.cli.root import app
    from training.cli.data import data_build

    assert inspect.signature(data_build).parameters["max_context_tokens"].default is None  # DataConfig's 3584
    runner = CliRunner()
    result = runner.invoke(app, ["data", "build", str(run_dir), "--out", str(tmp_path / "d"), "--split",
                                 "0.5/0.25/0.25", "--max-context-tokens", str(BUDGET)])
    assert result.exit_code == 0, result.output
    assert "validation" in result.output and load_meta(tmp_path / "d")["split"]["test"] == 0.25
    for args, message in (
        ([str(tmp_path / "nope"), "--out", str(tmp_path / "x")], "no such run directory"),
        ([str(run_dir), "--out", str(tmp_path / "x"), "--split", "1/2"], "Expect a split"),
        ([str(tmp_path), "--out", str(tmp_path / "x")], "no sessions/"),
    ):
        result = runner.invoke(app, ["data", "build", *args])
        assert result.exit_code == 2 and message in result.output, result.output
        assert "Traceback" not in result.output


def test_doctests() -> None:
    import training.data

    assert doctest.testmod(training.data).failed == 0


def test_a_budget_that_leaves_no_room_for_the_page_is_flagged(run_dir: Path, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="training.data"):
        meta = build_datasets([run_dir], tmp_path / "blind", DataConfig(max_context_tokens=400))
    assert meta["prompt_budget"]["rl_prompt_mean_current_shown"] < 0.1
    assert "leaves little of the page" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="training.data"):
        roomy = build_datasets([run_dir], tmp_path / "roomy", DataConfig(max_context_tokens=20_000))
    assert roomy["prompt_budget"]["rl_prompt_mean_current_shown"] > 0.9
    assert "leaves little of the page" not in caplog.text


def test_rl_rationales_keep_rl_prompts_in_the_sft_layout_and_the_model_remembers(run_dir: Path, tmp_path: Path) -> None:
    from agent.policy.prompt import compact_system_prompt, load_prompt_config
    from training.data import DataConfig
    from training.run_setup import save_inference_prompt

    out = tmp_path / "with-rationales"
    build_datasets([run_dir], out, config=DataConfig(max_context_tokens=20_000, rl_rationales=True))
    rows = load_split(out, "rl", "train")
    later = [row for row in rows if row["step"] > 1]
    assert later
    for row in later:
        turns = [json.loads(m["content"]) for m in row["prompt"] if m["role"] == "assistant"]
        assert turns and all(list(t) == ["rationale", "action"] and t["rationale"] for t in turns)
    assert rows[0]["prompt"][0]["content"] == compact_system_prompt()
    assert load_meta(out)["config"]["rl_rationales"] is True
    # a GRPO model (include_rationales=None: as its RL data) is then prompted with rationales at inference
    save_inference_prompt(tmp_path / "model", out, include_rationales=None, history_pages="all")
    prompt = load_prompt_config(tmp_path / "model")
    assert prompt.include_rationales and prompt.system == "compact" and prompt.max_context_tokens == 20_000
    save_inference_prompt(tmp_path / "paper", tmp_path / "blind-none", include_rationales=None, history_pages="all",
                          fallback_budget=512)
    assert not load_prompt_config(tmp_path / "paper").include_rationales  # the paper's default


def test_step_rows_are_the_inference_prompt_with_that_step_as_completion(run_dir: Path, tmp_path: Path) -> None:
    from agent.policy.prompt import PromptConfig, build_messages
    from training.data import session_states
    from training.sft import sft_columns

    out = tmp_path / "steps"
    meta = build_datasets([run_dir], out, config=DataConfig(max_context_tokens=BUDGET, sft_rows="steps"))
    assert meta["config"]["sft_rows"] == "steps"
    traces = {f"run:{t.session_id}": t for t in iter_traces(run_dir)}
    rows = load_split(out, "sft", "train")
    assert sft_columns(rows.column_names) == ["prompt", "completion"]
    by_session: dict[str, list[dict]] = {}
    for row in rows:
        by_session.setdefault(row["session_id"], []).append(row)
    assert meta["counts"]["train"]["sft_rows"] == len(rows) > meta["counts"]["train"]["sessions"]
    skipped = meta["stats"].get("sft_steps_over_budget_skipped", 0)
    config = PromptConfig(max_context_tokens=BUDGET, include_rationales=True)
    for sid, session_rows in by_session.items():
        states = session_states(traces[sid], sid)
        assert [r["step"] for r in session_rows] == sorted(r["step"] for r in session_rows)
        if not skipped:
            assert len(session_rows) == len(states)
        for row in session_rows:
            k = next(i for i, s in enumerate(states) if s.step == row["step"])
            state = states[k]
            # exactly what the policy is prompted with at that step, the page within the budget
            expected = build_messages(state.persona_intent, state.history, state.url, state.observation, config)
            assert row["prompt"] == expected.messages
            assert state.observation[:200] in row["prompt"][-1]["content"]
            [completion] = row["completion"]
            parsed = parse_step(completion["content"])
            assert completion["role"] == "assistant" and isinstance(parsed, ShopperStep)
            assert parsed.action == state.action and format_step(parsed) == completion["content"]
            assert parsed.rationale == (state.rationale or template_rationale(state.action, state.observation))


def test_sft_rows_must_be_sessions_or_steps() -> None:
    with pytest.raises(DataError, match="sft_rows"):
        DataConfig(sft_rows="pages")  # type: ignore[arg-type]


def test_no_persona_data_shows_pages_and_actions_only_and_the_model_remembers(run_dir: Path, tmp_path: Path) -> None:
    """`data build --no-persona`: no persona or intent block in any SFT or RL prompt (the paper's context), the
    columns still say who shopped, meta records it, and a model trained on it is prompted the same way."""
    from agent.cli.root import app
    from agent.policy.prompt import load_prompt_config
    from training.run_setup import save_inference_prompt

    runner = CliRunner()
    for name, flag in (("with", "--persona"), ("without", "--no-persona")):
        result = runner.invoke(app, ["data", "build", str(run_dir), "--out", str(tmp_path / name),
                                     "--max-context-tokens", str(BUDGET), flag])
        assert result.exit_code == 0, result.output

    def texts(out: Path) -> tuple[list[str], list[dict]]:
        rl = load_split(out, "rl", "train")
        sft = load_split(out, "sft", "train")
        prompts = [m["content"] for row in rl for m in [*row["prompt"], *row["prompt_latest"]]]
        prompts += [m["content"] for row in sft for m in row["messages"]]
        return prompts, list(rl)

    shown, rows_with = texts(tmp_path / "with")
    hidden, rows_without = texts(tmp_path / "without")
    intents = {json.loads(row["intent"])["text"] for row in rows_without}
    assert intents and all(row["persona"] for row in rows_without)  # the columns keep who shopped
    for block in ("# Who you are", "# What you want"):
        assert any(block in t for t in shown) and not any(block in t for t in hidden), block
    assert all(any(i in t for t in shown) for i in intents) and not any(i in t for t in hidden for i in intents)
    assert [r["gold_action"] for r in rows_with] == [r["gold_action"] for r in rows_without]
    assert load_meta(tmp_path / "without")["config"]["persona"] is False
    assert load_meta(tmp_path / "with")["config"]["persona"] is True
    save_inference_prompt(tmp_path / "model", tmp_path / "without", include_rationales=None, history_pages="all")
    assert load_prompt_config(tmp_path / "model").persona is False
    with pytest.raises(DataError, match="Expect persona True or False"):
        DataConfig(persona=1)  # type: ignore[arg-type]


def test_paper_3b_data_build_agrees_with_its_yaml(run_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """`data build --config paper-3b`: the budget fills the YAML's 32k prompt lengths (whole sessions, nothing cut),
    the data lands in its data_dir, and meta.json records both."""
    import yaml

    from agent.cli.root import app
    from training.online import PROMPT_OVERHEAD_TOKENS

    root = Path(__file__).resolve().parents[2]
    config = yaml.safe_load((root / "configs" / "paper-3b.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["data", "build", str(run_dir), "--config", "paper-3b"])
    assert result.exit_code == 0, result.output
    out = tmp_path / config["common"]["data_dir"]  # runs/paper3b/data, relative to the working directory
    meta = load_meta(out)
    budget = meta["config"]["max_context_tokens"]
    assert budget + PROMPT_OVERHEAD_TOKENS == config["rl"]["max_prompt_length"] == 32768
    assert budget + PROMPT_OVERHEAD_TOKENS <= config["sft"]["max_length"]
    assert meta["prompt_budget"]["max_context_tokens"] == budget
    assert meta["config"]["training_config"].endswith("paper-3b.yaml") and meta["config"]["sft_rows"] == "sessions"
    # whole-session contexts: no page dropped or cut in any RL prompt or SFT session of these sessions
    rl, sft = meta["prompt_budget"]["rl_prompt"], meta["prompt_budget"]["sft_session"]
    assert rl["pages_dropped"] == rl["truncated_current"] == sft["pages_dropped"] == 0
    assert meta["prompt_budget"]["rl_prompt_mean_current_shown"] == 1.0
    # the default build keeps DataConfig's budget; a budget that contradicts the config is refused
    result = runner.invoke(app, ["data", "build", str(run_dir), "--out", str(tmp_path / "plain")])
    assert result.exit_code == 0 and load_meta(tmp_path / "plain")["config"]["max_context_tokens"] == 3584
    assert load_meta(tmp_path / "plain")["config"]["training_config"] is None
    for args, message in (
        (["--config", "paper-3b", "--max-context-tokens", "100"],
         "Expect --max-context-tokens to agree with --config paper-3b (32704) or to be left out, actually: 100"),
        ([], "Expect --out (or a --config with common.data_dir), actually: neither"),
        (["--config", "huge"], "Expect a training config (YAML path or packaged name), actually: huge does not exist"),
    ):
        result = runner.invoke(app, ["data", "build", str(run_dir), *args])
        assert result.exit_code == 2 and message in result.output, result.output
