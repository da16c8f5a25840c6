"""`shop-r1 train sft|rl`: the trainers' commands, registered on the main CLI with `register_train(app)`.

    shop-r1 train sft --config configs/tiny-cpu.yaml [--set key=value ...]
    shop-r1 train rl  --config configs/tiny-cpu.yaml [--online] [--set key=value ...]

`--set` overrides any config field (`learning_rate=1e-4`, `rl.max_steps=2`; see `training.configs.load_config`).
A bad config or override exits with status 2 and says why; Ctrl-C saves a checkpoint and exits with status 130
(resume with `--set resume_from_checkpoint=last`). The trainers and their configs import torch and TRL, so they are
imported only when a command runs.

Multi-GPU: `accelerate launch --config_file configs/accelerate/fsdp.yaml -m training.cli.train rl --config ...`
runs this module's own app (the same two commands without the `train` prefix).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from agent.cli.usage import usage_error

__all__ = ["app", "register_train", "run_stage"]

log = logging.getLogger(__name__)

ConfigOption = Annotated[Path, typer.Option(
    "--config", "-c", help="YAML config file, or a packaged config by name: tiny-cpu or paper-3b.")]
OnlineOption = Annotated[bool, typer.Option("--online", help="Roll out in the live store (not in the paper).")]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config field: key=value (repeatable; sft.key / rl.key for one stage)."),
]


def run_stage(stage: str, config_path: Path, overrides: list[str], *, online: bool = False) -> Path:
    """Load the stage's config and train. Raises `typer.Exit` (2 on a bad config, 130 on Ctrl-C)."""
    from training.callbacks import TrainingInterrupted  # transformers
    from training.configs import ConfigError, load_config, parse_overrides  # trl

    try:
        values = parse_overrides(overrides)
        if online:
            values["online"] = True
        config = load_config(config_path, stage, values)
    except ConfigError as exc:
        raise usage_error(str(exc)) from None
    try:
        if stage == "sft":
            from training.sft import train_sft  # torch, trl

            out = train_sft(config)
        else:
            from training.grpo import train_rl  # torch, trl

            out = train_rl(config)
    except TrainingInterrupted as exc:
        typer.secho(f"interrupted: checkpoint {exc.checkpoint}; resume with --set resume_from_checkpoint=last",
                    fg="yellow", err=True)
        raise typer.Exit(130) from None
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise usage_error(str(exc)) from None
    typer.echo(f"model saved to {out}")
    return out


def _commands(target: typer.Typer) -> None:
    @target.command("sft")
    def sft(config: ConfigOption, set_: SetOption = None) -> None:
        """SFT cold start on DATA_DIR/sft (whole sessions, loss on rationale + action only)."""
        run_stage("sft", config, set_ or [])

    @target.command("rl")
    def rl(
        config: ConfigOption,
        online: OnlineOption = False,
        set_: SetOption = None,
    ) -> None:
        """GRPO with the Shop-R1 reward: offline on DATA_DIR/rl (the paper), or --online in the store."""
        run_stage("rl", config, set_ or [], online=online)


def register_train(app: typer.Typer) -> None:
    """Add `train sft` and `train rl` to the `shop-r1` app."""
    train = typer.Typer(help="Train the shopper: SFT cold start, then GRPO with the Shop-R1 reward.",
                        no_args_is_help=True)
    _commands(train)
    app.add_typer(train, name="train")


app = typer.Typer(help="shop-r1 training (sft, rl).", no_args_is_help=True, pretty_exceptions_enable=False,
                  add_completion=False)
_commands(app)


@app.callback()
def _root(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


if __name__ == "__main__":
    app()
