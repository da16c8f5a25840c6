"""Online GRPO against the live store: rollouts visit real pages, the scripted shopper labels the visited state
(also after the policy's own failed actions), the outcome bonus pays for purchases, and one training step runs."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
from tiny_train import cached_micro_model, canned_ids, varied_reward

from agent.policy.persona import Intent, Persona
from agent.policy.schema import format_action, parse_step
from agent.policy.scripted import label
from envs.env import ShopEnv
from training.configs import ShopR1GRPOConfig
from training.grpo import build_grpo_trainer, train_rl
from training.online import OnlineRollout, OutcomeBonusReward, online_dataset

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="session")
def micro_dir(tmp_path_factory):
    return cached_micro_model(tmp_path_factory)


def _config(out, model_dir, store_url, store_db, **kwargs) -> ShopR1GRPOConfig:
    base = dict(output_dir=str(out), model_dir=str(model_dir), online=True, online_site=store_url,
                online_catalog=str(store_db), online_episodes=4, online_max_steps=2, max_steps=1,
                per_device_train_batch_size=4, num_generations=2, max_completion_length=24, learning_rate=1e-3,
                logging_steps=1, save_strategy="no", use_cpu=True, gradient_checkpointing=False, report_to="none",
                seed=0, dataloader_num_workers=0, max_prompt_length=3000)
    base.update(kwargs)
    return ShopR1GRPOConfig(**base)


class _ScriptedRollout(OnlineRollout):
    """The policy's outputs replaced by fixed text (to steer the prefix and the branches in tests)."""

    def __init__(self, site, config, prefix_text: str, branch_text: str) -> None:
        super().__init__(site, config)
        self.prefix_text, self.branch_text = prefix_text, branch_text
        self.branches = []

    def _walk_prefixes(self, branches, trainer):
        self.branches = branches
        for b in branches:
            b.target_steps = min(1, self.max_steps)  # deterministic: one prefix step when T >= 1
        self._phase = "prefix"
        super()._walk_prefixes(branches, trainer)
        self._phase = "branch"

    def _generate(self, trainer, prompt_ids):
        text = self.prefix_text if self._phase == "prefix" else self.branch_text
        return [canned_ids(trainer.processing_class, text) for _ in prompt_ids]


def _replay(store_url, branch):
    with ShopEnv(store_url, backend="http") as env:
        obs, _ = env.reset(seed=branch.seed)
        for item in branch.history:
            obs, *_ = env.step(item.action)
        return obs


def test_doctests():
    import doctest

    import training.online

    result = doctest.testmod(training.online)
    assert result.failed == 0 and result.attempted > 0


def test_dataset_from_catalog(tmp_path, micro_dir, store_url, store_db):
    data = online_dataset(_config(tmp_path, micro_dir, store_url, store_db), store_db)
    assert len(data) == 4
    row = data[0]
    assert Persona.model_validate_json(row["persona"]) and Intent.model_validate_json(row["intent"])
    assert row["prompt"][-1]["role"] == "user" and isinstance(row["episode_seed"], int)


def test_failed_actions_become_recovery_states(tmp_path, micro_dir, store_url, store_db):
    """The policy clicks a name that is not on the page: the visited state shows the failure and the scripted shopper
    labels what this persona would do there."""
    config = _config(tmp_path, micro_dir, store_url, store_db, online_max_steps=1)
    bad = '{"rationale": "Let me try this.", "action": {"type": "click", "name": "no_such.element"}}'
    good = '{"rationale": "Searching.", "action": {"type": "terminate"}}'
    rollout = _ScriptedRollout(store_url, config, bad, good)
    trainer = build_grpo_trainer(config, train_dataset=online_dataset(config, store_db), rollout_func=rollout)
    rows = [trainer.train_dataset[i] for i in (0, 0, 1, 1)]
    rows = [dict(r, episode_seed=r["episode_seed"]) for r in rows]
    trainer._current_inputs = rows  # what ShopR1GRPOTrainer sets while a batch is generated
    out = rollout([r["prompt"] for r in rows], trainer)
    assert len(out["prompt_ids"]) == len(out["completion_ids"]) == len(out["gold_action"]) == 4
    assert out["prompt_ids"][0] == out["prompt_ids"][1]  # a group shares its state
    tokenizer = trainer.processing_class
    for g, branch in enumerate(rollout.branches):
        prompt = tokenizer.decode(out["prompt_ids"][2 * g])
        obs = _replay(store_url, branch)
        assert obs.url in prompt
        gold = label(branch.persona, branch.intent, branch.history, obs, seed=branch.seed)
        assert out["gold_action"][2 * g] == out["gold_action"][2 * g + 1] == format_action(gold.action)
        assert len(branch.history) == 1  # the prefix step was the failed click
        assert branch.history[-1].error and "no_such.element" in branch.history[-1].error
        assert "Your last action failed" in prompt and "no_such.element" in prompt
        assert branch.invalid_steps == 1 and branch.policy_steps == 1
        assert json.loads(out["gold_action"][2 * g])["type"] == gold.action.type


