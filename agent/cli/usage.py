"""The one error style of the `shop-r1` command line: Click's usage error (exit code 2), worded "Expect …, actually: …".

Options with fixed choices are `Literal`s, so typer itself rejects a bad value in this same style and lists the
choices in `--help`. Commands raise `usage_error(...)` for everything else a user got wrong.

>>> str(usage_error("Expect a or b, actually: 'c'", "--variant"))
"Expect a or b, actually: 'c'"
"""

from __future__ import annotations

import typer

# typer ships its own click: only its exception classes get its usage-error handling (a plain click.UsageError
# would surface as a traceback with exit code 1).
UsageError: type[Exception] = typer.BadParameter.__mro__[1]


def usage_error(message: str, param: str | None = None) -> Exception:
    """The exception to raise: `raise usage_error("Expect …, actually: …", "--option")`."""
    if param is not None:
        return typer.BadParameter(message, param_hint=param)
    return UsageError(message)
