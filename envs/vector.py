"""N concurrent sessions stepping together. With the browser backend they share one Chromium, each in its own
context (own cookies, own history); with the http backend each has its own cookie jar."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from .env import AsyncShopEnv, Backend, EnvConfig


class AsyncVectorEnv:
    """`n` independent `AsyncShopEnv`s on the same site, reset and stepped concurrently.

    Unlike Gymnasium's vector envs there is no autoreset: a finished session stays finished until `reset(i)`.
    """

    def __init__(self, n: int, url: str, backend: Backend = "browser", config: EnvConfig | None = None, **kwargs):
        if n < 1:
            raise ValueError(f"Expect n >= 1, actually: {n}")
        self.browser = None
        if backend == "browser":
            from .browser import SharedBrowser

            self.browser = SharedBrowser()
        self.envs = [AsyncShopEnv(url, backend, config, browser=self.browser, **kwargs) for _ in range(n)]

    def __len__(self) -> int:
        return len(self.envs)

    async def reset(self, indices: Sequence[int] | None = None, options: dict[str, Any] | None = None):
        """Reset the given sessions (all by default); returns a list of `(obs, info)`."""
        idx = range(len(self.envs)) if indices is None else indices
        return await asyncio.gather(*(self.envs[i].reset(options=options) for i in idx))

    async def step(self, actions: Sequence[Any], indices: Sequence[int] | None = None):
        """Step sessions concurrently; `actions[k]` goes to session `indices[k]`. Returns a list of 5-tuples."""
        idx = list(range(len(self.envs))) if indices is None else list(indices)
        if len(actions) != len(idx):
            raise ValueError(f"Expect {len(idx)} actions, actually: {len(actions)}")
        return await asyncio.gather(*(self.envs[i].step(a) for i, a in zip(idx, actions, strict=True)))

    async def close(self) -> None:
        await asyncio.gather(*(env.close() for env in self.envs), return_exceptions=True)
        if self.browser is not None:
            await self.browser.close()
