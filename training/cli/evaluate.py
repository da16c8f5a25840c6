"""`shop-r1 eval`: next-action prediction on a data directory's RL split (the paper's Tables 2-3), and optionally
session realism in the store (`training.evaluate`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from agent.cli.usage import usage_error
from agent.wiring import embedded_store
from training.evaluate import evaluate_model, format_eval_markdown, format_realism_markdown, session_realism

from .errors import user_errors

__all__ = ["eval_command"]


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
        raise usage_error(f"Expect exactly one of --model DIR or --policy NAME, actually: "
                          f"{'neither' if model is None else 'both'}")
    if not (data / "meta.json").is_file():
        raise usage_error(f"Expect a data directory (run `shop-r1 data build`), actually: {data} is not a data "
                          "directory (no meta.json)", "--data")
    if model is not None and not (model / "config.json").is_file():
        raise usage_error(f"Expect a model directory, actually: {model} is not a model directory (no config.json)",
                          "--model")
    target: Any = str(model) if model is not None else policy
    out.parent.mkdir(parents=True, exist_ok=True)
    predictions = out.with_name(out.stem + ".predictions.jsonl")
    with user_errors():
        result = evaluate_model(target, data, split=split, temperature=temperature, batch_size=batch_size,
                                max_new_tokens=max_new_tokens, limit=limit, context=context,  # type: ignore[arg-type]
                                seed=seed, device=device, predictions_path=predictions, progress=True)
    result["predictions_path"] = str(predictions)
    markdown = format_eval_markdown([result])
    typer.echo(result["table"])
    if realism_sessions:
        with user_errors(), _store(site, catalog) as url:
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
    with embedded_store("a", catalog) as (url, _):
        yield url
