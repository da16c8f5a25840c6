"""`shop-r1 experiment default-policy` on its smoke preset: train, export, evaluate as shipped, record; and the
export's guards. Installs into a temporary directory, never over the shipped checkpoint."""

from __future__ import annotations

import json

import pytest
from safetensors import safe_open

from agent.checkpoints import DEFAULT_POLICY_DIR
from agent.policy.local import LocalPolicy, LocalPolicyConfig
from agent.policy.prompt import load_prompt_config
from training import default_policy
from training.default_policy import COMMAND, SMOKE_DEFAULT_POLICY, export_checkpoint, train_default_policy


@pytest.fixture(scope="module")
def trained(store_db, tmp_path_factory):
    root = tmp_path_factory.mktemp("default-policy")
    recipe = train_default_policy(root / "exp", preset=SMOKE_DEFAULT_POLICY, install_dir=root / "ckpt",
                                  catalog=store_db)
    return root, recipe


@pytest.mark.slow
def test_default_policy_trains_exports_and_records_its_recipe(trained):
    root, recipe = trained
    ckpt = root / "ckpt"
    assert ckpt != DEFAULT_POLICY_DIR
    for name in ("model.safetensors", "config.json", "tokenizer.json", "chat_template.jinja", "recipe.json",
                 "README.md", "shop_r1_prompt.json"):
        assert (ckpt / name).is_file(), name
    assert not (ckpt / "training_args.bin").exists()
    with safe_open(str(ckpt / "model.safetensors"), "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.bfloat16"}
    saved = json.loads((ckpt / "recipe.json").read_text())
    assert saved["command"].startswith(COMMAND) and saved["preset"]["name"] == "default-policy-smoke"
    assert saved["steps"] == {"sft": 3, "rl": 2, "online_rl": 1}
    assert saved["seeds"]["train_personas"] == 0 and saved["seeds"]["test_personas"] == 1000
    shoppers = saved["fidelity"]["shoppers"]
    assert set(shoppers) == {"scripted shopper", "default shopper (this checkpoint)"}
    mine = shoppers["default shopper (this checkpoint)"]
    # evaluated as shipped: the grammar makes even this barely trained model's steps valid
    assert mine["validity_shipped"]["steps"] == 50 and mine["validity_shipped"]["valid_rate"] >= 0.95
    assert mine["validity_raw"]["steps"] == 50
    for row in shoppers.values():
        assert set(row["sessions"]["js"]) == {"action_types", "session_lengths", "outcomes", "funnel"}
        assert 0.0 <= row["sessions"]["rates"]["search_rate"]["simulated"] <= 1.0
        assert set(row["next_action"]) >= {"exact_accuracy", "type_accuracy", "type_macro_f1"}
    readme = (ckpt / "README.md").read_text()
    assert "| default shopper (this checkpoint) |" in readme and "| scripted shopper |" in readme
    # the model remembers its training prompt, and the local policy uses it
    trained_prompt = load_prompt_config(ckpt)
    assert trained_prompt is not None and trained_prompt.max_context_tokens == SMOKE_DEFAULT_POLICY.max_context_tokens
    assert not trained_prompt.include_rationales
    policy = LocalPolicy(LocalPolicyConfig(model_dir=str(ckpt), device="cpu"))
    assert policy.prompt == trained_prompt


@pytest.mark.slow
def test_export_refuses_an_oversized_checkpoint_and_keeps_the_old_one(trained, tmp_path, monkeypatch):
    root, _ = trained
    model_dir = root / "exp" / "seed0" / "models" / "shop_r1_online"
    dest = tmp_path / "ckpt"
    export_checkpoint(model_dir, dest)
    before = (dest / "model.safetensors").read_bytes()
    monkeypatch.setattr(default_policy, "MAX_CHECKPOINT_BYTES", 1000)
    with pytest.raises(ValueError, match="at most 1000 bytes"):
        export_checkpoint(model_dir, dest)
    assert (dest / "model.safetensors").read_bytes() == before
    assert not (tmp_path / "ckpt.tmp").exists()


def test_the_preset_is_a_typed_choice_listed_in_help():
    from typing import get_args

    from typer.testing import CliRunner

    from agent.cli.root import app
    from training.default_policy import PRESETS, PresetName

    assert set(get_args(PresetName)) == set(PRESETS)
    runner = CliRunner()
    result = runner.invoke(app, ["experiment", "default-policy", "--out", "x", "--preset", "nope"])
    assert result.exit_code == 2 and "smollm2" in result.output
    assert "smollm2-smoke" in runner.invoke(app, ["experiment", "default-policy", "--help"]).output
