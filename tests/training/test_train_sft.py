"""SFT on a micro Qwen2: a few steps move the weights, only assistant tokens carry loss, logs, save, Ctrl-C, resume."""

from __future__ import annotations

import csv
import math
import os
import shutil
import signal

import pytest
import torch
from tiny_train import cached_datasets, cached_micro_model
from transformers import TrainerCallback

from training.callbacks import TrainingInterrupted
from training.configs import ShopR1SFTConfig
from training.sft import build_sft_trainer, train_sft

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="session")
def micro_dir(tmp_path_factory):
    return cached_micro_model(tmp_path_factory)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return cached_datasets(tmp_path_factory)


def _config(out, data_dir, model_dir, **kwargs) -> ShopR1SFTConfig:
    base = dict(output_dir=str(out), data_dir=str(data_dir), model_dir=str(model_dir), max_steps=3,
                per_device_train_batch_size=2, learning_rate=1e-3, logging_steps=1, save_strategy="no",
                max_length=2048, use_cpu=True, gradient_checkpointing=False, report_to="none", seed=0,
                dataloader_num_workers=0)
    base.update(kwargs)
    return ShopR1SFTConfig(**base)


def _weights(model_dir):
    from transformers import AutoModelForCausalLM

    return dict(AutoModelForCausalLM.from_pretrained(str(model_dir)).named_parameters())


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_few_steps_change_weights_and_log(tmp_path, data_dir, micro_dir, capsys):
    out = train_sft(_config(tmp_path / "sft", data_dir, micro_dir))
    before, after = _weights(micro_dir), _weights(out)
    changed = [n for n in before if not torch.equal(before[n], after[n])]
    assert len(changed) == len(before), f"unchanged: {set(before) - set(changed)}"
    rows = _rows(out / "log.csv")
    losses = [float(r["loss"]) for r in rows if r.get("loss")]
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    assert "step 1/3" in capsys.readouterr().out
    # the saved tokenizer keeps the trained ids and the generation-marker template
    from agent.policy.engines import load_tokenizer

    text = '{"rationale": "Let me search.", "action": {"type": "terminate"}}'
    assert load_tokenizer(out).encode(text) == load_tokenizer(micro_dir).encode(text)
    assert "{% generation %}" in load_tokenizer(out).chat_template
    assert (out / "shop_r1_sft_config.json").is_file()


def test_only_assistant_tokens_carry_loss(tmp_path, data_dir, micro_dir):
    trainer = build_sft_trainer(_config(tmp_path / "mask", data_dir, micro_dir))
    tokenizer = trainer.processing_class
    dataset = trainer.train_dataset
    assert len(dataset) >= 2
    for row in dataset:
        assistant = "".join(m["content"] + "<|im_end|>" for m in row["messages"] if m["role"] == "assistant")
        labelled = [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100]
        assert tokenizer.decode(labelled) == assistant
        unlabelled = tokenizer.decode([t for t, label in zip(row["input_ids"], row["labels"], strict=True)
                                       if label == -100])
        for message in row["messages"]:
            if message["role"] != "assistant":
                assert message["content"][:200] in unlabelled  # pages and the system prompt carry no loss
    batch = trainer.data_collator([dataset[0], dataset[1]])
    for b in range(2):
        labels, ids = batch["labels"][b], batch["input_ids"][b]
        keep = labels != -100
        assert torch.equal(labels[keep], ids[keep])
        assert 0 < int(keep.sum()) < int(batch["attention_mask"][b].sum()) // 2


