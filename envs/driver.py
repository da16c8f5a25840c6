"""The contract between the env and its backends: what a driver does, whatever carries the page.

`envs.http.HttpDriver` (plain HTTP, no scripts) and `envs.browser.BrowserDriver` (Playwright + Chromium) both meet
`Driver`; `AsyncShopEnv` only ever talks to this protocol. A driver raises `envs.errors.ActionFailed` for an action
that could not be carried out (the page stays as it was) and `envs.errors.DriverCrashed` when it must `recover()`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .origin import OriginPolicy
from .simplify import Element


@runtime_checkable
class Driver(Protocol):
    """One visitor's page on one site."""

    policy: OriginPolicy
    """The origins the visitor may reach; every navigation is held to it."""
    url: str
    """The page's URL as the visitor sees it (`about:blank` before the first page)."""
    last_timing: dict[str, float]
    """Milliseconds of the last action: `action` (the input itself) and `navigation` (the page load after it)."""

    @property
    def document_url(self) -> str:
        """The URL of the document the server last sent (not one a script wrote with `history.pushState`)."""
        ...

    async def start(self) -> None:
        """Open what the driver needs (a client, a browser context); once, before anything else."""
        ...

    async def new_session(self) -> None:
        """A fresh visitor: no cookies, no history."""
        ...

    async def goto(self, url: str) -> None:
        """Open `url`; `ActionFailed` when it or any hop of its redirect chain leaves the allowed origins."""
        ...

    async def click(self, element: Element) -> None: ...

    async def type_and_submit(self, element: Element, text: str) -> None: ...

    async def snapshot(self) -> tuple[str, str]:
        """(url, html) of the current page, every interactable stamped with its `data-shop-id`."""
        ...

    async def screenshot(self) -> bytes | None:
        """A PNG of the viewport, or None where the backend has none."""
        ...

    async def abandon(self) -> None:
        """Give up whatever is loading and stay on (or return to) the last page."""
        ...

    async def recover(self) -> None:
        """After `DriverCrashed`: relaunch and reopen the last URL with the visitor's cookies."""
        ...

    async def close(self) -> None: ...
