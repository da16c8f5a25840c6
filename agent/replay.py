"""Replaying a recorded session against a site (a new build, the other store variant) to find where it diverges.

The replay opens the session's start page on `site_url` in a fresh env and re-executes each recorded action. Before
each action it checks that the shopper is on the recorded page (path and query, and title) and that the action's
element name exists; after it, that the action was as valid as before and that it led to the recorded page. The first
difference stops the replay and is reported as a `Divergence`:

- `missing_name`: the recorded element name is not on the current page (the action was valid when recorded);
- `invalid_action`: the action was valid when recorded and is invalid now (the error says why);
- `now_valid`: the action was invalid when recorded and is valid now;
- `different_page`: the page (path + query, or title) differs from the recorded one, or the session ended early.

Pages are compared on path and query only (so the origin does not matter), after masking parts that differ between
runs by design: order ids (`/order/<id>`) and cart line ids (`?added=<n>`); see `ReplayConfig.volatile`.
Unparseable recorded steps (`action` None) are skipped.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import typer
from pydantic import BaseModel, ConfigDict

from envs.env import AsyncShopEnv, EnvConfig

from .summary import page_of
from .trace import Trace, read_trace

__all__ = ["Divergence", "DivergenceKind", "ReplayConfig", "ReplayResult", "replay", "replay_async", "replay_command"]

log = logging.getLogger(__name__)

DivergenceKind = Literal["missing_name", "invalid_action", "now_valid", "different_page"]


class ReplayConfig(BaseModel):
    """How strictly to compare."""

    model_config = ConfigDict(frozen=True)

    compare_titles: bool = True
    """Also compare page titles (they carry the product title on product pages)."""
    volatile: tuple[str, ...] = (r"(?<=/order/)[^/?#]+", r"(?<=[?&]added=)[^&#]*")
    """Regexes of URL parts that legitimately differ between runs; matches are masked before comparing."""
    timeout_s: float = 15.0


class Divergence(BaseModel):
    """Where and how the replay left the recorded path. `step` is the recorded step number."""

    step: int
    kind: DivergenceKind
    expected: str
    actual: str
    message: str


class ReplayResult(BaseModel):
    ok: bool
    steps_replayed: int
    steps_skipped: int = 0
    divergence: Divergence | None = None
    session_id: str = ""
    site: str = ""
    backend: str = ""

    def verdict(self) -> str:
        """One line for the terminal."""
        where = f"{self.session_id} on {self.site} ({self.backend})"
        if self.ok:
            skipped = f", {self.steps_skipped} unparseable skipped" if self.steps_skipped else ""
            return f"OK: replayed {self.steps_replayed} steps of {where}{skipped}; no divergence"
        d = self.divergence
        assert d is not None
        return (f"DIVERGED at step {d.step} ({d.kind}) of {where} after {self.steps_replayed} clean steps: "
                f"{d.message}")


def swap_origin(url: str, site_url: str) -> str:
    """`url` with its scheme and host:port replaced by `site_url`'s."""
    u, s = urlsplit(url), urlsplit(site_url)
    return urlunsplit((s.scheme, s.netloc, u.path or "/", u.query, ""))


def _normalize(page: str, volatile: tuple[str, ...]) -> str:
    for pattern in volatile:
        page = re.sub(pattern, "*", page)
    return page


