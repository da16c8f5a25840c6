"""`shop-r1 serve-policy`: an OpenAI-compatible shopper server, with transformers (CPU path) or vLLM (GPU path).

Kept apart from `agent.serve.server` so that the CLI starts without importing torch.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shlex
import shutil
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

import typer

from agent.policy.base_models import adapter_base
from agent.wiring import serve_policy

from .usage import usage_error

logger = logging.getLogger(__name__)


def _vllm_launcher() -> list[str] | None:
    """How to start vLLM's CLI here: the `vllm` script, or the module with this interpreter; None without vLLM."""
    exe = shutil.which("vllm")
    if exe:
        return [exe]
    if importlib.util.find_spec("vllm") is not None:
        return [sys.executable, "-m", "vllm.entrypoints.cli.main"]
    return None


def vllm_command(model_dir: str | Path, *, served_model_name: str, host: str = "127.0.0.1", port: int = 8001,
                 max_model_len: int = 32768, max_batch: int = 64, tensor_parallel_size: int = 1,
                 dtype: str = "auto", structured_backend: str = "auto",
                 launcher: list[str] | None = None) -> list[str]:
    """The `vllm serve` argv (vLLM >= 0.11).

    A LoRA adapter directory (the default shopper is one: `adapter_config.json`) is served the way vLLM serves
    adapters: its base as the model, under `NAME-base`, and the adapter as a LoRA module named `NAME`
    (`--enable-lora --lora-modules NAME=DIR --max-lora-rank R`), so clients that ask for `NAME` get the adapter; the
    adapter's own chat template (`chat_template.jinja`, the one it was trained with) is the server's.

    - `--served-model-name`: the name clients pass as `model`.
    - `--max-model-len`: context length (the paper trains with up to 32k tokens).
    - `--max-num-seqs`: most sequences in flight (continuous batching).
    - `--structured-outputs-config.backend`: the guided-decoding backend for `response_format` json_schema
      (`auto`, `xgrammar`, `guidance`); structured outputs are on by default in vLLM's OpenAI server, this names it.
    - `--generation-config vllm`: ignore the model's `generation_config.json` sampling defaults (top_k,
      repetition_penalty), so requests sample exactly as asked, like the transformers engine.

    >>> vllm_command("m", served_model_name="shopper", launcher=["vllm"])[:4]
    ['vllm', 'serve', 'm', '--served-model-name']
    """
    lora = _lora_rank(Path(model_dir))
    model, name = str(model_dir), served_model_name
    if lora is not None:
        model, name = str(adapter_base(model_dir)), f"{served_model_name}-base"
    argv = [*(launcher or ["vllm"]), "serve", model, "--served-model-name", name,
            "--host", host, "--port", str(port), "--max-model-len", str(max_model_len),
            "--max-num-seqs", str(max_batch), "--dtype", dtype,
            "--structured-outputs-config.backend", structured_backend, "--generation-config", "vllm"]
    if lora is not None:
        argv += ["--enable-lora", "--lora-modules", f"{served_model_name}={model_dir}", "--max-lora-rank", str(lora)]
        template = Path(model_dir) / "chat_template.jinja"
        if template.is_file():
            argv += ["--chat-template", str(template)]
    if tensor_parallel_size > 1:
        argv += ["--tensor-parallel-size", str(tensor_parallel_size)]
    return argv


_VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The `--max-lora-rank` values vLLM accepts."""


def _lora_rank(model_dir: Path) -> int | None:
    """The `--max-lora-rank` that fits the LoRA adapter in `model_dir`, or None when it is not an adapter."""
    path = model_dir / "adapter_config.json"
    if not path.is_file():
        return None
    try:
        r = int(json.loads(path.read_text(encoding="utf-8"))["r"])
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"Expect a PEFT adapter config with a rank `r` in {path}, actually: unreadable") from None
    fits = [x for x in _VLLM_LORA_RANKS if x >= r]
    if not fits:
        raise ValueError(f"Expect a LoRA rank vLLM can serve (<= {_VLLM_LORA_RANKS[-1]}), actually: {r}")
    return fits[0]


class Engine(StrEnum):
    """Which engine serves the model."""

    transformers = "transformers"
    vllm = "vllm"


def serve_policy_command(
    model: Annotated[Path, typer.Option("--model", help="Model directory (save_pretrained output).")],
    host: Annotated[str, typer.Option(help="Interface to bind; 127.0.0.1 keeps it local.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8001,
    max_batch: Annotated[int, typer.Option("--max-batch", min=1,
                                           help="Most requests per generate (vllm: --max-num-seqs).")] = 8,
    device: Annotated[Literal["auto", "cpu", "cuda"], typer.Option(help="transformers engine: the device.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto (bf16 on GPU, fp32 on CPU), bf16, fp16 or fp32.")] = "auto",
    engine: Annotated[Engine, typer.Option(help="transformers (in this process) or vllm (exec `vllm serve`).")]
    = Engine.transformers,
    served_model_name: Annotated[str | None, typer.Option(
        help="The name clients pass as `model` (default: the directory name).")] = None,
    max_model_len: Annotated[int, typer.Option(min=1, help="vllm: context length in tokens.")] = 32768,
    tensor_parallel_size: Annotated[int, typer.Option(min=1, help="vllm: GPUs per replica.")] = 1,
    structured_backend: Annotated[str, typer.Option(
        help="vllm: guided decoding backend for response_format (auto, xgrammar, guidance).")] = "auto",
    batch_wait_ms: Annotated[float, typer.Option(
        min=0, help="transformers: how long a batch waits for more requests.")] = 5.0,
    max_tokens_cap: Annotated[int, typer.Option(
        min=1, help="transformers: the most completion tokens one request may ask for (more is a 400).")] = 2048,
    max_prompt_bytes: Annotated[int, typer.Option(
        min=1, help="transformers: the most bytes of message text one request may send (more is a 413).")]
    = 1_000_000,
    dry_run: Annotated[bool, typer.Option(help="Print what would run, and exit.")] = False,
) -> None:
    """Serve a shopper model behind an OpenAI-compatible API (/v1/chat/completions)."""
    if not model.is_dir():
        raise typer.BadParameter(f"Expect a model directory, actually: {model} does not exist", param_hint="--model")
    name = served_model_name or model.resolve().name
    if engine is Engine.vllm:
        launcher = _vllm_launcher()
        if launcher is None and not dry_run:
            raise usage_error("Expect vLLM for --engine vllm, actually: vLLM is not installed here (no `vllm` on "
                              "PATH, no `vllm` module). Install it on a GPU machine (`pip install vllm`, or "
                              "`pip install -e '.[vllm]'`), or use --engine transformers.", "--engine")
        try:
            argv = vllm_command(model, served_model_name=name, host=host, port=port, max_model_len=max_model_len,
                                max_batch=max_batch, tensor_parallel_size=tensor_parallel_size, dtype=dtype,
                                structured_backend=structured_backend, launcher=launcher)
        except (ValueError, FileNotFoundError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--model") from None
        if dry_run:
            typer.echo(shlex.join(argv))
            return
        logger.info("exec %s", shlex.join(argv))
        os.execvp(argv[0], argv)
    from agent.policy.engines import resolve_device, resolve_dtype  # torch

    try:
        resolve_dtype(dtype, resolve_device(device))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--device/--dtype") from None
    if dry_run:
        typer.echo(f"would serve {model} as {name!r} at http://{host}:{port}/v1 with transformers on {device}")
        return
    serve_policy(model, host, port, served_model_name=name, max_batch=max_batch, device=device, dtype=dtype,
                 batch_wait_ms=batch_wait_ms, default_max_tokens=512,
                 max_tokens_cap=max_tokens_cap, max_prompt_bytes=max_prompt_bytes)
