"""GRPO with Shop-R1's reward: max E[v(a) + α·s(r)] − β·KL(πθ ‖ πref) (Shop-R1, sec. 3), on TRL's `GRPOTrainer`.

**v(a)** is a plain TRL reward function: `training.rewards.ShopR1Reward` (or the binary baseline) with the gold action
from the dataset column `gold_action`. It logs its components through TRL's `log_metric` as `shop_r1/format`,
`shop_r1/type`, `shop_r1/attribute`, `shop_r1/value` (and `shop_r1/binary_exact`); TRL logs its mean as
`rewards/shop_r1/mean` and the weighted total as `reward`.

**α·s(r)** needs the policy's own logits, which no reward function sees. `ShopR1GRPOTrainer` is a small subclass that
adds it without copying TRL's loop, through two hooks of TRL 1.x's `GRPOTrainer`:

1. `_generate` (returns the prompt and completion ids of the batch, from `generate`, vLLM or a `rollout_func`): the
   override keeps the prompt ids.
2. `_calculate_rewards(inputs, prompts, completions, completion_ids_list)` (called once per generation batch, before
   the rewards are summed with `reward_weights` and normalised per group): the override computes s(r) for each
   completion with one gradient-free forward pass of the policy over prompt + completion
   (`training.self_certainty.policy_self_certainty`: logits / temperature, logits at position i scoring token i+1,
   mean of KL(U ‖ p) over the rationale's tokens, `rationale_token_masks`), and hands it to the reward function
   `SelfCertaintyReward` as the column `self_certainty`. That function has weight α in `reward_weights`, so TRL sums
   `v(a) + α·s(r)` *before* the group normalisation, logs `rewards/self_certainty/mean` (unweighted s(r)), and the
   completions table shows it per completion.

s(r) is 0 for an output that fails the reward's format check (`format_check`; Shop-R1: "otherwise the whole reward is
0"), and for one without a rationale. With α = 0 nothing is added and no extra forward pass runs.

The KL term is TRL's (`beta`, against a frozen copy of the starting policy). Offline training (the paper) reads
`DATA_DIR/rl`: one row per logged step, the prompt from `prompt` (whole session, `context="all"`) or `prompt_latest`,
scored against `gold_action`. Online training (`online=True`) is `training.online`.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from trl import GRPOTrainer

from agent.policy.schema import ParseError
from training.callbacks import (
    InterruptCallback,
    ProgressCallback,
    TrainingInterrupted,
    last_checkpoint,
    resolve_resume,
)
from training.configs import ShopR1GRPOConfig
from training.lora import record_base, trainable_model
from training.rewards import DEFAULT_CONFIG, ShopR1Reward, completion_text, parse_completion
from training.run_setup import (
    load_data_split,
    load_processing_class,
    require,
    save_inference_prompt,
    save_run_config,
)
from training.self_certainty import policy_self_certainty, rationale_token_masks

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

__all__ = [
    "GRPO_LOG_KEYS",
    "SELF_CERTAINTY_COLUMN",
    "SelfCertaintyReward",
    "ShopR1GRPOTrainer",
    "build_grpo_trainer",
    "filter_long_prompts",
    "load_rl_data",
    "reward_functions",
    "train_rl",
]

SELF_CERTAINTY_COLUMN = "self_certainty"
"""The per-completion column the trainer fills with s(r) for `SelfCertaintyReward`."""

GRPO_LOG_KEYS = (
    "loss", "reward", "rewards/shop_r1/mean", "rewards/shop_r1_binary/mean", "shop_r1/format", "shop_r1/type",
    "shop_r1/attribute", "shop_r1/value", "rewards/self_certainty/mean", "shop_r1/binary_exact",
    "shop_r1/format_ok", "shop_r1/pred_terminate", "kl",
    "online/outcome_bonus", "completions/mean_length", "step_time",
)
"""What the progress line shows (when logged); log.csv has every logged key."""


class SelfCertaintyReward:
    """s(r) as a TRL reward function: returns the `self_certainty` column that `ShopR1GRPOTrainer` computes.

    Give it weight α (the trainer does). Picklable.

    >>> SelfCertaintyReward()(None, ["a", "b"], self_certainty=[0.5, 0.0])
    [0.5, 0.0]
    """

    __name__ = "self_certainty"

    def __call__(self, prompts: Sequence[Any] | None, completions: Sequence[Any],
                 completion_ids: Sequence[Sequence[int]] | None = None, *,
                 self_certainty: Sequence[float] | None = None, **kwargs: Any) -> list[float]:
        if self_certainty is None:
            raise ValueError("Expect the `self_certainty` column (computed by ShopR1GRPOTrainer from the policy's "
                             "logits), actually: none; train with ShopR1GRPOTrainer")
        if len(self_certainty) != len(completions):
            raise ValueError(f"Expect one self_certainty per completion ({len(completions)}), actually: "
                             f"{len(self_certainty)}")
        return [float(s) for s in self_certainty]


class ShopR1GRPOTrainer(GRPOTrainer):
    """`GRPOTrainer` + α·s(r): with `args.self_certainty_alpha > 0` a `SelfCertaintyReward` of weight α joins the
    reward functions, and its column is computed from the policy's logits (see the module docstring).

    Also exposes the generation batch's dataset rows as `current_inputs` while it is being generated and scored, so a
    `rollout_func` can read per-row fields (persona, intent) that TRL does not pass it.
    """

    def __init__(self, model: Any, reward_funcs: Any = None, args: ShopR1GRPOConfig | None = None, *posargs: Any,
                 **kwargs: Any) -> None:
        alpha = float(getattr(args, "self_certainty_alpha", 0.0) or 0.0)
        funcs = list(reward_funcs) if isinstance(reward_funcs, list | tuple) else [reward_funcs]
        funcs = [f for f in funcs if f is not None]
        funcs = [f for f in funcs if not isinstance(f, SelfCertaintyReward)]
        user_weights = None if args is None else args.reward_weights
        if alpha > 0:
            if user_weights is not None and len(user_weights) == len(funcs):
                weights = [*user_weights, alpha]
            elif user_weights is None:
                weights = [1.0] * len(funcs) + [alpha]
            else:
                raise ValueError(f"Expect one reward weight per reward function ({len(funcs)}), actually: "
                                 f"{len(user_weights)}")
            funcs.append(SelfCertaintyReward())
            if args is not None:  # always, with alpha > 0
                args.reward_weights = None  # TRL checks the count; the weights are set below
        self.self_certainty_alpha = alpha
        self._prompt_ids: list[list[int]] | None = None
        self._current_inputs: list[dict[str, Any]] | None = None
        super().__init__(model, funcs, args, *posargs, **kwargs)
        if alpha > 0:
            self.reward_weights = torch.tensor(weights, dtype=torch.float32)

    # ------------------------------------------------------------------------------------------------ hooks

    @property
    def current_inputs(self) -> list[dict[str, Any]] | None:
        """The dataset rows of the generation batch being generated and scored (None outside it)."""
        return self._current_inputs

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        self._current_inputs = inputs
        try:
            return super()._generate_and_score_completions(inputs)
        finally:
            self._current_inputs = None
            self._prompt_ids = None

    def _generate(self, prompts: list) -> tuple:
        out = super()._generate(prompts)
        self._prompt_ids = [list(ids) for ids in out[0]]
        return out

    def _calculate_rewards(self, inputs: list[dict[str, Any]], prompts: list, completions: list,
                           completion_ids_list: list[list[int]]) -> torch.Tensor:
        if self.self_certainty_alpha > 0:
            from trl.extras.profiling import profiling_context

            with profiling_context(self, "self_certainty"):
                scores = self.compute_self_certainty(completions, completion_ids_list)
            inputs = [{**row, SELF_CERTAINTY_COLUMN: s} for row, s in zip(inputs, scores, strict=True)]
        return super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)

    # ------------------------------------------------------------------------------------------------ s(r)

    @torch.no_grad()
    def compute_self_certainty(self, completions: Sequence[Any], completion_ids_list: Sequence[Sequence[int]],
                               prompt_ids_list: Sequence[Sequence[int]] | None = None) -> list[float]:
        """s(r) of each completion of this process's batch: the policy's mean KL(U ‖ p) over the rationale tokens at
        the sampling temperature; 0 when the output fails the format check or has no rationale."""
        from trl.models.utils import disable_gradient_checkpointing
        from trl.trainer.utils import pad

        prompt_ids_list = prompt_ids_list if prompt_ids_list is not None else self._prompt_ids
        if prompt_ids_list is None or len(prompt_ids_list) != len(completion_ids_list):
            raise RuntimeError("Expect the batch's prompt ids from _generate before the rewards, actually: none")
        texts = [completion_text(c) for c in completions]
        check = getattr(self.args, "format_check", DEFAULT_CONFIG.format_check)  # the reward's format check
        ok = [isinstance(t, str) and not isinstance(parse_completion(t, check), ParseError) for t in texts]
        masks = rationale_token_masks([t if isinstance(t, str) else None for t in texts],
                                      [list(ids) for ids in completion_ids_list], self.processing_class)
        scores = [0.0] * len(texts)
        rows = [i for i in range(len(texts)) if ok[i] and bool(masks[i].any())]
        if self.accelerator.num_processes > 1:
            # Sharded models (FSDP, ZeRO-3) gather weights inside every forward: all ranks must run the same number
            # of forward passes, so each scores its whole batch (equal sizes on every rank) and zeroes the rest.
            rows = list(range(len(texts)))
        elif not rows:
            return scores
        device = self.accelerator.device
        # Trainer types processing_class as any processor; this trainer's is a tokenizer (load_processing_class)
        pad_id = cast("PreTrainedTokenizerBase", self.processing_class).pad_token_id
        prompts = [torch.tensor(list(prompt_ids_list[i]), dtype=torch.long) for i in rows]
        comps = [torch.tensor(list(completion_ids_list[i]), dtype=torch.long) for i in rows]
        prompt_ids = pad(prompts, padding_value=pad_id, padding_side="left")
        prompt_mask = pad([torch.ones_like(p) for p in prompts], padding_value=0, padding_side="left")
        comp_ids = pad(comps, padding_value=pad_id, padding_side="right")
        comp_mask = pad([torch.ones_like(c) for c in comps], padding_value=0, padding_side="right")
        rationale = masks[rows][:, : comp_ids.shape[1]]
        input_ids = torch.cat([prompt_ids, comp_ids], dim=1).to(device)
        attention = torch.cat([prompt_mask, comp_mask], dim=1).to(device)
        batch_size = getattr(self.args, "self_certainty_batch_size", None) or self.args.per_device_train_batch_size
        # as GRPOTrainer calls it: Trainer types the model and the kwargs looser than TRL's helper does
        with (disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs),  # type: ignore[arg-type]
              self.accelerator.autocast()):
            values = policy_self_certainty(self.model, input_ids, attention, rationale.to(device), self.temperature,
                                           batch_size=batch_size)
        for i, value in zip(rows, values.float().cpu().tolist(), strict=True):
            scores[i] = value if ok[i] and math.isfinite(value) else 0.0
        return scores


# --------------------------------------------------------------------------------------------------------------------
# Data and set-up


def reward_functions(config: ShopR1GRPOConfig) -> list[Callable[..., list[float | None]]]:
    """v(a) as TRL reward functions: the Shop-R1 reward (or the binary baseline) from the config's constants, plus
    the online outcome bonus when it is on."""
    funcs: list[Callable[..., list[float | None]]] = [ShopR1Reward(config.reward_config())]
    if config.online and config.outcome_bonus > 0:
        from training.online import OutcomeBonusReward

        funcs.append(OutcomeBonusReward())
    return funcs


def filter_long_prompts(dataset: Any, tokenizer: Any, max_tokens: int | None, column: str = "prompt") -> Any:
    """Rows whose chat-templated prompt has at most `max_tokens` tokens (all rows when None); logs what it drops."""
    if max_tokens is None:
        return dataset

    def fits(row: dict[str, Any]) -> bool:
        ids = tokenizer.apply_chat_template(row[column], add_generation_prompt=True, tokenize=True)
        ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
        return len(ids) <= max_tokens

    kept = dataset.filter(fits)
    dropped = len(dataset) - len(kept)
    if dropped:
        logger.warning("dropped %d of %d prompts longer than max_prompt_length=%d tokens", dropped, len(dataset),
                       max_tokens)
    if len(kept) == 0:
        raise ValueError(f"Expect prompts of at most max_prompt_length={max_tokens} tokens, actually: all "
                         f"{len(dataset)} are longer; raise max_prompt_length or build the data with a smaller "
                         "page budget")
    return kept


def load_rl_data(config: ShopR1GRPOConfig, tokenizer: Any) -> Any:
    """The offline training rows of `DATA_DIR/rl`: `prompt` from the column the context picks, and `gold_action`."""
    data_dir = require(config.data_dir, "data_dir", "the dataset directory with rl/")
    train = load_data_split(data_dir, "rl", "train")
    column = config.prompt_column
    for needed in (column, "gold_action"):
        if needed not in train.column_names:
            raise ValueError(f"Expect a `{needed}` column in {data_dir}/rl, actually: {train.column_names}")
    keep = [c for c in train.column_names if c not in ("prompt", "prompt_latest")]
    train = train.map(lambda row: {"prompt": row[column]}, remove_columns=[c for c in ("prompt", "prompt_latest")
                                                                             if c in train.column_names])
    train = train.select_columns(["prompt", *keep])
    if config.max_train_samples is not None:
        train = train.select(range(min(config.max_train_samples, len(train))))
    return filter_long_prompts(train, tokenizer, config.max_prompt_length)


def build_grpo_trainer(config: ShopR1GRPOConfig, callbacks: Sequence[Any] = (), *, train_dataset: Any = None,
                       rollout_func: Any = None, extra_rewards: Sequence[Any] = ()) -> ShopR1GRPOTrainer:
    """The configured `ShopR1GRPOTrainer` (offline data unless `train_dataset` is given).

    `rollout_func` replaces TRL's generation (TRL's contract; see `training.online`), `extra_rewards` are added to
    v(a) with weight 1 (experiments and tests).
    """
    model_dir = require(config.model_dir, "model_dir", "the policy to start from (the SFT output)")
    tokenizer = load_processing_class(model_dir)
    dataset = train_dataset if train_dataset is not None else load_rl_data(config, tokenizer)
    model, peft = trainable_model(model_dir, config)
    trainer = ShopR1GRPOTrainer(
        model=model,
        peft_config=peft,
        reward_funcs=[*reward_functions(config), *extra_rewards],
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=list(callbacks),
        rollout_func=rollout_func,
    )
    logger.info("GRPO (%s): %d rows, G=%d, α=%s, β=%s, model %s, output %s",
                "online" if rollout_func is not None else "offline", len(dataset), config.num_generations,
                config.self_certainty_alpha, config.beta, model_dir, config.output_dir)
    return trainer


def train_rl(config: ShopR1GRPOConfig, *, callbacks: Sequence[Any] = (), rollout_func: Any = None,
             extra_rewards: Sequence[Any] = ()) -> Path:
    """GRPO from `config.model_dir`: offline on `DATA_DIR/rl` (the paper), or online in the store when
    `config.online`. Saves the final model + tokenizer to `config.output_dir` and returns it; on Ctrl-C saves a
    checkpoint and raises `TrainingInterrupted`.

    `callbacks` are extra `TrainerCallback`s; `rollout_func` (offline only) and `extra_rewards` are passed to
    `build_grpo_trainer`.
    """
    output_dir = Path(require(config.output_dir, "output_dir", "where to save the model"))
    interrupt = InterruptCallback()
    progress = ProgressCallback(output_dir, keys=GRPO_LOG_KEYS)
    with contextlib.ExitStack() as stack:
        if config.online:
            from training.online import online_setup

            dataset, rollout = stack.enter_context(online_setup(config))
            if rollout_func is not None:
                raise ValueError("Expect no rollout_func with online=True (online mode brings its own), actually: one")
            trainer = build_grpo_trainer(config, [progress, interrupt, *callbacks], train_dataset=dataset,
                                         rollout_func=rollout, extra_rewards=extra_rewards)
        else:
            trainer = build_grpo_trainer(config, [progress, interrupt, *callbacks], rollout_func=rollout_func,
                                         extra_rewards=extra_rewards)
        save_run_config(config, output_dir, "shop_r1_grpo_config.json")
        trainer.train(resume_from_checkpoint=resolve_resume(config.resume_from_checkpoint, output_dir))
    if interrupt.stopped_at is not None:
        checkpoint = last_checkpoint(output_dir)
        logger.warning("GRPO interrupted at step %s; resume with resume_from_checkpoint=%s", interrupt.stopped_at,
                       checkpoint)
        raise TrainingInterrupted(checkpoint)
    trainer.save_model(str(output_dir))
    if trainer.processing_class is not None:
        trainer.processing_class.save_pretrained(str(output_dir))
    record_base(output_dir, require(config.model_dir, "model_dir", "the policy to start from"))  # checked already
    # RL prompts show previous pages and actions, no rationales (Shop-R1, sec. RL)
    from training.online import PROMPT_OVERHEAD_TOKENS

    fallback = (max(256, config.max_prompt_length - PROMPT_OVERHEAD_TOKENS) if config.max_prompt_length else None)
    save_inference_prompt(output_dir, config.data_dir, include_rationales=None, history_pages=config.context,
                          fallback_budget=fallback)
    logger.info("GRPO done: model saved to %s", output_dir)
    return output_dir
