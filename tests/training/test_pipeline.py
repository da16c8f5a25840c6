"""The tiny Shop-R1 pipeline end to end through the real `shop-r1` CLI, as a user runs it:
simulate → data build → model init → SFT → GRPO offline → GRPO online → eval."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from training.metrics import evaluate_predictions

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "tiny-cpu.yaml"


def shop_r1(*args: str, timeout: float = 600) -> str:
    proc = subprocess.run([sys.executable, "-m", "agent.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"shop-r1 {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def losses(log_csv: Path, column: str) -> list[float]:
    with open(log_csv) as f:
        return [float(row[column]) for row in csv.DictReader(f) if row.get(column) not in (None, "")]


@pytest.mark.slow
def test_tiny_pipeline_end_to_end(store_url, store_db, tmp_path):
    traces, data, base = tmp_path / "traces", tmp_path / "data", tmp_path / "base"
    sft, rl, online, results = tmp_path / "sft", tmp_path / "rl", tmp_path / "rl-online", tmp_path / "results.json"

    shop_r1("simulate", "--site", store_url, "--catalog", str(store_db), "--policy", "scripted", "--sessions", "16",
            "--concurrency", "4", "--backend", "http", "--out", str(traces), "--no-report")
    shop_r1("data", "build", str(traces), "--out", str(data), "--max-context-tokens", "384")
    shop_r1("model", "init", "--preset", "micro", "--corpus", str(data), "--out", str(base))
    shop_r1("data", "build", str(traces), "--out", str(data), "--max-context-tokens", "384", "--tokenizer", str(base))
    meta = json.loads((data / "meta.json").read_text())
    assert all(meta["counts"][s]["rl_rows"] > 0 for s in ("train", "test")), meta["counts"]

    common = ["--config", str(CONFIG), "--set", f"data_dir={data}", "--set", "save_steps=100"]
    shop_r1("train", "sft", *common, "--set", f"model_dir={base}", "--set", f"output_dir={sft}",
            "--set", "max_steps=3", "--set", "max_length=1024")
    rl_args = [*common, "--set", f"model_dir={sft}", "--set", "max_steps=2", "--set", "num_generations=2",
               "--set", "per_device_train_batch_size=4", "--set", "max_completion_length=24",
               "--set", "max_prompt_length=1024"]
    shop_r1("train", "rl", *rl_args, "--set", f"output_dir={rl}")
    shop_r1("train", "rl", *rl_args, "--online", "--set", f"output_dir={online}", "--set", "max_steps=1",
            "--set", f"online_site={store_url}", "--set", "online_episodes=2", "--set", "online_max_steps=2")

    for out in (sft, rl, online):
        assert (out / "config.json").is_file() and (out / "model.safetensors").is_file(), out
        assert (out / "log.csv").is_file(), out
    sft_loss = losses(sft / "log.csv", "loss")
    assert sft_loss and all(math.isfinite(x) for x in sft_loss)
    for out in (rl, online):
        rows = list(csv.DictReader(open(out / "log.csv")))
        assert rows, out
        rewards = [float(r["reward"]) for r in rows if r.get("reward") not in (None, "")]
        assert rewards and all(math.isfinite(x) and x >= 0 for x in rewards), out

    shop_r1("eval", "--model", str(rl), "--data", str(data), "--split", "test", "--out", str(results),
            "--limit", "5", "--max-new-tokens", "24", "--device", "cpu")
    got = json.loads(results.read_text())
    preds = [json.loads(line) for line in results.with_name("results.predictions.jsonl").read_text().splitlines()]
    assert len(preds) == got["metrics"]["n"] == 5
    metrics = got["metrics"]
    for key in ("exact_accuracy", "type_accuracy", "type_macro_f1"):
        assert 0.0 <= metrics[key] <= 1.0
    again = evaluate_predictions([p["completion"] for p in preds], [p["gold_action"] for p in preds])
    assert again.exact_accuracy == metrics["exact_accuracy"]
    assert again.type_accuracy == metrics["type_accuracy"]
    assert again.type_macro_f1 == pytest.approx(metrics["type_macro_f1"])
