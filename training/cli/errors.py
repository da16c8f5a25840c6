"""The training commands' input errors: bad input becomes `agent.cli.usage_error` (exit code 2, one line), never a
traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from agent.cli.usage import usage_error

__all__ = ["USER_ERRORS", "user_errors"]

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, NotADirectoryError, PermissionError)
"""What a command's library raises for bad input (`training.data.DataError` is a ValueError)."""


@contextmanager
def user_errors() -> Iterator[None]:
    """`USER_ERRORS` raised inside become `usage_error(str(exc))`."""
    try:
        yield
    except USER_ERRORS as exc:
        raise usage_error(str(exc)) from None