async def replay_async(
    trace: str | Path | Trace,
    site_url: str,
    backend: Literal["browser", "http"] = "browser",
    config: ReplayConfig | None = None,
) -> ReplayResult:
    """Re-execute a recorded session on `site_url`; stop at the first divergence. See the module docstring.

    Raises `ValueError` for an unreadable trace or a bad backend, `ConnectionError` when the site cannot be opened.
    """
    cfg = config or ReplayConfig()
    if backend not in ("browser", "http"):
        raise ValueError(f"Expect backend 'browser' or 'http', actually: {backend!r}")
    if urlsplit(site_url).scheme not in ("http", "https"):
        raise ValueError(f"Expect an http(s) site URL, actually: {site_url!r}")
    tr = trace if isinstance(trace, Trace) else read_trace(trace)
    result = ReplayResult(ok=True, steps_replayed=0, session_id=tr.session_id, site=site_url, backend=backend)
    start = swap_origin(tr.header.site, site_url)
    env = AsyncShopEnv(site_url, backend,
                       EnvConfig(max_steps=max(1, len(tr.steps) + 1), timeout_s=cfg.timeout_s))

    def page(url: str | None) -> str:
        return _normalize(page_of(url), cfg.volatile)

    def diverge(step: int, kind: DivergenceKind, expected: str, actual: str, message: str) -> ReplayResult:
        result.ok = False
        result.divergence = Divergence(step=step, kind=kind, expected=expected, actual=actual, message=message)
        log.info("replay of %s diverged at step %d: %s", tr.session_id, step, message)
        return result

    try:
        obs, _ = await env.reset(options={"url": start})
        done: str | None = None
        for rec in tr.steps:
            if rec.action is None:
                result.steps_skipped += 1
                continue
            if done:
                return diverge(rec.step, "different_page", page(rec.url), f"(session ended: {done})",
                               f"the replayed session already ended ({done}) but the trace goes on")
            if page(obs.url) != page(rec.url):
                return diverge(rec.step, "different_page", page(rec.url), page(obs.url),
                               f"expected to be on {page(rec.url)}, actually on {page(obs.url)}")
            if cfg.compare_titles and rec.title and obs.title != rec.title:
                return diverge(rec.step, "different_page", rec.title, obs.title,
                               f"expected the page titled {rec.title!r}, actually {obs.title!r}")
            action: dict[str, Any] = rec.action
            name = action.get("name")
            if rec.valid and isinstance(name, str) and name not in obs.names:
                return diverge(rec.step, "missing_name", name, "(absent)",
                               f"no element named {name!r} on {page(obs.url)}")
            obs, _, terminated, truncated, info = await env.step(action)
            if rec.valid and not info["valid"]:
                return diverge(rec.step, "invalid_action", "valid", f"{info['error_kind']}: {info['error']}",
                               f"{_show(action)} was valid, now {info['error_kind']}: {info['error']}")
            if not rec.valid and info["valid"]:
                return diverge(rec.step, "now_valid", f"{rec.error_kind}: {rec.error}", "valid",
                               f"{_show(action)} was invalid ({rec.error_kind}), now valid")
            if rec.next_url is not None and page(obs.url) != page(rec.next_url):
                return diverge(rec.step, "different_page", page(rec.next_url), page(obs.url),
                               f"{_show(action)} led to {page(obs.url)}, not {page(rec.next_url)}")
            result.steps_replayed += 1
            if terminated or truncated:
                done = info.get("outcome") or "ended"
        return result
    finally:
        await env.close()


def _show(action: dict[str, Any]) -> str:
    kind = action.get("type", "?")
    name = action.get("name")
    return f"{kind} {name!r}" if name else str(kind)


def replay(
    trace_path: str | Path | Trace,
    site_url: str,
    backend: Literal["browser", "http"] = "browser",
    config: ReplayConfig | None = None,
) -> ReplayResult:
    """Synchronous `replay_async` (safe to call from inside a running event loop: it then uses a worker thread)."""
    coro = replay_async(trace_path, site_url, backend, config)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=work, name="shop-r1-replay")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def replay_command(
    session_jsonl: Annotated[Path, typer.Argument(metavar="SESSION_JSONL", help="A session trace (.jsonl) to replay.")],
    site: Annotated[str, typer.Option("--site", metavar="URL", help="The site to replay it on, e.g. the B variant.")],
    backend: Annotated[Literal["browser", "http"], typer.Option("--backend", help="The env backend.")] = "browser",
) -> None:
    """Replay a recorded session against a site. Exit 0: no divergence; 1: diverged; 2: bad input."""
    if not session_jsonl.is_file():
        typer.echo(f"ERROR: no such session file: {session_jsonl}", err=True)
        raise typer.Exit(2)
    if backend not in ("browser", "http"):
        typer.echo(f"ERROR: Expect --backend browser or http, actually: {backend!r}", err=True)
        raise typer.Exit(2)
    try:
        trace = read_trace(session_jsonl)
        if trace.torn_lines:
            raise ValueError(f"{session_jsonl}: {trace.torn_lines} unreadable line(s); a damaged trace cannot be "
                             "replayed faithfully")
        result = replay(trace, site, backend)  # type: ignore[arg-type]
    except (ValueError, OSError, RecursionError) as exc:  # ConnectionError is an OSError: the site cannot be opened
        typer.echo(f"ERROR: {str(exc).splitlines()[0][:300]}", err=True)
        raise typer.Exit(2) from None
    typer.echo(result.verdict())
    raise typer.Exit(0 if result.ok else 1)
