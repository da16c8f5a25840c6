"""GRPO with the Shop-R1 reward on a micro Qwen2: steps move the weights, every reward component is logged, α·s(r)
is the policy's own self-certainty (checked against a hand-written forward pass), α = 0 removes it, resume works."""

from __future__ import annotations

import csv
import math
import os
import signal

import pytest
import torch
from tiny_train import (
    CANNED_STEPS,
    CannedRollout,
    cached_datasets,
    cached_micro_model,
    canned_ids,
    chat_prompt_ids,
    varied_reward,
)
from transformers import TrainerCallback

from training.callbacks import TrainingInterrupted
from training.configs import ShopR1GRPOConfig
from training.grpo import SelfCertaintyReward, build_grpo_trainer, train_rl
from training.rewards import ShopR1Reward
from training.self_certainty import rationale_token_mask

pytestmark = pytest.mark.timeout(240)

COMPONENT_KEYS = ("shop_r1/format", "shop_r1/type", "shop_r1/attribute", "shop_r1/value", "rewards/shop_r1/mean",
                  "rewards/self_certainty/mean", "reward")
SHARE_KEYS = ("shop_r1/format_ok", "shop_r1/pred_terminate", "shop_r1/gold_terminate")


@pytest.fixture(scope="session")
def micro_dir(tmp_path_factory):
    return cached_micro_model(tmp_path_factory)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return cached_datasets(tmp_path_factory)


def _config(out, data_dir, model_dir, **kwargs) -> ShopR1GRPOConfig:
    base = dict(output_dir=str(out), data_dir=str(data_dir), model_dir=str(model_dir), max_steps=2,
                per_device_train_batch_size=4, num_generations=4, max_completion_length=24, learning_rate=1e-3,
                logging_steps=1, save_strategy="no", use_cpu=True, gradient_checkpointing=False, report_to="none",
                seed=0, dataloader_num_workers=0)
    base.update(kwargs)
    return ShopR1GRPOConfig(**base)


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _weights(model_dir):
    from transformers import AutoModelForCausalLM

    return dict(AutoModelForCausalLM.from_pretrained(str(model_dir)).named_parameters())


def test_doctests():
    import doctest

    import training.grpo

    result = doctest.testmod(training.grpo)
    assert result.failed == 0 and result.attempted > 0


def test_two_sampled_steps_change_weights_and_log_every_component(tmp_path, data_dir, micro_dir):
    out = train_rl(_config(tmp_path / "rl", data_dir, micro_dir), extra_rewards=[varied_reward])
    before, after = _weights(micro_dir), _weights(out)
    assert any(not torch.equal(before[n], after[n]) for n in before)
    rows = [r for r in _rows(out / "log.csv") if r.get("loss")]
    assert len(rows) == 2
    for row in rows:
        for key in (*COMPONENT_KEYS, "rewards/varied_reward/mean", "kl"):
            assert key in row and math.isfinite(float(row[key])), key
        for key in SHARE_KEYS:  # what the sampled completions did (training.rewards.sample_shares)
            assert 0.0 <= float(row[key]) <= 1.0, key
        assert float(row["shop_r1/format_ok"]) == pytest.approx(2 * float(row["shop_r1/format"]))  # 0.5 per well-formed
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()


