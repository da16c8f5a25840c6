"""Trainer callbacks shared by SFT and GRPO: progress lines and a CSV log, and Ctrl-C → a resumable checkpoint.

- `ProgressCallback` writes one line per logging step to a stream (stdout by default) and every logged row to
  `OUTPUT_DIR/log.csv` (all keys ever logged become columns; the file is rewritten whole, so it is always valid CSV).
- `InterruptCallback` turns the first SIGINT (Ctrl-C) into "save a checkpoint at the end of this step, then stop";
  a second Ctrl-C interrupts at once. `train_sft`/`train_rl` then raise `TrainingInterrupted` naming the checkpoint,
  and `resume_from_checkpoint` (a path, or `last`) continues from it.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from transformers import TrainerCallback

logger = logging.getLogger(__name__)

__all__ = ["InterruptCallback", "ProgressCallback", "TrainingInterrupted", "last_checkpoint", "resolve_resume"]


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C after saving `checkpoint` (None if no step had finished)."""

    def __init__(self, checkpoint: Path | None) -> None:
        super().__init__(f"training interrupted; checkpoint: {checkpoint}")
        self.checkpoint = checkpoint


def last_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest `checkpoint-N` directory in `output_dir`, or None."""
    from transformers.trainer_utils import get_last_checkpoint

    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    found = get_last_checkpoint(str(output_dir))
    return Path(found) if found else None


def resolve_resume(value: str | bool | None, output_dir: str | Path) -> str | None:
    """`resume_from_checkpoint` as the trainer wants it: a checkpoint path, or None.

    `last`/`true`/True pick the newest checkpoint in `output_dir` (None when there is none: a fresh start).
    """
    if value is None or value is False or (isinstance(value, str) and value.lower() in ("", "none", "false", "no")):
        return None
    if value is True or (isinstance(value, str) and value.lower() in ("last", "true", "latest", "yes")):
        found = last_checkpoint(output_dir)
        if found is None:
            logger.info("no checkpoint in %s to resume from: starting fresh", output_dir)
        return str(found) if found else None
    path = Path(value)
    if not path.is_dir():
        raise ValueError(f"Expect resume_from_checkpoint to be a checkpoint directory or 'last', actually: {value!r} "
                         "does not exist")
    return str(path)


def _int(value: Any) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.4g}"
    return str(value)


class ProgressCallback(TrainerCallback):
    """One line per log to `stream`, and `log.csv` in the output directory (main process only).

    `keys` picks and orders what the line shows (those present); everything goes to the CSV.
    """

    def __init__(self, output_dir: str | Path, *, stream: TextIO | None = None, keys: tuple[str, ...] = (),
                 filename: str = "log.csv") -> None:
        self.path = Path(output_dir) / filename
        self.stream = stream
        self.keys = keys
        self.rows: list[dict[str, Any]] = []
        self._columns: list[str] = []
        self._start = time.perf_counter()

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()
        if state.is_world_process_zero and self.path.is_file() and not self.rows:
            with self.path.open(newline="") as fh:  # resumed: keep the rows logged before
                reader = csv.DictReader(fh)
                self._columns = list(reader.fieldnames or [])
                self.rows = [dict(r) for r in reader if _int(r.get("step")) <= state.global_step]

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        row = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4),
               "elapsed_s": round(time.perf_counter() - self._start, 2), **logs}
        self.rows.append(row)
        for key in row:
            if key not in self._columns:
                self._columns.append(key)
        self._write_csv()
        shown = [k for k in self.keys if k in logs] or [k for k in logs if not k.startswith("profiling/")][:8]
        line = f"step {state.global_step}/{state.max_steps} " + " ".join(f"{k}={_fmt(logs[k])}" for k in shown)
        stream = self.stream or sys.stdout
        stream.write(line + "\n")
        stream.flush()

    def _write_csv(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self._columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.path)


class InterruptCallback(TrainerCallback):
    """First Ctrl-C: checkpoint at the end of the current step and stop. Second Ctrl-C: the usual KeyboardInterrupt.

    Also stops on `request_stop()` (tests, other threads). In multi-process runs the stop flag is all-reduced every
    step so that all ranks save and stop at the same step.
    """

    def __init__(self) -> None:
        self.requested = False
        self.stopped_at: int | None = None
        self._previous: Any = None
        self._installed = False

    def request_stop(self) -> None:
        self.requested = True

    def _handler(self, signum, frame):  # noqa: ARG002 - the signal API
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        logger.warning("Ctrl-C: saving a checkpoint at the end of this step, then stopping (Ctrl-C again to abort)")

    def on_train_begin(self, args, state, control, **kwargs):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
            self._installed = True

    def _restore(self) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def on_step_end(self, args, state, control, **kwargs):
        requested = self.requested
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            import torch

            flag = torch.tensor([1.0 if requested else 0.0], device=args.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            requested = bool(flag.item())
        if requested:
            self.requested = True
            self.stopped_at = state.global_step
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_train_end(self, args, state, control, **kwargs):
        self._restore()