def test_outcome_bonus_pays_for_a_purchase(tmp_path, micro_dir, store_url, store_db):
    """Walk the scripted shopper until it is one click from buying; a branch that clicks that button gets the bonus."""
    config = _config(tmp_path, micro_dir, store_url, store_db, online_scripted_steps=1.0, outcome_bonus=2.0,
                     online_max_steps=0)
    rollout = OnlineRollout(store_url, config)
    trainer = build_grpo_trainer(config, train_dataset=online_dataset(config, store_db), rollout_func=rollout)
    assert trainer.reward_func_names[-2:] == ["outcome_bonus", "self_certainty"]
    assert isinstance(trainer.reward_funcs[1], OutcomeBonusReward)
    # find a scripted session that buys, and the state just before its last click
    for row in trainer.train_dataset:
        persona, intent = Persona.model_validate_json(row["persona"]), Intent.model_validate_json(row["intent"])
        seed = row["episode_seed"]
        with ShopEnv(store_url, backend="http") as env:
            obs, _ = env.reset(seed=seed)
            history = []
            from agent.policy.prompt import HistoryItem

            for _ in range(25):
                step = label(persona, intent, history, obs, seed=seed)
                if step.action.type == "terminate":
                    break
                nxt, _, terminated, truncated, info = env.step(step.action)
                if terminated and info["outcome"] == "purchase":
                    break
                history.append(HistoryItem(obs.url, obs.html, step.action, step.rationale, info["error"]))
                obs = nxt
                if truncated:
                    break
            else:
                continue
        if step.action.type != "click" or not (terminated and info["outcome"] == "purchase"):
            continue
        from training.online import Branch

        branch = Branch(persona=persona, intent=intent, seed=seed, episode_id=row["episode_id"], history=history)
        buy = json.dumps({"rationale": "Buying it.", "action": step.action.model_dump()})
        texts = [buy, '{"rationale": "No.", "action": {"type": "terminate"}}']
        assert rollout._outcome_bonus([branch], texts, 2) == [2.0, 0.0]
        return
    pytest.skip("no scripted session in the sample ended in a purchase")


def test_one_online_step_trains(tmp_path, micro_dir, store_url, store_db):
    out = train_rl(_config(tmp_path / "online", micro_dir, store_url, store_db, online_scripted_steps=0.5,
                           outcome_bonus=1.0), extra_rewards=[varied_reward])
    from transformers import AutoModelForCausalLM

    before = dict(AutoModelForCausalLM.from_pretrained(str(micro_dir)).named_parameters())
    after = dict(AutoModelForCausalLM.from_pretrained(str(out)).named_parameters())
    assert any(not torch.equal(before[n], after[n]) for n in before)
    with open(out / "log.csv", newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r.get("loss"))
    for key in ("shop_r1/format", "shop_r1/type", "shop_r1/attribute", "shop_r1/value", "rewards/self_certainty/mean",
                "rewards/outcome_bonus/mean", "online/prefix_steps", "online/policy_step_frac", "reward"):
        assert math.isfinite(float(row[key])), key
    assert float(row["online/prefix_steps"]) <= 2


def test_branch_samples_parse_like_offline(tmp_path, micro_dir, store_url, store_db):
    """Branch completions go through the same reward as offline: a correct copy of the label scores the maximum."""
    config = _config(tmp_path, micro_dir, store_url, store_db, online_max_steps=0)
    rollout = _ScriptedRollout(store_url, config, "", "")
    trainer = build_grpo_trainer(config, train_dataset=online_dataset(config, store_db), rollout_func=rollout)
    rows = [trainer.train_dataset[0]] * 2
    trainer._current_inputs = rows
    out = rollout([r["prompt"] for r in rows], trainer)
    gold = out["gold_action"][0]
    step = parse_step(json.dumps({"rationale": "Copying the label.", "action": json.loads(gold)}))
    from training.rewards import ShopR1Reward

    assert ShopR1Reward()(None, [json.dumps({"rationale": step.rationale, "action": json.loads(gold)})],
                          gold_action=[gold])[0] >= 0.8
