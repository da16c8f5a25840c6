"""The sizes of the paper's experiments: `ExperimentPreset` and the named presets (`shop-r1 experiment paper-tables
--preset NAME`), each with the measurements that sized it. Pure data: the runner is `training.experiments`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["PAGE_SHOWN_FLOOR", "PAGE_SHOWN_TARGET", "PRESETS", "SIZE_FIELDS", "ExperimentPreset", "PresetName"]

PAGE_SHOWN_TARGET = 0.7
"""Presets are sized so that RL prompts show at least this share of their current page on average (measured)."""
PAGE_SHOWN_FLOOR = 0.5
"""Below this share the experiment stops (`check_page_shown`): the earlier `tiny-cpu` (512 tokens) showed ~2%."""



@dataclass(frozen=True)
class ExperimentPreset:
    """Sizes of one experiment run. Every row uses the same data, test split, step counts and eval settings."""

    name: str
    train_sessions: int = field(metadata={"help": "Scripted reference sessions for training (SFT and RL)."})
    test_sessions: int = field(metadata={"help": "Held-out sessions: other personas, other catalog products."})
    train_persona_seed: int = 0
    test_persona_seed: int = 1000
    session_max_steps: int = 30
    max_context_tokens: int = field(default=512, metadata={"help": "Data budget: RL prompt / whole SFT session."})
    model_preset: str = field(default="tiny", metadata={
        "help": "A from-scratch preset of `training.modeling` (tiny, micro) or a pretrained base of "
                "`agent.policy.base_models.BASES` (smollm2-135m-instruct)."})
    lora_r: int = field(default=0, metadata={"help": "LoRA rank of every training stage; 0: full fine-tuning."})
    bf16: bool = field(default=False, metadata={"help": "bf16 autocast in training (on CPU: use_cpu)."})
    gradient_checkpointing: bool = field(default=False, metadata={
        "help": "Recompute activations in backward: SmolLM2 SFT on 3.5k-token sessions takes ~17 GB without it."})
    rl_gradient_checkpointing: bool | None = field(default=None, metadata={
        "help": "Gradient checkpointing of the GRPO stages alone (None: as `gradient_checkpointing`): GRPO holds G "
                "sequences' logits over the whole vocabulary at once, and SmolLM2 GRPO at 2.5k-token prompts and "
                "G = 4 without it ran past 24 GB."})
    rl_rationales: bool = field(default=False, metadata={
        "help": "RL prompts show previous rationales (`training.data.DataConfig.rl_rationales`); the paper's: no."})
    persona: bool = field(default=True, metadata={
        "help": "Prompts show the persona and intent block (Customer-R1's conditioning); False: the paper's context, "
                "pages and actions only (`training.data.DataConfig.persona`). Recorded in every row."})
    page_shown_floor: float = field(default=PAGE_SHOWN_FLOOR, metadata={
        "help": "The run stops when RL prompts show less than this share of their current page on average "
                "(`rl_prompt_mean_current_shown` of the data's meta): a model that never sees the page cannot be "
                "scored on clicking it."})
    sft_rows: str = field(default="sessions", metadata={
        "help": "SFT rows (`training.data.DataConfig.sft_rows`): 'sessions' (the paper's) or 'steps' (one row per "
                "step, its page shown)."})
    option_slip_rate: float = field(default=0.0, metadata={
        "help": "The scripted reference shoppers' `ScriptedConfig.option_slip_rate`: the share of product pages "
                "where they press the buy button before choosing an option, then answer the store's notice. 0: the "
                "data never shows that notice page."})
    sft_steps: int = 40
    sft_batch_size: int = 2
    sft_max_length: int = 2048
    sft_learning_rate: float = 1e-3
    rl_steps: int = 4
    num_generations: int = 4
    rl_batch_size: int = field(default=8, metadata={"help": "Completions per optimizer step (prompts x G)."})
    max_completion_length: int = 64
    max_prompt_length: int = 1024
    rl_learning_rate: float = 1e-5
    online_steps: int = 2
    online_episodes: int = 8
    online_max_steps: int = 3
    eval_limit: int | None = field(default=None, metadata={"help": "Test rows scored per row (evenly spaced)."})
    eval_max_new_tokens: int = 64
    eval_batch_size: int = 8
    eval_temperature: float = field(default=0.6, metadata={"help": "Temperature of every row but the sweep (paper)."})
    realism_sessions: int = field(default=0, metadata={"help": "Env sessions per realism row; 0 disables it."})
    realism_max_steps: int = 15
    temperatures: tuple[float, ...] = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2)
    seeds: tuple[int, ...] = (0,)
    rows: tuple[str, ...] | None = field(default=None, metadata={
        "help": "The rows run by default (`--rows` picks others); None: every row."})
    concurrency: int = 4
    device: str = field(default="cpu", metadata={
        "help": "'cpu' or 'cuda': where every stage trains (`use_cpu`) and every evaluation runs."})

    def __post_init__(self) -> None:
        if self.train_sessions < 2 or self.test_sessions < 1:
            raise ValueError(f"Expect train_sessions >= 2 and test_sessions >= 1, actually: {self.train_sessions}, "
                             f"{self.test_sessions}")
        if self.rl_batch_size % self.num_generations:
            raise ValueError(f"Expect rl_batch_size divisible by num_generations, actually: {self.rl_batch_size}, "
                             f"{self.num_generations}")
        if not self.seeds:
            raise ValueError("Expect at least one seed, actually: none")
        if not 0.0 <= self.page_shown_floor <= 1.0:
            raise ValueError(f"Expect page_shown_floor in [0, 1], actually: {self.page_shown_floor}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"Expect device 'cpu' or 'cuda', actually: {self.device!r}")


SMOKE = ExperimentPreset(
    name="smoke", train_sessions=12, test_sessions=4, session_max_steps=12, max_context_tokens=2048,
    model_preset="micro", sft_steps=3, sft_batch_size=2, sft_max_length=2304, rl_steps=2, num_generations=2,
    rl_batch_size=4, max_completion_length=24, max_prompt_length=2176, online_steps=1, online_episodes=2,
    online_max_steps=2, eval_limit=6, eval_max_new_tokens=24, realism_sessions=2, realism_max_steps=4,
    temperatures=(0.6, 1.0), seeds=(0,),
)
"""Minutes-scale, for CI: the micro model, 2-3 steps per stage, one seed, 6 test rows, 2 temperatures. Page-visible like
the real presets (2048 tokens with 12-step sessions), so the page-shown check runs on it too."""

TINY_CPU = ExperimentPreset(
    name="tiny-cpu", train_sessions=120, test_sessions=30, session_max_steps=30, max_context_tokens=2048,
    model_preset="tiny", sft_steps=200, sft_batch_size=2, sft_max_length=2304, sft_learning_rate=1e-3,
    rl_steps=16, num_generations=4, rl_batch_size=4, max_completion_length=64, max_prompt_length=2176,
    rl_learning_rate=3e-5, online_steps=8, online_episodes=32, online_max_steps=3, eval_limit=60,
    eval_max_new_tokens=64, realism_sessions=8, realism_max_steps=15,
    temperatures=(0.6, 0.7, 0.8, 1.0, 1.2), seeds=(0, 1, 2),
)
"""Every row of Tables 2, 4 and 5, the temperature sweep and online RL, 3 seeds, with the page in view: about 2 hours
on 2 idle CPU cores. An estimate from measured rates, not a timed full run.

