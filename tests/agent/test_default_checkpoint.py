"""The shipped default shopper (`agent/checkpoints/default/`): it is small, complete and loads; on the store it
produces a parseable, valid action on at least 95% of 50 seeded steps; `simulate` uses it when no policy is given."""

from __future__ import annotations

import json

import pytest
from safetensors import safe_open
from typer.testing import CliRunner

from agent.checkpoints import DEFAULT_POLICY_DIR, default_policy_dir, default_policy_recipe
from agent.models import load_tokenizer
from agent.policies import make_policy
from agent.population import sample_from_catalog
from agent.prompt import load_prompt_config
from agent.trace import iter_traces
from agent.validity import measure_step_validity

MAX_BYTES = 20 * 1024 * 1024


def test_the_checkpoint_ships_complete_small_and_in_bf16():
    ckpt = default_policy_dir()
    size = (ckpt / "model.safetensors").stat().st_size
    assert 1_000_000 < size <= MAX_BYTES
    with safe_open(str(ckpt / "model.safetensors"), "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.bfloat16"}
    tokenizer = load_tokenizer(ckpt)
    text = '{"rationale": "Let me search.", "action": {"type": "type_and_submit", "name": "q", "text": "tent"}}'
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                         tokenize=False)
    assert "<|im_start|>assistant" in chat
    prompt = load_prompt_config(ckpt)
    assert prompt is not None and not prompt.include_rationales
    recipe = default_policy_recipe()
    assert recipe["command"].startswith("shop-r1 experiment default-policy")
    assert recipe["seeds"]["model_init_and_training"] == 0 and recipe["steps"]["sft"] > 0
    assert json.loads((ckpt / "config.json").read_text())["model_type"] == "qwen2"


def test_a_missing_checkpoint_says_how_to_get_one(monkeypatch, tmp_path):
    import agent.checkpoints as checkpoints

    monkeypatch.setattr(checkpoints, "DEFAULT_POLICY_DIR", tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="shop-r1 experiment default-policy"):
        checkpoints.default_policy_dir()


async def test_the_default_policy_acts_validly_on_the_store(store_url, store_db):
    policy = make_policy("local", device="cpu")
    assert policy.config.model_dir == str(DEFAULT_POLICY_DIR) and policy.config.structured
    try:
        shoppers = sample_from_catalog(store_db, 8, seed=7)
        result = await measure_step_validity(policy, store_url, shoppers, steps=50, seed=0, max_steps=10)
    finally:
        await policy.close()
    assert result.steps == 50
    assert result.parse_rate >= 0.95 and result.valid_rate >= 0.95, result


def test_simulate_uses_the_default_checkpoint_unless_told_otherwise(store_url, store_db, tmp_path):
    from agent.cli import app

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["simulate", "--site", store_url, "--catalog", str(store_db), "--backend", "http",
                                      "--sessions", "2", "--max-steps", "3", "--out", str(out), "--no-report"])
    assert result.exit_code == 0, result.output
    run = json.loads((out / "run.json").read_text())
    assert run["policy"]["name"] == "local" and run["policy"]["model"] == "default"
    assert run["policy"]["structured"] is True
    traces = list(iter_traces(out))
    assert len(traces) == 2 and all(t.steps for t in traces)
    assert all(s.action is not None for t in traces for s in t.steps)
