"""Online GRPO (beyond the paper): the policy shops the live store, and the states it visits are labelled by the
scripted shopper.

The paper trains offline: every prompt is a logged human state and the reward compares the sampled step with the
logged next action. Offline data never shows the policy the states its own mistakes lead to (a wrong page, a failed
action, a search it would not have typed). Online mode fills that gap with TRL's `rollout_func` hook:

1. **Episodes.** Each dataset row is an episode start: a persona and intent (from `DATA_DIR/rl`'s `persona`/`intent`
   columns, or sampled from the store's catalog) and a seed. TRL hands the rollout the generation batch with every
   row repeated G = `num_generations` times in a row; the G copies of a row form one GRPO group.
2. **Prefix rollout.** For each group, a fresh visitor opens the store (http backend by default; the embedded store
   unless `online_site`) and the *current policy* acts for k steps, k drawn uniformly from 0..T (`online_max_steps`),
   sampling at the training temperature. Actions are carried out for real: an invalid one leaves the page as it was
   with "Your last action failed: …" in the next prompt. A step whose output does not parse (or, with probability
   `online_scripted_steps`, any step) follows the scripted shopper instead, so early, format-less policies still
   reach deeper states. A `terminate` ends the prefix before it is carried out; a purchase is replayed without its
   last step so the state stays live.
3. **Branching at the visited state.** At the state the prefix reached, the prompt is built exactly as the offline
   data builds RL prompts (`agent.policy.prompt.build_messages`, no previous rationales, `context` all/latest) and the
   policy samples G completions of one step. The scripted shopper (`agent.policy.scripted.label`, same persona, intent
   and seed) labels that state: "what would this persona do here?", also on states it would never have reached itself.
   That label is the `gold_action` of all G samples, so the Shop-R1 reward (and α·s(r)) scores them exactly as
   offline, and the group baseline compares G answers to one question.
4. **Outcome bonus** (`outcome_bonus > 0`): a sampled click is carried out in a fresh visitor that replays the prefix;
   if it completes a purchase, the sample gets the bonus (reward function `outcome_bonus`, weight 1).

**Why one sample per env step, not whole multi-turn episodes with observation tokens masked.** TRL's `rollout_func`
can return multi-turn completions with an `env_mask` that keeps observation tokens out of the loss, but a GRPO group
then holds G different trajectories scored by one scalar each: the per-step Shop-R1 reward (a label per visited
state) would have to be collapsed into an episode return, and the G trajectories stop sharing states after their first
step, so the group baseline no longer compares answers to the same question. Per-step branching keeps the paper's
per-step reward and a meaningful baseline. Observation tokens are all in the prompt, so none ever carries loss; no
mask is needed. The cost is that only the branch step of each rollout is trained on (the prefix steps are sampled
with no gradient).

Generation runs with the training model (`model.generate`, the trainer's generation config), so `use_vllm` is not
supported online (the config rejects it). With several processes each rank rolls out its own share of the groups
(against its own embedded store when no `online_site` is given) and calls `generate` the same number of times as the
others, so sharded training (FSDP, ZeRO-3) stays in step; only single-process runs are tested here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from agent.policy.engines import combine_seeds, encode_plain
from agent.policy.persona import Intent, Persona, PersonaIntent
from agent.policy.prompt import HistoryItem, PromptConfig, build_messages, render_persona_intent, system_prompt
from agent.policy.schema import ParseError, ShopperStep, format_action, parse_step
from agent.policy.scripted import label
from agent.wiring import embedded_store, sample_from_catalog
from envs.actions import Terminate
from envs.env import EnvConfig, ShopEnv
from envs.observation import Observation
from training.configs import ShopR1GRPOConfig
from training.run_setup import load_data_split

logger = logging.getLogger(__name__)

__all__ = [
    "OUTCOME_COLUMN",
    "Branch",
    "OnlineRollout",
    "OutcomeBonusReward",
    "episode_rows",
    "online_dataset",
    "online_setup",
]

OUTCOME_COLUMN = "outcome_bonus"
PROMPT_OVERHEAD_TOKENS = 64
"""Chat-template tokens around the message contents (role headers, markers), kept free of the prompt budget."""


class OutcomeBonusReward:
    """The online outcome bonus as a TRL reward function: the `outcome_bonus` column the rollout fills. Picklable.

    >>> OutcomeBonusReward()(None, ["a"], outcome_bonus=[0.0])
    [0.0]
    """

    __name__ = "outcome_bonus"

    def __call__(self, prompts: Sequence[Any] | None, completions: Sequence[Any],
                 completion_ids: Sequence[Sequence[int]] | None = None, *,
                 outcome_bonus: Sequence[float] | None = None, **kwargs: Any) -> list[float | None]:
        if outcome_bonus is None:
            return [None] * len(completions)
        return [float(b) for b in outcome_bonus]


# --------------------------------------------------------------------------------------------------------------------
# Episodes: the dataset of online training


def episode_rows(items: Sequence[PersonaIntent], seed: int = 0, ids: Sequence[str] | None = None) -> list[dict]:
    """One dataset row per persona/intent: a placeholder `prompt` (the real one is built at rollout time, from the
    page the policy reaches), `persona`/`intent` JSON, and a stable episode seed."""
    rows = []
    for i, item in enumerate(items):
        episode_id = ids[i] if ids is not None else f"e{i:05d}"
        rows.append({
            "prompt": [{"role": "system", "content": system_prompt()},
                       {"role": "user", "content": render_persona_intent(item)
                        + "\n\n(Online episode: the store's pages are loaded at rollout time.)"}],
            "persona": item.persona.model_dump_json(),
            "intent": item.intent.model_dump_json(),
            "episode_id": episode_id,
            "episode_seed": combine_seeds(seed, episode_id) % (2**31),
        })
    return rows


def online_dataset(config: ShopR1GRPOConfig, catalog: str | Path | None) -> Any:
    """The episode rows: the distinct (persona, intent) pairs of `DATA_DIR/rl` when there is one, else
    `online_episodes` pairs sampled from `catalog` (`agent.runtime.population.sample_from_catalog`)."""
    from datasets import Dataset

    items: list[PersonaIntent] = []
    ids: list[str] = []
    if config.data_dir and (Path(config.data_dir) / "rl").is_dir():
        data = load_data_split(config.data_dir, "rl", "train")
        if {"persona", "intent"} <= set(data.column_names):
            seen: set[tuple[str, str]] = set()
            for row in data.select_columns(["persona", "intent", "session_id"]):
                key = (row["persona"], row["intent"])
                if key in seen or not row["persona"] or not row["intent"]:
                    continue
                seen.add(key)
                items.append(PersonaIntent(persona=Persona.model_validate_json(row["persona"]),
                                           intent=Intent.model_validate_json(row["intent"])))
                ids.append(str(row["session_id"]))
    if not items:
        if catalog is None:
            raise ValueError("Expect personas for online episodes: DATA_DIR/rl with persona/intent columns, or a "
                             "catalog (online_catalog, or the embedded store's), actually: neither")
        items = sample_from_catalog(catalog, config.online_episodes, seed=config.seed)
        ids = [f"e{i:05d}" for i in range(len(items))]
    if config.max_train_samples is not None:
        items, ids = items[: config.max_train_samples], ids[: config.max_train_samples]
    logger.info("online: %d episode starts", len(items))
    return Dataset.from_list(episode_rows(items, config.seed, ids))


@contextlib.contextmanager
def online_setup(config: ShopR1GRPOConfig) -> Iterator[tuple[Any, OnlineRollout]]:
    """(dataset, rollout_func) for online GRPO; starts the embedded store for the duration when no site is given."""
    with contextlib.ExitStack() as stack:
        site = config.online_site
        catalog: str | Path | None = config.online_catalog
        if site is None:
            site, catalog_path = stack.enter_context(embedded_store(config.online_variant, catalog))
            catalog = catalog or catalog_path
        dataset = online_dataset(config, catalog)
        yield dataset, OnlineRollout(site, config)


# --------------------------------------------------------------------------------------------------------------------
# The rollout


@dataclass
class Branch:
    """One group's rollout: the episode, the prefix the policy walked, and the state it trains on."""

    persona: Persona
    intent: Intent
    seed: int
    episode_id: str
    env: ShopEnv | None = None
    observation: Observation | None = None
    history: list[HistoryItem] = field(default_factory=list)
    target_steps: int = 0
    done: bool = False  # the prefix is over (target reached, terminate chosen, or the session ended)
    policy_steps: int = 0
    scripted_steps: int = 0
    invalid_steps: int = 0

    @property
    def persona_intent(self) -> PersonaIntent:
        return PersonaIntent(persona=self.persona, intent=self.intent)


