"""Option handling shared by the commands: `--ray` with or without a value."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer.core

from agent.runtime.distributed import LOCAL_RAY

if TYPE_CHECKING:  # typer (0.29) vendors click: its commands get this Context, not click's
    from typer._click import Context

__all__ = ["RayOptionCommand"]


class RayOptionCommand(typer.core.TyperCommand):
    """A typer command whose `--ray` option may come without a value: a bare `--ray` (last, or followed by another
    option) reads as `--ray local`. Typer no longer passes click's `flag_value` through, so the arguments are
    rewritten before parsing."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        rewritten: list[str] = []
        for i, arg in enumerate(args):
            if arg == "--":
                rewritten.extend(args[i:])
                break
            if arg == "--ray" and (i + 1 == len(args) or args[i + 1].startswith("-")):
                arg = f"--ray={LOCAL_RAY}"
            rewritten.append(arg)
        return super().parse_args(ctx, rewritten)
