"""Exceptions raised by drivers inside the env; the env turns them into `info` values at its boundary."""

from __future__ import annotations

from .observation import ErrorKind


class ActionFailed(Exception):
    """An action could not be carried out. The page is left as it was."""

    def __init__(self, kind: ErrorKind, message: str):
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message


class DriverCrashed(Exception):
    """The browser, context or page died; the driver must `recover()` before it is used again."""
