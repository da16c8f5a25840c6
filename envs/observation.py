"""What the env returns: the observation the model sees, and the step info that says what happened."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict

ElementKind = Literal["clickable", "input"]

# Why an action was invalid or a step went wrong. Each is reported in `info["error_kind"]`; none raises.
ErrorKind = Literal[
    "invalid_action",      # not a valid action object (bad JSON, unknown type, missing field)
    "unknown_name",        # no element on this page has that name
    "not_clickable",       # click on a text input
    "not_input",           # type_and_submit on something that is not a text input
    "blocked_origin",      # the action would leave the site's origin
    "navigation_timeout",  # the page did not load in time
    "navigation_error",    # the request failed (connection refused, bad URL, HTTP error page)
    "needs_javascript",    # the http backend cannot run the element's script
    "browser_crashed",     # the browser or page died; the env relaunched it
    "page_too_large",      # the page is larger than simplify.MAX_PAGE_CHARS (http: not loaded; browser: cut)
]


Outcome = Literal["purchase", "terminate", "truncated"]
"""How an episode ended, in `info["outcome"]` of its last step (None before)."""


class StepInfo(TypedDict):
    """The `info` of `reset()` and `step()`: what happened, never raised."""

    step: int
    """Steps taken so far in this episode (0 after `reset()`)."""
    valid: bool
    """False when the action could not be carried out (or the page had to be cut): `error` says why."""
    error: str | None
    error_kind: ErrorKind | None
    recovered: bool
    """The browser died during this call and the env relaunched it on the last page."""
    outcome: Outcome | None
    backend: Literal["browser", "http"]
    timing_ms: dict[str, float]
    """Milliseconds by phase: `action`, `navigation` (the driver's), `observe`, `simplify`, `total`."""
    action: NotRequired[dict[str, Any]]
    """The parsed action as a dict (`step()` only, when it parsed)."""


@dataclass(frozen=True)
class ElementRef:
    name: str
    kind: ElementKind


@dataclass(frozen=True)
class Observation:
    """The current page as the model sees it: simplified HTML whose interactables carry unique `name`s."""

    url: str
    title: str
    html: str
    elements: tuple[ElementRef, ...]
    screenshot: bytes | None = field(default=None, repr=False)
    last_action_error: str | None = None
    load_s: float | None = field(default=None, compare=False)
    """Seconds the visitor waited for this page after acting (the action and the navigation); None when unknown.
    Not part of equality: the same page is the same observation however long it took."""

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.elements]

    def kind_of(self, name: str) -> ElementKind | None:
        return next((e.kind for e in self.elements if e.name == name), None)