class _SigintAt(TrainerCallback):
    """Sends this process a real SIGINT at the end of step `step` (as Ctrl-C would)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_leaves_a_resumable_checkpoint(tmp_path, data_dir, micro_dir):
    out = tmp_path / "interrupted"
    config = _config(out, data_dir, micro_dir, max_steps=6, save_strategy="steps", save_steps=100)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted) as info:
        train_sft(config, callbacks=[_SigintAt(2)])
    assert signal.getsignal(signal.SIGINT) is handler  # restored
    checkpoint = info.value.checkpoint
    assert checkpoint is not None and checkpoint.name in ("checkpoint-2", "checkpoint-3")
    stopped = int(checkpoint.name.split("-")[1])
    assert not (out / "model.safetensors").exists()  # no final model: training did not finish

    resumed = _config(out, data_dir, micro_dir, max_steps=6, resume_from_checkpoint="last")
    trainer_out = train_sft(resumed)
    assert (trainer_out / "model.safetensors").is_file()
    steps = [int(r["step"]) for r in _rows(out / "log.csv") if r.get("loss")]
    assert steps == list(range(1, 7)), steps  # resumed after `stopped`, no step logged twice
    assert stopped < 6


def test_a_10k_token_session_keeps_its_final_action(micro_dir):
    from datasets import Dataset

    from training.run_setup import load_processing_class
    from training.sft import _fit_sessions

    tokenizer = load_processing_class(micro_dir)
    page = "<ul>" + "".join(f"<li><a name='results.item_{i}'>Acme tent {i}</a></li>" for i in range(40)) + "</ul>"
    messages = [{"role": "system", "content": "You shop."}]
    for step in range(1, 13):
        messages.append({"role": "user", "content": f"# Current page (step {step})\nURL: http://shop/{step}\n{page}"
                                                    "\n\nWhat do you do next?"})
        messages.append({"role": "assistant", "content": f'{{"rationale": "step {step}", "action": {{"type": "click", '
                                                         f'"name": "results.item_{step}"}}}}'})
    final = '{"rationale": "Done.", "action": {"type": "terminate"}}'
    messages[-1]["content"] = final
    def length(msgs):
        ids = tokenizer.apply_chat_template(msgs, tokenize=True)
        return len(ids["input_ids"] if hasattr(ids, "keys") else ids)

    full = length(messages)
    assert full > 10_000
    fitted = _fit_sessions(Dataset.from_list([{"messages": messages}]), tokenizer, 4096)[0]["messages"]
    assert length(fitted) <= 4096 < full
    assert fitted[-1]["content"] == final and fitted[-2]["content"] == messages[-2]["content"]  # the end survives
    assert "[page html omitted: http://shop/1]" in fitted[1]["content"]  # the oldest page went first
    huge = [messages[0], {**messages[-2], "content": messages[-2]["content"].replace(page, page * 12)}, messages[-1]]
    cut = _fit_sessions(Dataset.from_list([{"messages": huge}]), tokenizer, 4096)[0]["messages"]
    assert length(cut) <= 4096 and cut[-1]["content"] == final and "page truncated" in cut[-2]["content"]


def _step_rows_data(tmp_path, data_dir):
    """`data_dir`'s RL prompts as SFT step rows (`DataConfig(sft_rows="steps")`'s columns), each completion its gold
    step."""
    from datasets import DatasetDict, load_from_disk

    rl = load_from_disk(str(data_dir / "rl"))

    def row(r):
        step = '{"rationale": "This is the step I take.", "action": ' + r["gold_action"] + "}"
        return {"prompt": r["prompt"], "completion": [{"role": "assistant", "content": step}],
                "session_id": r["session_id"], "step": r["step"]}

    out = tmp_path / "steps-data"
    DatasetDict({s: rl[s].map(row, remove_columns=rl[s].column_names) for s in rl}).save_to_disk(str(out / "sft"))
    shutil.copy(data_dir / "meta.json", out / "meta.json")
    return out


def test_step_rows_put_the_loss_on_their_completion_only(tmp_path, data_dir, micro_dir):
    steps = _step_rows_data(tmp_path, data_dir)
    trainer = build_sft_trainer(_config(tmp_path / "steps", steps, micro_dir))
    tokenizer = trainer.processing_class
    assert len(trainer.train_dataset) >= 2
    for row in trainer.train_dataset:
        labelled = [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100]
        assert tokenizer.decode(labelled) == row["completion"][0]["content"] + "<|im_end|>"
        unlabelled = tokenizer.decode([t for t, label in zip(row["input_ids"], row["labels"], strict=True)
                                       if label == -100])
        assert row["prompt"][-1]["content"][:200] in unlabelled
    out = train_sft(_config(tmp_path / "steps-out", steps, micro_dir, max_steps=2))
    losses = [float(r["loss"]) for r in _rows(out / "log.csv") if r.get("loss")]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)


def test_step_rows_over_max_length_are_left_out_not_cut(tmp_path, data_dir, micro_dir, caplog):
    steps = _step_rows_data(tmp_path, data_dir)
    trainer = build_sft_trainer(_config(tmp_path / "all", steps, micro_dir))
    tokenizer_lengths = sorted(len(r["input_ids"]) for r in trainer.train_dataset)
    cut = tokenizer_lengths[len(tokenizer_lengths) // 2]
    with caplog.at_level("WARNING"):
        short = build_sft_trainer(_config(tmp_path / "short", steps, micro_dir, max_length=cut))
    assert 0 < len(short.train_dataset) < len(trainer.train_dataset)
    assert all(len(r["input_ids"]) <= cut for r in short.train_dataset)
    assert "left out" in caplog.text
    with pytest.raises(ValueError, match="none of"):
        build_sft_trainer(_config(tmp_path / "none", steps, micro_dir, max_length=8))