def _data_persona(data_dir: str | None) -> bool:
    """Whether the offline data's prompts show the persona block (`DataConfig.persona`; True without data)."""
    meta = Path(data_dir) / "meta.json" if data_dir else None
    if meta is None or not meta.is_file():
        return True
    return bool((json.loads(meta.read_text(encoding="utf-8")).get("config") or {}).get("persona", True))


class OnlineRollout:
    """TRL `rollout_func`: `(prompts, trainer) -> {"prompt_ids", "completion_ids", "logprobs", "gold_action", ...}`.

    Needs `trainer.current_inputs` (the generation batch's rows: `ShopR1GRPOTrainer` provides it), because TRL passes a
    rollout only the prompts and the row's persona/intent live in other columns. See the module docstring.
    """

    def __init__(self, site: str, config: ShopR1GRPOConfig) -> None:
        self.site = site
        self.config = config
        self.backend = config.online_backend
        self.max_steps = config.online_max_steps
        self.env_config = EnvConfig(max_steps=10_000)  # the rollout bounds its own steps (T); replays may be long
        budget = (max(256, config.max_prompt_length - PROMPT_OVERHEAD_TOKENS) if config.max_prompt_length
                  else PromptConfig.max_context_tokens)
        self.prompt_config = PromptConfig(max_context_tokens=budget, include_rationales=False,
                                          history_pages=config.context, persona=_data_persona(config.data_dir))
        self.calls = 0

    # ------------------------------------------------------------------------------------------------ entry point

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        rows = getattr(trainer, "current_inputs", None)
        if rows is None or len(rows) != len(prompts):
            raise RuntimeError("Expect the generation batch's rows in trainer.current_inputs (use ShopR1GRPOTrainer), "
                               f"actually: {None if rows is None else len(rows)} rows for {len(prompts)} prompts")
        group = trainer.num_generations if trainer.model.training else trainer.num_generations_eval
        if len(rows) % group:
            raise RuntimeError(f"Expect whole groups of {group} rows, actually: {len(rows)} rows")
        branches = []
        step = int(getattr(trainer.state, "global_step", 0))
        rank = int(getattr(trainer.accelerator, "process_index", 0))
        for start in range(0, len(rows), group):
            row = rows[start]
            if any(r.get("episode_id") != row.get("episode_id") for r in rows[start:start + group]):
                raise RuntimeError(f"Expect {group} copies of one episode per group, actually: mixed rows at {start}")
            seed = int(row["episode_seed"])
            rng = random.Random(combine_seeds(seed, step, rank, self.calls))
            branches.append(Branch(persona=Persona.model_validate_json(row["persona"]),
                                   intent=Intent.model_validate_json(row["intent"]), seed=seed,
                                   episode_id=str(row.get("episode_id")), target_steps=rng.randint(0, self.max_steps)))
        self.calls += 1
        try:
            self._walk_prefixes(branches, trainer)
            return self._branch(branches, trainer, group)
        finally:
            for b in branches:
                if b.env is not None:
                    b.env.close()

    # ------------------------------------------------------------------------------------------------ prefix

    def _open(self, branch: Branch, actions: Sequence[Any] = ()) -> tuple[ShopEnv, Observation, bool]:
        """A fresh visitor on the store, with `actions` replayed. Returns (env, observation, ended)."""
        env = ShopEnv(self.site, backend=self.backend, config=self.env_config)
        obs, _ = env.reset(seed=branch.seed)
        ended = False
        for action in actions:
            obs, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                ended = True
                break
        return env, obs, ended

    def _messages(self, branch: Branch, tokenizer: Any) -> list[dict[str, str]]:
        assert branch.observation is not None
        result = build_messages(branch.persona_intent, branch.history, branch.observation.url,
                                branch.observation.html, self.prompt_config,
                                count_tokens=lambda s: len(encode_plain(tokenizer, s)))
        return result.messages

    def _walk_prefixes(self, branches: list[Branch], trainer: Any) -> None:
        """Advance every branch by up to its `target_steps` policy steps, one batched `generate` per step.

        With several processes every rank calls `generate` exactly T times (on a stand-in prompt once its branches are
        done): sharded models (FSDP, ZeRO-3) gather weights inside each forward, so ranks must stay in step."""
        tokenizer = trainer.processing_class
        for b in branches:
            b.env, b.observation, _ = self._open(b)
            b.done = b.target_steps == 0
        lockstep = getattr(trainer.accelerator, "num_processes", 1) > 1
        for _ in range(self.max_steps):
            active = [b for b in branches if not b.done]
            if not active and not lockstep:
                return
            prompt_ids = [self._prompt_ids(self._messages(b, tokenizer), tokenizer) for b in active]
            outputs = self._generate(trainer, prompt_ids or [self._prompt_ids(self._messages(branches[0], tokenizer),
                                                                                tokenizer)])
            for b, ids in zip(active, outputs[: len(active)], strict=True):
                self._advance(b, tokenizer.decode(ids, skip_special_tokens=True))

    def _advance(self, b: Branch, text: str) -> None:
        assert b.env is not None and b.observation is not None
        step = parse_step(text)
        rng = random.Random(combine_seeds(b.seed, len(b.history), "prefix"))
        if isinstance(step, ParseError) or rng.random() < self.config.online_scripted_steps:
            step = label(b.persona, b.intent, b.history, b.observation, seed=b.seed)
            b.scripted_steps += 1
        else:
            b.policy_steps += 1
        assert isinstance(step, ShopperStep)
        if isinstance(step.action, Terminate):
            b.done = True  # the shopper would leave here: train on this state
            return
        obs, _, terminated, truncated, info = b.env.step(step.action)
        if terminated or truncated:  # a purchase (or the budget): go back to the live state before it
            b.env.close()
            b.env, b.observation, ended = self._open(b, [h.action for h in b.history])
            b.done = True
            if ended:
                logger.warning("online: replaying episode %s did not reproduce its state", b.episode_id)
            return
        if not info["valid"]:
            b.invalid_steps += 1
        b.history.append(HistoryItem(b.observation.url, b.observation.html, step.action, step.rationale,
                                     info["error"]))
        b.observation = obs
        b.done = len(b.history) >= b.target_steps

    # ------------------------------------------------------------------------------------------------ branch

    def _branch(self, branches: list[Branch], trainer: Any, group: int) -> dict[str, Any]:
        tokenizer = trainer.processing_class
        prompt_ids: list[list[int]] = []
        golds: list[str] = []
        urls: list[str] = []
        for b in branches:
            assert b.observation is not None
            ids = self._prompt_ids(self._messages(b, tokenizer), tokenizer)
            gold = label(b.persona, b.intent, b.history, b.observation, seed=b.seed)
            prompt_ids += [ids] * group
            golds += [format_action(gold.action)] * group
            urls += [b.observation.url] * group
        completion_ids = self._generate(trainer, prompt_ids)
        out: dict[str, Any] = {"prompt_ids": prompt_ids, "completion_ids": completion_ids, "logprobs": None,
                               "gold_action": golds, "online_state_url": urls}
        if self.config.outcome_bonus > 0:
            texts = tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
            out[OUTCOME_COLUMN] = self._outcome_bonus(branches, texts, group)
        self._log(trainer, branches, urls, out)
        return out

    def _outcome_bonus(self, branches: list[Branch], texts: list[str], group: int) -> list[float]:
        bonus = [0.0] * len(texts)
        for g, b in enumerate(branches):
            for k in range(group):
                i = g * group + k
                step = parse_step(texts[i])
                if isinstance(step, ParseError) or step.action.type != "click":
                    continue
                env, _, ended = self._open(b, [h.action for h in b.history])
                try:
                    if ended:
                        continue
                    _, _, terminated, _, info = env.step(step.action)
                    if terminated and info.get("outcome") == "purchase":
                        bonus[i] = self.config.outcome_bonus
                finally:
                    env.close()
        return bonus

    def _log(self, trainer: Any, branches: list[Branch], urls: list[str], out: dict[str, Any]) -> None:
        log_metric = getattr(trainer, "_log_metric", None)
        if callable(log_metric) and branches:
            n = len(branches)
            log_metric("online/prefix_steps", sum(len(b.history) for b in branches) / n)
            total = sum(b.policy_steps + b.scripted_steps for b in branches)
            log_metric("online/policy_step_frac", sum(b.policy_steps for b in branches) / total if total else 0.0)
            log_metric("online/invalid_steps", sum(b.invalid_steps for b in branches) / n)
            log_metric("online/error_states", sum(1 for b in branches if b.observation is not None
                                                  and b.observation.last_action_error) / n)
            if OUTCOME_COLUMN in out:
                log_metric("online/outcome_bonus", sum(out[OUTCOME_COLUMN]) / len(out[OUTCOME_COLUMN]))
        log_extra = getattr(trainer, "_log_completion_extra", None)
        if callable(log_extra):
            log_extra("online_state_url", list(urls))
            log_extra("gold_action", list(out["gold_action"]))

    # ------------------------------------------------------------------------------------------------ generation

    @staticmethod
    def _prompt_ids(messages: list[dict[str, str]], tokenizer: Any) -> list[int]:
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return [int(i) for i in ids]

    @staticmethod
    def _generate(trainer: Any, prompt_ids: list[list[int]]) -> list[list[int]]:
        """One sampled completion per prompt with the training model and the trainer's generation config, cut after
        the first EOS (kept), as TRL's own transformers path does."""
        from trl.models import unwrap_model_for_generation
        from trl.trainer.utils import pad

        if not prompt_ids:
            return []
        tokenizer = trainer.processing_class
        device = trainer.accelerator.device
        tensors = [torch.tensor(ids, dtype=torch.long) for ids in prompt_ids]
        input_ids = pad(tensors, padding_value=tokenizer.pad_token_id, padding_side="left").to(device)
        attention = pad([torch.ones_like(t) for t in tensors], padding_value=0, padding_side="left").to(device)
        summon = getattr(getattr(trainer, "_dist", None), "summon_full_params", None)
        with contextlib.ExitStack() as stack:
            model = stack.enter_context(unwrap_model_for_generation(
                trainer.model_wrapped, trainer.accelerator,
                gather_deepspeed3_params=trainer.args.ds3_gather_for_generation,
                generation_kwargs=trainer.generation_kwargs,
                gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs))
            stack.enter_context(torch.no_grad())
            if summon is not None:
                stack.enter_context(summon(trainer.model_wrapped, recurse=False))
            output = model.generate(input_ids=input_ids, attention_mask=attention,
                                    generation_config=trainer.generation_config)
        new = output[:, input_ids.shape[1]:].cpu().tolist()
        eos = set(trainer.eos_token_ids)
        out = []
        for ids in new:
            end = next((k for k, t in enumerate(ids) if t in eos), None)
            out.append(ids[: end + 1] if end is not None else ids)
        return out
