"""SFT cold start (Shop-R1, sec. 3): TRL's `SFTTrainer` on whole sessions, loss on the assistant turns only.

Each row of `DATA_DIR/sft` is one session as chat `messages` (system, then one user turn per page and one assistant
turn per step's JSON). With `assistant_only_loss=True` TRL renders the chat template with
`return_assistant_tokens_mask=True`, so only the tokens inside the template's `{% generation %}` markers (every
assistant turn: rationale + action JSON and the end-of-turn token) carry loss; the pages and the system prompt never do.
Data built with `DataConfig(sft_rows="steps")` has one `prompt` / `completion` row per step instead (the inference
prompt, its page shown), and TRL puts the loss on the completion only.

>>> from training.configs import ShopR1SFTConfig                       # doctest: +SKIP
>>> train_sft(ShopR1SFTConfig(output_dir="runs/sft", data_dir="runs/data", model_dir="runs/base"))  # doctest: +SKIP
PosixPath('runs/sft')

The final model and its tokenizer are saved to `output_dir` (load them with `agent.policy.engines.load_model` /
`load_tokenizer`); checkpoints go to `output_dir/checkpoint-N` every `save_steps`. Progress and loss go to stdout and
`output_dir/log.csv`. Ctrl-C saves a checkpoint and raises `TrainingInterrupted`; `resume_from_checkpoint=last`
(`--set resume_from_checkpoint=last`) continues from the newest one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.callbacks import (
    InterruptCallback,
    ProgressCallback,
    TrainingInterrupted,
    last_checkpoint,
    resolve_resume,
)
from training.configs import ShopR1SFTConfig
from training.lora import record_base, trainable_model
from training.run_setup import (
    load_data_split,
    load_processing_class,
    require,
    save_inference_prompt,
    save_run_config,
)

logger = logging.getLogger(__name__)

__all__ = ["SFT_LOG_KEYS", "build_sft_trainer", "fit_session", "load_sft_data", "sft_columns", "train_sft"]

_PAGE = re.compile(
    r"(# Current page \(step \d+\)\nURL: (\S*)\n)(.*?)(\n\n(?:Your last action failed|What do you do next))", re.DOTALL)

SFT_LOG_KEYS = ("loss", "eval_loss", "mean_token_accuracy", "grad_norm", "learning_rate", "num_tokens")
"""What the progress line shows (when logged); log.csv has every logged key."""


def sft_columns(column_names: Sequence[str], where: str = "the SFT data") -> list[str]:
    """The columns TRL trains on: `messages` (whole sessions) or `prompt` + `completion` (one step a row, from
    `DataConfig(sft_rows="steps")`: loss on the completion only)."""
    if "messages" in column_names:
        return ["messages"]
    if {"prompt", "completion"} <= set(column_names):
        return ["prompt", "completion"]
    raise ValueError(f"Expect a `messages` column or `prompt` and `completion` columns in {where}, actually: "
                     f"{list(column_names)}")


def load_sft_data(config: ShopR1SFTConfig) -> tuple[Any, Any | None]:
    """(train, eval or None) from `DATA_DIR/sft`, reduced to the columns TRL trains on (`sft_columns`)."""
    data_dir = require(config.data_dir, "data_dir", "the dataset directory with sft/")
    train = load_data_split(data_dir, "sft", "train")
    columns = sft_columns(train.column_names, f"{data_dir}/sft")
    train = train.select_columns(columns)
    if config.max_train_samples is not None:
        train = train.select(range(min(config.max_train_samples, len(train))))
    evaluation = None
    if config.eval_strategy != "no" and config.eval_split:
        evaluation = load_data_split(data_dir, "sft", config.eval_split).select_columns(columns)
    if len(train) == 0:
        raise ValueError(f"Expect training sessions in {data_dir}/sft, actually: none")
    return train, evaluation


def fit_session(messages: list[dict[str, str]], count: Any, max_length: int,
                placeholder: str = "[page html omitted: {url}]") -> tuple[list[dict[str, str]], int]:
    r"""A session chat cut to `max_length` tokens from its start, never its end (TRL would cut the end, and the last
    step, the buy or the leave, is what a shopper is judged on most): the oldest pages' HTML becomes the placeholder
    first (the data's own budget rule), then the oldest turn pairs go, then the last page's tail. `count(messages)` is
    the templated length.
    Returns the messages and how many pages and turns were cut.

    >>> msgs = [{"role": "system", "content": "S"},
    ...         {"role": "user",
    ...          "content": "# Current page (step 1)\nURL: u\n" + "x" * 50 + "\n\nWhat do you do next?"},
    ...         {"role": "assistant", "content": "A1"},
    ...         {"role": "user", "content": "# Current page (step 2)\nURL: v\nyy\n\nWhat do you do next?"},
    ...         {"role": "assistant", "content": "A2"}]
    >>> out, cut = fit_session(msgs, lambda m: sum(len(x["content"]) for x in m), 140)
    >>> out[1]["content"].splitlines()[2], out[-1]["content"], cut
    ('[page html omitted: u]', 'A2', 1)
    """
    messages = [dict(m) for m in messages]
    length, cut = count(messages), 0
    users = [k for k, m in enumerate(messages) if m["role"] == "user"]
    for k in users[:-1]:  # oldest first; the last page stays
        if length <= max_length:
            break
        new = _PAGE.sub(lambda m: m.group(1) + placeholder.replace("{url}", m.group(2)) + m.group(4),
                        messages[k]["content"], count=1)
        if new != messages[k]["content"]:
            messages[k]["content"] = new
            cut += 1
            length = count(messages)
    while length > max_length and len(messages) > 4 and messages[1]["role"] == "user":
        del messages[1:3]  # the oldest user/assistant pair
        cut += 1
        length = count(messages)
    last = max((k for k, m in enumerate(messages) if m["role"] == "user"), default=None)
    for _ in range(8):  # the last page alone is too long: keep its head, as the prompt's budget rule does
        page = _PAGE.search(messages[last]["content"]) if last is not None else None
        if last is None or length <= max_length or page is None or not page.group(3):
            break
        html = page.group(3)
        keep = int(len(html) * max_length / length * 0.9)
        messages[last]["content"] = (messages[last]["content"][:page.start(3)] + html[:keep]
                                     + "\n[... page truncated ...]" + messages[last]["content"][page.end(3):])
        cut += 1
        length = count(messages)
    return messages, cut


def _fit_steps(train: Any, tokenizer: Any, max_length: int) -> Any:
    """Step rows longer than `max_length` left out, with a warning (TRL would cut their end: the completion)."""
    def fits(row: dict[str, Any]) -> bool:
        ids = tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=True)
        ids = ids["input_ids"] if hasattr(ids, "keys") else ids
        return len(ids) <= max_length

    kept = train.filter(fits)
    if len(kept) < len(train):
        logger.warning("%d of %d SFT step rows are longer than max_length=%d tokens and were left out; build the data "
                       "with a smaller --max-context-tokens or raise max_length", len(train) - len(kept), len(train),
                       max_length)
    if len(kept) == 0:
        raise ValueError(f"Expect SFT step rows within max_length={max_length} tokens, actually: none of {len(train)}")
    return kept


def _fit_sessions(train: Any, tokenizer: Any, max_length: int | None) -> Any:
    if not max_length:
        return train
    if "messages" not in train.column_names:
        return _fit_steps(train, tokenizer, max_length)

    def count(messages: list[dict[str, str]]) -> int:
        ids = tokenizer.apply_chat_template(messages, tokenize=True)
        ids = ids["input_ids"] if hasattr(ids, "keys") else ids
        return len(ids)

    cuts = {"sessions": 0}

    def fit(row: dict[str, Any]) -> dict[str, Any]:
        messages, cut = fit_session(row["messages"], count, max_length)
        cuts["sessions"] += bool(cut)
        return {"messages": messages}

    fitted = train.map(fit)
    if cuts["sessions"]:
        logger.warning("%d of %d SFT sessions were longer than max_length=%d tokens: their oldest pages were cut "
                       "(never their last steps)", cuts["sessions"], len(train), max_length)
    return fitted


def build_sft_trainer(config: ShopR1SFTConfig, callbacks: Sequence[Any] = ()) -> Any:
    """The configured `SFTTrainer` (model from `config.model_dir`, tokenizer via
    `agent.policy.engines.load_tokenizer`)."""
    from trl import SFTTrainer

    model_dir = require(config.model_dir, "model_dir", "the model to fine-tune")
    train, evaluation = load_sft_data(config)
    tokenizer = load_processing_class(model_dir)
    train = _fit_sessions(train, tokenizer, config.max_length)
    model, peft = trainable_model(model_dir, config)
    trainer = SFTTrainer(
        model=model,
        peft_config=peft,
        args=config,
        train_dataset=train,
        eval_dataset=evaluation,
        processing_class=tokenizer,
        callbacks=list(callbacks),
    )
    logger.info("SFT: %d rows, model %s, output %s", len(train), model_dir, config.output_dir)
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
    record_base(output_dir, require(config.model_dir, "model_dir", "the model to fine-tune"))  # checked already
    # SFT sessions are multi-turn chats that show every earlier rationale
    save_inference_prompt(output_dir, config.data_dir, include_rationales=True, history_pages="all")
    logger.info("SFT done: model saved to %s", output_dir)
    return output_dir
