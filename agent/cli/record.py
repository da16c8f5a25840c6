"""`shop-r1 record`: record a person shopping (`agent.record`). Playwright is imported only when it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from envs.origin import origin_of

__all__ = ["record_command"]


def record_command(
    site: Annotated[str, typer.Option("--site", metavar="URL", help="The store to shop in.")],
    out: Annotated[Path, typer.Option("--out", help="Run directory to write the session into.")] = Path("runs/human"),
    session_id: Annotated[str | None, typer.Option("--session-id", help="Default: human-<UTC time>.")] = None,
    intent: Annotated[str | None, typer.Option("--intent", help="What you shop for (stored in the trace).")] = None,
    ask_rationale: Annotated[bool, typer.Option("--ask-rationale", help="Show a 'Why?' box; its text is the "
                                                                        "rationale of your next action.")] = False,
    screenshots: Annotated[bool, typer.Option(help="Save a screenshot of every page.")] = True,
    headless: Annotated[bool, typer.Option(help="Run without a window (for scripted checks).")] = False,
) -> None:
    """Record yourself shopping: a browser opens; buy something or close the tab to end the session."""
    from playwright.async_api import Error as PlaywrightError

    from agent.record import record

    try:
        origin_of(site)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--site") from None
    try:
        path = record(site, out, headless, session_id=session_id, intent=intent, ask_rationale=ask_rationale,
                      screenshots=screenshots)
    except (FileExistsError, PlaywrightError) as exc:
        typer.echo(f"ERROR: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"recorded {path}")
