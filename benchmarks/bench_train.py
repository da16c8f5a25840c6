"""Training throughput on this machine: SFT tokens/s and GRPO step time for the tiny preset, fp32 vs bf16 autocast.

- SFT: `training.sft` (TRL `SFTTrainer`, assistant-only loss) on `DATA/sft`, batch 2, `--sft-steps` steps; tokens/s
  is TRL's `num_tokens` (all tokens of the batch, padding excluded) over the wall time of steps 2..N (step 1 warms up).
- GRPO: `training.grpo.ShopR1GRPOTrainer` with the Shop-R1 reward, α = 0.005 (its extra forward pass included),
  β = 0.001 (the reference model's forward pass included), G = 8 completions of exactly `--completion` tokens
  (`min_new_tokens`) for one prompt of exactly `--prompt` tokens per step, `model.generate` sampling at 0.6. The
  step time is TRL's `step_time` (generation + scoring + forward/backward + optimizer), mean of steps 2..N.
- fp32: weights and compute in fp32. bf16: fp32 weights, `bf16=True, use_cpu=True` (accelerate's CPU autocast).
- `--rounds` interleaved rounds (fp32, bf16, fp32, ...); the best and the median round are reported, since a shared
  machine's load comes and goes.

Run: `.venv/bin/python benchmarks/bench_train.py --data runs/tiny/data --model runs/tiny/base`
(the data from `shop-r1 data build`, the model from `shop-r1 model init --preset tiny`); writes
docs/benchmarks/train.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from training.configs import ShopR1GRPOConfig, ShopR1SFTConfig


def sft_run(data: Path, model: Path, out: Path, steps: int, bf16: bool, max_length: int) -> dict[str, float]:
    from transformers import TrainerCallback

    from training.sft import build_sft_trainer

    marks: list[tuple[float, float]] = []

    class Clock(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "num_tokens" in logs:
                marks.append((time.perf_counter(), float(logs["num_tokens"])))

    config = ShopR1SFTConfig(output_dir=str(out), data_dir=str(data), model_dir=str(model), max_steps=steps,
                             per_device_train_batch_size=2, learning_rate=1e-3, logging_steps=1, save_strategy="no",
                             max_length=max_length, use_cpu=True, bf16=bf16, gradient_checkpointing=False,
                             report_to="none", dataloader_num_workers=0, disable_tqdm=True)
    trainer = build_sft_trainer(config, callbacks=[Clock()])
    trainer.train()
    (t0, n0), (t1, n1) = marks[0], marks[-1]
    return {"tokens_per_s": (n1 - n0) / (t1 - t0), "tokens": n1 - n0, "seconds": t1 - t0}


def grpo_run(data: Path, model: Path, out: Path, steps: int, bf16: bool, prompt_tokens: int,
             completion_tokens: int, group: int) -> dict[str, float]:
    from datasets import Dataset

    from training._common import load_data_split, load_processing_class
    from training.grpo import build_grpo_trainer

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
        save_strategy="no", use_cpu=True, bf16=bf16, gradient_checkpointing=False, report_to="none",
        dataloader_num_workers=0, disable_tqdm=True)
    trainer = build_grpo_trainer(config, train_dataset=dataset)
    trainer.train()
    times = [h["step_time"] for h in trainer.state.log_history if "step_time" in h]
    lengths = [h["completions/mean_length"] for h in trainer.state.log_history if "completions/mean_length" in h]
    return {"step_s": statistics.mean(times[1:] or times), "first_step_s": times[0], "prompt_tokens": got,
            "completion_tokens": statistics.mean(lengths)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--sft-steps", type=int, default=8)
    parser.add_argument("--sft-max-length", type=int, default=2048)
    parser.add_argument("--grpo-steps", type=int, default=3)
    parser.add_argument("--prompt", type=int, default=512)
    parser.add_argument("--completion", type=int, default=64)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs/benchmarks/train.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

    names = ("fp32", "bf16 autocast")
    runs: dict[str, dict[str, list[dict[str, float]]]] = {"sft": {n: [] for n in names}, "grpo": {n: [] for n in names}}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for name in names:
                bf16 = name != "fp32"
                sft = sft_run(args.data, args.model, Path(tmp) / f"sft-{round_}-{bf16}", args.sft_steps, bf16,
                              args.sft_max_length)
                grpo = grpo_run(args.data, args.model, Path(tmp) / f"grpo-{round_}-{bf16}", args.grpo_steps, bf16,
                                args.prompt, args.completion, args.group)
                runs["sft"][name].append(sft)
                runs["grpo"][name].append(grpo)
                print(f"round {round_ + 1} {name}: SFT {sft['tokens_per_s']:.0f} tokens/s, "
                      f"GRPO step {grpo['step_s']:.2f}s", flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    init = json.loads((args.model / "init.json").read_text()) if (args.model / "init.json").is_file() else {}
    lines = [
        "# Training throughput (CPU)",
        "",
        f"`.venv/bin/python benchmarks/bench_train.py --data DATA --model MODEL` on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads). Model: "
        f"`{init.get('preset', '?')}` preset, {init.get('parameters', 0) / 1e6:.2f}M parameters, vocab "
        f"{init.get('vocab_size', '?')}.",
        "",
        f"{args.rounds} interleaved rounds; load average {load:.1f} at the end (a shared machine).",
        "",
        "| precision | SFT tokens/s, best | SFT tokens/s, median | GRPO step (s), best | GRPO step (s), median |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        sft = [r["tokens_per_s"] for r in runs["sft"][name]]
        step = [r["step_s"] for r in runs["grpo"][name]]
        lines.append(f"| {name} | {max(sft):,.0f} | {statistics.median(sft):,.0f} | {min(step):.2f} | "
                     f"{statistics.median(step):.2f} |")
    grpo = runs["grpo"]["fp32"][0]
    lines += [
        "",
        f"- SFT: batch 2, sequences up to {args.sft_max_length} tokens (whole sessions), assistant-only loss, "
        f"steps 2..{args.sft_steps}.",
        f"- GRPO: G = {args.group} completions of {grpo['completion_tokens']:.0f} tokens for one "
        f"{grpo['prompt_tokens']}-token prompt per step; α = 0.005 (s(r) forward pass), β = 0.001 (reference "
        f"forward pass); mean of steps 2..{args.grpo_steps}.",
    ]
    per_round = []
    for name in names:
        pairs = zip(runs["sft"][name], runs["grpo"][name], strict=True)
        per_round.append(f"{name} " + ", ".join(f"{a['tokens_per_s']:,.0f} / {b['step_s']:.2f}" for a, b in pairs))
    lines.append("- Rounds (SFT tokens/s / GRPO step s): " + "; ".join(per_round) + ".")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
