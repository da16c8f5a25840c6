"""`shop-r1 data build|import-opera|to-verl`: training datasets (SFT and RL) from traces, from OPeRA, and for verl.

The libraries: `training.data` (the datasets), `training.opera` (the OPeRA import), `training.verl_data` (verl's
parquet format).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from agent.cli.usage import usage_error
from training import verl_reward
from training.data import SPLITS, DataConfig, DataError, budget_for_config, build_datasets, parse_split
from training.opera import OperaConfig, import_opera
from training.verl_data import convert_to_verl

from .errors import user_errors

__all__ = ["data_app", "data_build", "data_import_opera", "to_verl_command"]

data_app = typer.Typer(help="Build training datasets (SFT and RL) from traces.", no_args_is_help=True)

SplitOpt = Annotated[str, typer.Option("--split", help="Train/validation/test fractions of sessions.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the session split.")]
BudgetOpt = Annotated[int, typer.Option(min=1, help="Prompt budget in tokens (RL prompts, whole SFT sessions).")]
TokenizerOpt = Annotated[
    Path | None, typer.Option("--tokenizer", help="Count tokens with this model directory's tokenizer.")]


@data_app.command("build")
def data_build(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories (each with sessions/*.jsonl).")],
    out: Annotated[Path | None, typer.Option(
        help="Data directory to write (sft/, rl/, meta.json). Default: the --config's common.data_dir.")] = None,
    split: SplitOpt = "0.8/0.1/0.1",
    seed: SeedOpt = 0,
    max_context_tokens: Annotated[int | None, typer.Option(
        min=1, help="Prompt budget in tokens (RL prompts, whole SFT sessions). Default: the --config's, else 3584.")
    ] = None,
    config: Annotated[str | None, typer.Option(
        "--config", help="The training YAML (path or packaged name: paper-3b, tiny-cpu) the data is for: the budget "
                         "fills its prompt lengths, min(rl.max_prompt_length, sft.max_length) - 64 template tokens "
                         "(paper-3b: 32,704, the paper's 32k whole-session contexts).")] = None,
    tokenizer: TokenizerOpt = None,
    sft_rows: Annotated[Literal["sessions", "steps"], typer.Option(
        help="SFT rows: 'sessions' (whole sessions, the paper's) or 'steps' (one prompt/completion row per step, "
             "the page shown).")] = "sessions",
    persona: Annotated[bool, typer.Option(
        "--persona/--no-persona",
        help="Show who the shopper is and what they want in every prompt (Customer-R1's conditioning); "
             "--no-persona: the paper's exact context, pages and actions only (the intent is hidden too).")] = True,
) -> None:
    """Build DATA_DIR/sft and DATA_DIR/rl from run directories, split by session.

    Token counts are approximate (3.5 characters a token) until a tokenizer exists: after `shop-r1 model init`,
    rebuild with `--tokenizer MODEL_DIR` for exact budgets. For the paper's run:
    `shop-r1 data build RUN_DIR --config paper-3b --tokenizer QWEN_DIR` writes 32k-token whole-session contexts to
    the config's data_dir.
    """
    with user_errors():
        fractions = parse_split(split)
        training_config = None
        if config is not None:
            budget = budget_for_config(config)
            training_config = budget.config
            if max_context_tokens is not None and max_context_tokens != budget.max_context_tokens:
                raise DataError(f"Expect --max-context-tokens to agree with --config {config} "
                                f"({budget.max_context_tokens}) or to be left out, actually: {max_context_tokens}")
            max_context_tokens = budget.max_context_tokens
            out = out or (Path(budget.data_dir) if budget.data_dir else None)
        if out is None:
            raise DataError("Expect --out (or a --config with common.data_dir), actually: neither")
        if max_context_tokens is None:
            max_context_tokens = DataConfig.max_context_tokens
        for run_dir in run_dirs:
            if not run_dir.is_dir():
                raise ValueError(f"{run_dir}: no such run directory")
        if tokenizer is not None and not tokenizer.is_dir():
            raise ValueError(f"--tokenizer {tokenizer}: no such model directory")
        data_config = DataConfig(split=fractions, seed=seed, max_context_tokens=max_context_tokens,
                                 tokenizer_dir=str(tokenizer) if tokenizer is not None else None, sft_rows=sft_rows,
                                 persona=persona, training_config=training_config)
        meta = build_datasets(run_dirs, out, config=data_config)
    _report_data(out, meta)


@data_app.command("import-opera")
def data_import_opera(
    directory: Annotated[Path, typer.Argument(help="Directory with OPeRA's action, session and user tables.")],
    out: Annotated[Path, typer.Option(help="Data directory to write; the traces go to OUT/opera.")],
    split: SplitOpt = "0.8/0.1/0.1",
    seed: SeedOpt = 0,
    max_context_tokens: BudgetOpt = DataConfig.max_context_tokens,
    tokenizer: TokenizerOpt = None,
    intent: Annotated[str | None, typer.Option(help="Intent text of sessions without one.")] = None,
) -> None:
    """Import OPeRA (CSV, parquet or JSONL tables) as traces, then build the datasets from them."""
    with user_errors():
        fractions = parse_split(split)
        config = OperaConfig(default_intent=intent) if intent else OperaConfig()
        meta = import_opera(directory, out, split=fractions, seed=seed, max_context_tokens=max_context_tokens,
                            tokenizer_dir=tokenizer, config=config)
    opera = meta["opera"]
    typer.echo(f"OPeRA: {opera.get('sessions', 0)} sessions, {opera.get('steps', 0)} steps "
               f"({opera.get('steps_with_rationale', 0)} with a rationale) -> {opera['run_dir']}")
    _report_data(out, meta)


def _report_data(out: Path, meta: dict[str, Any]) -> None:
    counts = meta["counts"]
    typer.echo(f"wrote {out} in {meta['build_seconds']}s")
    typer.echo("split       sessions  sft rows  rl rows  rl gold types")
    for name, c in counts.items():
        types = ", ".join(f"{k} {v}" for k, v in c["rl_gold_types"].items())
        typer.echo(f"{name:<11} {c['sessions']:>8}  {c['sft_rows']:>8}  {c['rl_rows']:>7}  {types}")
    budget = meta["prompt_budget"]
    rl = budget["rl_prompt"]
    typer.echo(f"prompt budget {budget['max_context_tokens']} tokens ({budget['token_counter']}): "
               f"{rl['with_dropped']}/{rl['prompts']} RL prompts dropped earlier pages, "
               f"{rl['truncated_current']} cut the current page, {rl['over_budget']} still over")


@data_app.command("to-verl")
def to_verl_command(
    data_dir: Annotated[Path, typer.Argument(help="A data directory written by `shop-r1 data build`.")],
    out: Annotated[Path, typer.Option(help="Directory for <split>.parquet in verl's format.")],
    splits: Annotated[str, typer.Option(help="Comma-separated splits to write.")] = ",".join(SPLITS),
    context: Annotated[Literal["all", "latest"], typer.Option(
        help="all: every earlier page (the paper); latest: the current page only (Table 5 ablation).")] = "all",
) -> None:
    """Write the RL dataset as verl parquet files (data_source, prompt, ability, reward_model, extra_info)."""
    try:
        meta = convert_to_verl(data_dir, out, [s.strip() for s in splits.split(",") if s.strip()],
                               context)  # type: ignore[arg-type]
    except DataError as exc:
        raise usage_error(str(exc)) from None
    for split, info in meta["splits"].items():
        typer.echo(f"{split}: {info['rows']} rows -> {out / info['file']}")
    typer.echo(f"reward: custom_reward_function.path={Path(verl_reward.__file__)} "
               "custom_reward_function.name=compute_score")
