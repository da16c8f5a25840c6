"""SFT cold start (Shop-R1, sec. 3): TRL's `SFTTrainer` on whole sessions, loss on the assistant turns only.

Each row of `DATA_DIR/sft` is one session as chat `messages` (system, then one user turn per page and one assistant
turn per step's JSON). With `assistant_only_loss=True` TRL renders the chat template with
`return_assistant_tokens_mask=True`, so only the tokens inside the template's `{% generation %}` markers (every
assistant turn: rationale + action JSON and the end-of-turn token) carry loss; the pages and the system prompt never do.

>>> from training.configs import ShopR1SFTConfig                       # doctest: +SKIP
>>> train_sft(ShopR1SFTConfig(output_dir="runs/sft", data_dir="runs/data", model_dir="runs/base"))  # doctest: +SKIP
PosixPath('runs/sft')

The final model and its tokenizer are saved to `output_dir` (load them with `agent.models.load_model` /
`load_tokenizer`); checkpoints go to `output_dir/checkpoint-N` every `save_steps`. Progress and loss go to stdout and
`output_dir/log.csv`. Ctrl-C saves a checkpoint and raises `TrainingInterrupted`; `resume_from_checkpoint=last`
(`--set resume_from_checkpoint=last`) continues from the newest one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training._common import (
    load_data_split,
    load_processing_class,
    require,
    save_inference_prompt,
    save_run_config,
)
from training.callbacks import (
    InterruptCallback,
    ProgressCallback,
    TrainingInterrupted,
    last_checkpoint,
    resolve_resume,
)
from training.configs import ShopR1SFTConfig

logger = logging.getLogger(__name__)

__all__ = ["SFT_LOG_KEYS", "build_sft_trainer", "load_sft_data", "train_sft"]

SFT_LOG_KEYS = ("loss", "eval_loss", "mean_token_accuracy", "grad_norm", "learning_rate", "num_tokens")
"""What the progress line shows (when logged); log.csv has every logged key."""


def load_sft_data(config: ShopR1SFTConfig) -> tuple[Any, Any | None]:
    """(train, eval or None) from `DATA_DIR/sft`, reduced to the `messages` column."""
    data_dir = require(config.data_dir, "data_dir", "the dataset directory with sft/")
    train = load_data_split(data_dir, "sft", "train")
    if "messages" not in train.column_names:
        raise ValueError(f"Expect a `messages` column in {data_dir}/sft, actually: {train.column_names}")
    train = train.select_columns(["messages"])
    if config.max_train_samples is not None:
        train = train.select(range(min(config.max_train_samples, len(train))))
    evaluation = None
    if config.eval_strategy != "no" and config.eval_split:
        evaluation = load_data_split(data_dir, "sft", config.eval_split).select_columns(["messages"])
    if len(train) == 0:
        raise ValueError(f"Expect training sessions in {data_dir}/sft, actually: none")
    return train, evaluation


def build_sft_trainer(config: ShopR1SFTConfig, callbacks: Sequence[Any] = ()) -> Any:
    """The configured `SFTTrainer` (model from `config.model_dir`, tokenizer via `agent.models.load_tokenizer`)."""
    from trl import SFTTrainer

    model_dir = require(config.model_dir, "model_dir", "the model to fine-tune")
    train, evaluation = load_sft_data(config)
    tokenizer = load_processing_class(model_dir)
    trainer = SFTTrainer(
        model=str(model_dir),
        args=config,
        train_dataset=train,
        eval_dataset=evaluation,
        processing_class=tokenizer,
        callbacks=list(callbacks),
    )
    logger.info("SFT: %d sessions, model %s, output %s", len(train), model_dir, config.output_dir)
    return trainer


def train_sft(config: ShopR1SFTConfig, *, callbacks: Sequence[Any] = ()) -> Path:
    """Fine-tune `config.model_dir` on `DATA_DIR/sft`; save the final model + tokenizer to `config.output_dir`.

    Returns the output directory. On Ctrl-C, saves a checkpoint and raises `TrainingInterrupted` (with its path).
    `callbacks` are extra `TrainerCallback`s.
    """
    output_dir = Path(require(config.output_dir, "output_dir", "where to save the model"))
    interrupt = InterruptCallback()
    progress = ProgressCallback(output_dir, keys=SFT_LOG_KEYS)
    trainer = build_sft_trainer(config, callbacks=[progress, interrupt, *callbacks])
    save_run_config(config, output_dir, "shop_r1_sft_config.json")
    resume = resolve_resume(config.resume_from_checkpoint, output_dir)
    trainer.train(resume_from_checkpoint=resume)
    if interrupt.stopped_at is not None:
        checkpoint = last_checkpoint(output_dir)
        logger.warning("SFT interrupted at step %s; resume with resume_from_checkpoint=%s", interrupt.stopped_at,
                       checkpoint)
        raise TrainingInterrupted(checkpoint)
    trainer.save_model(str(output_dir))
    if trainer.processing_class is not None:
        trainer.processing_class.save_pretrained(str(output_dir))
    # SFT sessions are multi-turn chats that show every earlier rationale
    save_inference_prompt(output_dir, config.data_dir, include_rationales=True, history_pages="all")
    logger.info("SFT done: model saved to %s", output_dir)
    return output_dir
