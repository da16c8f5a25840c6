"""`shop-r1 replay`: replay recorded sessions against a site (`agent.runtime.replay`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from agent.runtime.replay import format_run_replay, replay, replay_run
from agent.runtime.trace import read_trace

__all__ = ["replay_command"]


def replay_command(
    path: Annotated[Path, typer.Argument(
        metavar="RUN_DIR_OR_SESSION_JSONL",
        help="A run directory (as simulate or one arm of abtest writes it): replay every trace; or one session "
             "trace (.jsonl).")],
    site: Annotated[str, typer.Option("--site", metavar="URL", help="The site to replay it on, e.g. the B variant.")],
    backend: Annotated[Literal["browser", "http"], typer.Option("--backend", help="The env backend.")] = "browser",
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Traces replayed at a time (a run dir).")
                           ] = 4,
) -> None:
    """Replay recorded sessions against a site. Exit 0: every trace replays cleanly; 1: some diverged; 2: bad input.

    With a run directory it prints how many traces replay cleanly and a table of where the others first diverge, by
    page kind and element: a regression check to run before a deploy.
    """
    if not path.exists():
        typer.echo(f"ERROR: no such session file or run directory: {path}", err=True)
        raise typer.Exit(2)
    if backend not in ("browser", "http"):
        typer.echo(f"ERROR: Expect --backend browser or http, actually: {backend!r}", err=True)
        raise typer.Exit(2)
    if path.is_dir():
        _replay_run_command(path, site, backend, concurrency)
    try:
        trace = read_trace(path)
        if trace.torn_lines:
            raise ValueError(f"{path}: {trace.torn_lines} unreadable line(s); a damaged trace cannot be "
                             "replayed faithfully")
        result = replay(trace, site, backend)  # type: ignore[arg-type]
    except (ValueError, OSError, RecursionError) as exc:  # ConnectionError is an OSError: the site cannot be opened
        typer.echo(f"ERROR: {str(exc).splitlines()[0][:300]}", err=True)
        raise typer.Exit(2) from None
    typer.echo(result.verdict())
    raise typer.Exit(0 if result.ok else 1)


def _replay_run_command(run_dir: Path, site: str, backend: str, concurrency: int) -> None:
    if not (run_dir / "sessions").is_dir():
        arms = sorted(p.name for p in run_dir.iterdir() if (p / "sessions").is_dir())
        hint = (f"; an A/B output holds one run per arm: replay {' or '.join(str(run_dir / a) for a in arms)}"
                if arms else "")
        typer.echo(f"ERROR: Expect a run directory with sessions/ inside, actually: {run_dir} has none{hint}",
                   err=True)
        raise typer.Exit(2)
    try:
        run = replay_run(run_dir, site, backend, concurrency=concurrency)  # type: ignore[arg-type]
    except (ValueError, OSError) as exc:
        typer.echo(f"ERROR: {str(exc).splitlines()[0][:300]}", err=True)
        raise typer.Exit(2) from None
    typer.echo(format_run_replay(run), nl=False)
    raise typer.Exit(run.exit_code)
