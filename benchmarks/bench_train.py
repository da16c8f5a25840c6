"""Training throughput on this machine: SFT tokens/s and GRPO step time, full fine-tuning vs LoRA, for the shipped
default's base (SmolLM2-135M-Instruct) beside the tiny from-scratch preset (the baseline), at the prompt sizes the
presets use, all in one run.

- SFT: `training.sft` (TRL `SFTTrainer`, assistant-only loss) on `DATA/sft`, batch 2, `--sft-steps` steps; tokens/s
  is TRL's `num_tokens` (all tokens of the batch, padding excluded) over the wall time of steps 2..N (step 1 warms up).
- GRPO: `training.grpo.ShopR1GRPOTrainer` with the Shop-R1 reward, α = 0.005 (its extra forward pass included),
  β = 0.001 (the reference forward pass included), G completions of exactly `--completion` tokens
  (`min_new_tokens`) for one prompt of the preset's size per step. The step time is TRL's `step_time` (generation +
  scoring + forward/backward + optimizer), mean of steps 2..N (or step 1 alone).
- bf16 autocast on CPU (`bf16=True, use_cpu=True`), fp32 master weights; LoRA r 16 on every linear layer.

Run: `.venv/bin/python benchmarks/bench_train.py --data DATA --tiny TINY_BASE [--smollm2-data DATA2]`: DATA from
`shop-r1 data build` (counted with the tiny tokenizer), TINY_BASE from `shop-r1 model init --preset tiny`;
DATA2 is data counted with SmolLM2's tokenizer at its 3072-token budget (default: DATA). Writes
docs/benchmarks/train.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from training.configs import ShopR1GRPOConfig, ShopR1SFTConfig


def sft_run(data: Path, model: Path, out: Path, steps: int, bf16: bool, max_length: int,
            lora_r: int = 0, batch: int = 2, checkpointing: bool = False) -> dict[str, float]:
    from transformers import TrainerCallback

    from training.sft import build_sft_trainer

    marks: list[tuple[float, float]] = []

    class Clock(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "num_tokens" in logs:
                marks.append((time.perf_counter(), float(logs["num_tokens"])))

    config = ShopR1SFTConfig(output_dir=str(out), data_dir=str(data), model_dir=str(model), max_steps=steps,
                             per_device_train_batch_size=batch, learning_rate=1e-3, logging_steps=1,
                             save_strategy="no", max_length=max_length, use_cpu=True, bf16=bf16,
                             gradient_checkpointing=checkpointing,
                             report_to="none", dataloader_num_workers=0, disable_tqdm=True, lora_r=lora_r)
    trainer = build_sft_trainer(config, callbacks=[Clock()])
    trainer.train()
    (t0, n0), (t1, n1) = marks[0], marks[-1]
    return {"tokens_per_s": (n1 - n0) / (t1 - t0), "tokens": n1 - n0, "seconds": t1 - t0}


def grpo_run(data: Path, model: Path, out: Path, steps: int, bf16: bool, prompt_tokens: int,
             completion_tokens: int, group: int, lora_r: int = 0, checkpointing: bool = False) -> dict[str, float]:
    from datasets import Dataset

    from training.grpo import build_grpo_trainer
    from training.run_setup import load_data_split, load_processing_class

    tokenizer = load_processing_class(model)
    rows = load_data_split(data, "rl", "train")
    # one prompt cut to exactly `prompt_tokens` tokens after the chat template (the current page's head is kept)
    row = max(rows, key=lambda r: len(r["prompt"][-1]["content"]))
    messages = [dict(m) for m in row["prompt"]]

    def length(ms):
        ids = tokenizer.apply_chat_template(ms, add_generation_prompt=True, tokenize=True)
        return len(ids["input_ids"] if hasattr(ids, "keys") else ids)

    content = messages[-1]["content"]
    lo, hi = 0, len(content)
    while lo < hi:  # the longest head of the last message that fits
        mid = (lo + hi + 1) // 2
        messages[-1]["content"] = content[:mid]
        lo, hi = (mid, hi) if length(messages) <= prompt_tokens else (lo, mid - 1)
    messages[-1]["content"] = content[:lo]
    got = length(messages)
    dataset = Dataset.from_list([{"prompt": messages, "gold_action": row["gold_action"]}] * 8)
    config = ShopR1GRPOConfig(
        output_dir=str(out), model_dir=str(model), max_steps=steps, per_device_train_batch_size=group,
        num_generations=group, max_completion_length=completion_tokens,
        generation_kwargs={"min_new_tokens": completion_tokens}, learning_rate=1e-5, logging_steps=1,
        save_strategy="no", use_cpu=True, bf16=bf16, gradient_checkpointing=checkpointing, report_to="none",
        dataloader_num_workers=0, disable_tqdm=True, lora_r=lora_r)
    trainer = build_grpo_trainer(config, train_dataset=dataset)
    trainer.train()
    times = [h["step_time"] for h in trainer.state.log_history if "step_time" in h]
    lengths = [h["completions/mean_length"] for h in trainer.state.log_history if "completions/mean_length" in h]
    return {"step_s": statistics.mean(times[1:] or times), "first_step_s": times[0], "prompt_tokens": got,
            "completion_tokens": statistics.mean(lengths)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="data for the tiny model")
    parser.add_argument("--tiny", type=Path, required=True, help="a `model init --preset tiny` directory")
    parser.add_argument("--smollm2-data", type=Path, default=None, help="data for SmolLM2 (default: --data)")
    parser.add_argument("--sft-steps", type=int, default=3)
    parser.add_argument("--grpo-steps", type=int, default=1)
    parser.add_argument("--completion", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs/benchmarks/train.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from agent.policy.base_models import ensure_base

    smollm2 = ensure_base("smollm2-135m-instruct")
    smollm2_data = args.smollm2_data or args.data
    # (label, model, data, lora_r, SFT max length, SFT batch, GRPO prompt tokens, G, activation checkpointing):
    # the presets' sizes (tiny-cpu; smollm2, whose 3.5k-token sessions need checkpointing to fit in memory)
    cells = [("tiny (3.9M), full fine-tune", args.tiny, args.data, 0, 1536, 2, 512, 8, False),
             ("SmolLM2-135M, LoRA r 16", smollm2, smollm2_data, 16, 3584, 1, 3072, 4, True),
             ("SmolLM2-135M, full fine-tune", smollm2, smollm2_data, 0, 3584, 1, 3072, 4, True)]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, model, data, lora_r, max_length, batch, prompt, group, ckpt) in enumerate(cells):
            sft = sft_run(data, model, Path(tmp) / f"sft-{i}", args.sft_steps, True, max_length, lora_r, batch, ckpt)
            grpo = grpo_run(data, model, Path(tmp) / f"grpo-{i}", args.grpo_steps, True, prompt, args.completion,
                            group, lora_r, ckpt)
            results.append((label, lora_r, max_length, group, sft, grpo))
            print(f"{label}: SFT {sft['tokens_per_s']:.0f} tokens/s, GRPO step {grpo['step_s']:.1f}s", flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    base_sft, base_grpo = results[0][4]["tokens_per_s"], results[0][5]["step_s"]
    lines = [
        "# Training throughput (CPU)",
        "",
        f"`.venv/bin/python benchmarks/bench_train.py --data DATA --tiny TINY --smollm2-data DATA2` on "
        f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} "
        f"threads), bf16 autocast. Baseline: the tiny model, same run; load average {load:.1f} at the end (a shared "
        "machine: compare the ratios).",
        "",
        "| model, training | SFT max length | SFT tokens/s | vs tiny | GRPO prompt + completion, G | GRPO s/step | "
        "vs tiny |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, _, max_length, group, sft, grpo in results:
        lines.append(f"| {label} | {max_length} | {sft['tokens_per_s']:,.0f} | {sft['tokens_per_s'] / base_sft:.3f}× | "
                     f"{grpo['prompt_tokens']} + {grpo['completion_tokens']:.0f}, {group} | {grpo['step_s']:.1f} | "
                     f"{grpo['step_s'] / base_grpo:.1f}× |")
    lines += ["", f"SFT: whole sessions (batch 2 tiny, 1 SmolLM2 with activation checkpointing, as the presets), steps "
              f"2..{args.sft_steps}. GRPO: one prompt × G completions per step, α = 0.005 and β = 0.001 forward passes "
              f"included; {args.grpo_steps} step(s)."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