**Page budget.** The earlier `tiny-cpu` gave the data 512 tokens: whole-session RL prompts then showed ~2% of their
current page (the system prompt, the persona and the action history came first). Measured on 48 scripted sessions
with a tiny-preset tokenizer (mean share of the current page's characters shown in RL prompts, persona on / off):
512 tokens 2% / 4%, 1024 24% / 31%, 1536 61% / 66%, 1792 74% / –, 2048 82% / 85%. So 2048, over the 70% target
with room for the experiment's own tokenizer. Measured on this preset's own data (`_prepare_data`: 120 + 30 scripted
sessions, its trained tokenizer): 81% (train) / 78% (test). Prompts are then ~2.1k tokens after the chat template
(`max_prompt_length` 2176; 26 of 949 train prompts, whose action history alone passes 2048 tokens, are dropped from
GRPO) and whole SFT sessions are cut from their oldest pages to `sft_max_length` 2304.

**Time** (rates: SFT ~2k tokens/s; a forward ~6k tokens/s; docs/benchmarks/train.md). Per seed:
- SFT: 200 steps x 2 sessions (~3.3 epochs of 120 sessions; the paper's 4) x ~1.5k tokens -> ~5 min.
- Offline GRPO: 10 models x 16 steps; one step is G=4 completions of one ~2k-token prompt (generation plus the
  policy, reference and s(r) forwards and one backward over ~8.5k tokens) ~8 s -> ~21 min.
- Online GRPO: 8 steps x ~15 s -> ~2 min.
- Next-action eval: 17 evaluations (5 main, 6 ablations, latest, 4 extra temperatures, online) x 60 test rows,
  ~50 s each -> ~14 min.
- Session realism: 6 rows x 8 sessions -> ~3 min.
~45 min a seed, ~2.2 h for 3; on a loaded machine expect 2-4x (`--resume` continues a killed run). Measured on
this preset's data while other jobs loaded the machine (load average 5-9): SFT 6.4 s/step (6 steps), GRPO 15-21 s a
step (3 of 4 steps; one took 91 s), i.e. ~1.5 h a seed at those rates.

**What was cut to fit, and why.** G = 4 with one prompt per step (8 before), 16 GRPO steps (30) at 3x the learning
rate (3e-5: `tiny-cpu-long-rl` showed that 30 steps at 1e-5 leave the policy within KL 0.002 of SFT, a training-side
measurement, not a test score), 60 test rows per row (150), 8 realism sessions (20). The paired bootstrap intervals
(`training.comparisons`) say how much 60 rows x 3 seeds can resolve."""

TINY_CPU_LONG_RL = dataclasses.replace(
    TINY_CPU, name="tiny-cpu-long-rl", rl_steps=3 * TINY_CPU.rl_steps,
    rl_learning_rate=3 * TINY_CPU.rl_learning_rate, temperatures=(0.6,), seeds=(0,),
    rows=("shop_r1", "no_dars", "binary_action"))
"""A follow-up to `tiny-cpu`: same data, same SFT model (copy `data/`, `traces/` and `seed0/models/{base,sft}` from a
`tiny-cpu` run and pass `--resume`), 3x the GRPO steps at 3x the learning rate, for the Table 4 failure modes
(terminate-spam without DARS or with a binary action reward), which need the policy to move. Its rows:
`shop_r1,no_dars,binary_action` (`--rows` picks others)."""

SMOLLM2_ROWS = ("zero_shot", "rl_binary", "sft", "sft_rl_binary", "shop_r1", "no_dars", "binary_action",
                "shop_r1_online")
"""The main rows a SmolLM2 run on 2 CPU cores has time for: Table 2, the two terminate-spam ablations, online RL."""

SMOLLM2_CPU = ExperimentPreset(
    name="smollm2-cpu", train_sessions=120, test_sessions=30, session_max_steps=30, max_context_tokens=2560,
    model_preset="smollm2-135m-instruct", lora_r=16, bf16=True, gradient_checkpointing=False,
    rl_gradient_checkpointing=True, rl_rationales=True, sft_rows="steps", sft_steps=48, sft_batch_size=1,
    sft_max_length=2816, sft_learning_rate=3e-4,
    rl_steps=2, num_generations=4, rl_batch_size=4, max_completion_length=96, max_prompt_length=2688,
    rl_learning_rate=5e-5, online_steps=1, online_episodes=8, online_max_steps=3, eval_limit=24,
    eval_max_new_tokens=96, realism_sessions=0, temperatures=(0.6,), seeds=(0,), rows=SMOLLM2_ROWS,
)
"""SmolLM2-135M-Instruct (pretrained, `agent.policy.base_models`) with a LoRA adapter (r 16), on `SMOLLM2_ROWS`: about 2
hours on 2 CPU cores, **one seed**, and about 20 GB of RAM (a GRPO step's peak).

Timed on its full run (2 cores, other jobs beside it part of the time): SFT 48 steps at 26-28 s a step (~21 min);
GRPO 2 steps at ~3 min a step from the SFT adapter; evaluation ~160-210 s a row; peak RSS 19.5 GB during offline
GRPO without gradient checkpointing (the adapter's base in bf16: in fp32 the step was killed at 24 GB), and the online
step past 24 GB without it, 9.8 GB with it: hence `rl_gradient_checkpointing` (same numbers, less memory).

Measured rates (2 cores, bf16 autocast, no gradient checkpointing): LoRA SFT ~108 tokens/s at ~2k-token rows, ~6 GB
RSS; one GRPO step with G = 4 at ~3k-token prompts ~235 s. So a seed costs: SFT 48 steps x ~2.3k tokens -> ~17 min;
GRPO 5 offline models x 2 steps + 1 online step -> ~40 min; eval 8 rows x 24 test rows at ~2.4k-token prompts and 96
new tokens -> ~40 min. ~1.6 h with data building: one seed fits, a second does not, and two GRPO steps (8 sampled
completions) move a LoRA adapter very little, so the RL rows measure the plumbing more than GRPO.

Layout (as the shipped SmolLM2 default, `training.default_policy`): SFT on single steps, each the inference prompt
with its page shown; RL prompts show the previous rationales (`rl_rationales`, a departure from the paper's RL
context) so every model is scored on the layout it was trained on. Page budget 2560 tokens: RL prompts show 80%
(train) / 77% (test) of their current page, measured on this preset's own data (on 48 sessions, persona on,
previous rationales shown: 2304 tokens 75%, 2560 82%; without the rationales 2048 tokens show 72%, 2560 85%)."""

SMOLLM2_GPU = ExperimentPreset(
    name="smollm2-gpu", train_sessions=240, test_sessions=60, session_max_steps=30, max_context_tokens=6144,
    model_preset="smollm2-135m-instruct", lora_r=0, bf16=True, gradient_checkpointing=True, rl_rationales=False,
    sft_rows="sessions", sft_steps=240, sft_batch_size=4, sft_max_length=8192, sft_learning_rate=2e-5,
    rl_steps=100, num_generations=8, rl_batch_size=16, max_completion_length=128, max_prompt_length=6272,
    rl_learning_rate=1e-6, online_steps=30, online_episodes=64, online_max_steps=5, eval_limit=None,
    eval_max_new_tokens=128, eval_batch_size=16, realism_sessions=30, realism_max_steps=30,
    temperatures=(0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2), seeds=(0, 1, 2), device="cuda",
)
"""Every row, 3 seeds, SmolLM2-135M-Instruct fully fine-tuned, on one CUDA GPU (`--device cuda`; not yet timed on one).

The paper's layout: whole-session SFT rows (`sft_rows="sessions"`) and RL prompts of previous pages and actions without
rationales. 6144 tokens of context (SmolLM2 has 8192 positions: prompt 6272 + 128 new tokens fit) show nearly every
current page whole. SFT: the paper's lr 2e-5, 240 steps x 4 sessions = 4 epochs of 240 sessions (the paper's 4).
GRPO: 100 steps of 2 prompts x G = 8 at lr 1e-6 (the paper's 1e-7 is for 500 steps of a 3B model with a global
batch of 64: a 135M model at a fifth of the steps gets 10x; chosen before any run, not on the test split)."""

SMOLLM2_GPU_SMOKE = dataclasses.replace(
    SMOLLM2_GPU, name="smollm2-gpu-smoke", train_sessions=6, test_sessions=2, session_max_steps=6,
    max_context_tokens=2048, sft_steps=1, sft_batch_size=1, sft_max_length=2304, rl_steps=1, num_generations=2,
    rl_batch_size=2, max_completion_length=16, max_prompt_length=2176, online_steps=1, online_episodes=2,
    online_max_steps=1, eval_limit=2, eval_max_new_tokens=16, eval_batch_size=2, realism_sessions=0,
    temperatures=(0.6, 1.0), device="cpu")
"""`smollm2-gpu`'s shape (the real base, full fine-tuning, every row, 3 seeds, the paper's layout) at smoke sizes on a
CPU: the GPU run's plumbing in minutes. Only sizes and the device differ (a test keeps it so)."""

SIZE_FIELDS = frozenset({
    "train_sessions", "test_sessions", "session_max_steps", "max_context_tokens", "sft_steps", "sft_batch_size",
    "sft_max_length", "rl_steps", "num_generations", "rl_batch_size", "max_completion_length", "max_prompt_length",
    "online_steps", "online_episodes", "online_max_steps", "eval_limit", "eval_max_new_tokens", "eval_batch_size",
    "realism_sessions", "realism_max_steps", "temperatures"})
"""The fields a smoke variant may shrink: everything else (model, fine-tuning, layout, rewards, rows) is the shape."""

PRESETS: dict[str, ExperimentPreset] = {p.name: p for p in (SMOKE, TINY_CPU, TINY_CPU_LONG_RL, SMOLLM2_CPU,
                                                             SMOLLM2_GPU, SMOLLM2_GPU_SMOKE)}
PresetName = Literal["smoke", "tiny-cpu", "tiny-cpu-long-rl", "smollm2-cpu", "smollm2-gpu", "smollm2-gpu-smoke"]
"""`paper-tables --preset`'s choices, shown in `--help` (a test keeps them equal to `PRESETS`)."""