def _expected_self_certainty(model, prompt_ids, completion_ids, text, tokenizer, temperature) -> float:
    """s(r) by hand: one forward over prompt + completion; logits at position P-1+k score completion token k."""
    ids = torch.tensor([prompt_ids + completion_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].double() / temperature
    p = len(prompt_ids)
    mask = rationale_token_mask(text, completion_ids, tokenizer)
    values = []
    for k in range(len(completion_ids)):
        if mask[k]:
            z = logits[p - 1 + k]
            values.append(float(torch.logsumexp(z, 0) - z.mean() - math.log(z.numel())))
    return sum(values) / len(values) if values else 0.0


def test_self_certainty_is_the_policys_own_and_weighted_by_alpha(tmp_path, data_dir, micro_dir):
    config = _config(tmp_path / "sc", data_dir, micro_dir, max_steps=1, max_train_samples=1,
                     self_certainty_alpha=0.5, temperature=0.7)
    trainer = build_grpo_trainer(config, rollout_func=CannedRollout())
    assert trainer.reward_func_names == ["shop_r1", "self_certainty"]
    assert trainer.reward_weights.tolist() == [1.0, 0.5]
    tokenizer = trainer.processing_class
    prompt_ids = chat_prompt_ids(tokenizer, trainer.train_dataset[0]["prompt"])
    expected = [_expected_self_certainty(trainer.model, prompt_ids, canned_ids(tokenizer, text), text, tokenizer, 0.7)
                for text in CANNED_STEPS]
    assert all(e > 0 for e in expected[:3]) and expected[3] == 0.0  # the broken output fails the format: s(r) = 0
    trainer.train()
    logged = list(trainer._logs["rewards"]["self_certainty"])
    assert logged == pytest.approx(expected, rel=1e-4, abs=1e-5)
    v = list(trainer._logs["rewards"]["shop_r1"])
    gold = trainer.train_dataset[0]["gold_action"]
    assert v == pytest.approx(ShopR1Reward()(None, list(CANNED_STEPS), gold_action=[gold] * 4))
    total = trainer.state.log_history[0]["reward"]
    assert total == pytest.approx(sum(a + 0.5 * s for a, s in zip(v, logged, strict=True)) / 4, rel=1e-5)
    assert trainer.state.log_history[0]["rewards/self_certainty/mean"] == pytest.approx(sum(logged) / 4, rel=1e-5)


def test_alpha_zero_has_no_self_certainty(tmp_path, data_dir, micro_dir):
    config = _config(tmp_path / "nosc", data_dir, micro_dir, max_steps=1, self_certainty_alpha=0.0)
    trainer = build_grpo_trainer(config, rollout_func=CannedRollout())
    assert trainer.reward_func_names == ["shop_r1"]
    assert not any(isinstance(f, SelfCertaintyReward) for f in trainer.reward_funcs)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    logs = trainer.state.log_history[0]
    assert "rewards/self_certainty/mean" not in logs
    assert all(math.isfinite(logs[k]) for k in COMPONENT_KEYS if k != "rewards/self_certainty/mean")
    assert any(not torch.equal(before[n], p.detach()) for n, p in trainer.model.named_parameters())


def test_binary_reward_and_latest_context(tmp_path, data_dir, micro_dir):
    config = _config(tmp_path / "bin", data_dir, micro_dir, max_steps=1, reward="binary", context="latest",
                     self_certainty_alpha=0.0)
    trainer = build_grpo_trainer(config, rollout_func=CannedRollout())
    assert trainer.reward_func_names == ["shop_r1_binary"]
    first = trainer.train_dataset[0]["prompt"]
    assert [m["role"] for m in first] == ["system", "user"]  # latest-step-only context: no previous turns
    trainer.train()
    assert math.isfinite(trainer.state.log_history[0]["rewards/shop_r1_binary/mean"])


def test_max_prompt_length_drops_long_prompts(tmp_path, data_dir, micro_dir):
    from training.grpo import load_rl_data
    from training.run_setup import load_processing_class

    tokenizer = load_processing_class(micro_dir)
    full = load_rl_data(_config(tmp_path / "a", data_dir, micro_dir), tokenizer)
    lengths = sorted(len(chat_prompt_ids(tokenizer, r["prompt"])) for r in full)
    cut = lengths[len(lengths) // 2]
    kept = load_rl_data(_config(tmp_path / "b", data_dir, micro_dir, max_prompt_length=cut), tokenizer)
    assert 0 < len(kept) < len(full)
    with pytest.raises(ValueError, match="Expect prompts of at most max_prompt_length=1 tokens"):
        load_rl_data(_config(tmp_path / "c", data_dir, micro_dir, max_prompt_length=1), tokenizer)


class _SigintAt(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_and_resume(tmp_path, data_dir, micro_dir):
    out = tmp_path / "resume"
    config = _config(out, data_dir, micro_dir, max_steps=3, save_strategy="steps", save_steps=100)
    with pytest.raises(TrainingInterrupted) as info:
        train_rl(config, rollout_func=CannedRollout(), callbacks=[_SigintAt(1)])
    assert info.value.checkpoint is not None and info.value.checkpoint.is_dir()
    resumed = _config(out, data_dir, micro_dir, max_steps=3, resume_from_checkpoint="last")
    train_rl(resumed, rollout_func=CannedRollout())
    steps = [int(r["step"]) for r in _rows(out / "log.csv") if r.get("loss")]
    assert steps == [1, 2, 3], steps
