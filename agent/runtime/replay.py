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

`replay_run` replays every trace of a run directory (as `shop-r1 simulate` or one arm of `shop-r1 abtest` wrote it),
`concurrency` at a time, and `RunReplay.groups` gathers the first divergences by page kind (the first part of the
page's path: `product` for `/product/...`, `home` for `/`), divergence kind and element (the name's last dotted part,
so `acme_trail.buy_now` and `lamp.buy_now` group as `*.buy_now`). `shop-r1 replay RUN_DIR --site URL` prints that
table and exits 0 only when every trace replays cleanly: the check a UX team runs before a deploy.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.table import Table

from envs.env import AsyncShopEnv, EnvConfig

from .trace import Trace, load_run, page_of, read_trace

__all__ = ["Divergence", "DivergenceGroup", "DivergenceKind", "ReplayConfig", "ReplayResult", "RunReplay",
           "format_run_replay", "page_kind", "replay", "replay_async", "replay_run",
           "replay_run_async"]

log = logging.getLogger(__name__)
T = TypeVar("T")

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
    """Where and how the replay left the recorded path. `step` is the recorded step number, `page` the recorded page
    of that step (path and query, volatile parts masked) and `element` the name the step acted on (None when the page
    itself differed before the step acted)."""

    step: int
    kind: DivergenceKind
    expected: str
    actual: str
    message: str
    page: str = ""
    element: str | None = None


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


def page_kind(page: str) -> str:
    """The kind of a page: the first segment of its path, `home` for the root.

    >>> page_kind("/product/B0X?from=%2Fsearch"), page_kind("/search?q=shoes"), page_kind("/"), page_kind("")
    ('product', 'search', 'home', 'home')
    """
    first = urlsplit(page).path.strip("/").split("/", 1)[0]
    return first or "home"


def element_group(name: str | None) -> str:
    """How an element name is grouped across traces: its last dotted part, the prefix starred (the prefix names the
    section or product the element sits in); `(page)` for None.

    >>> element_group("acme_trail.buy_now"), element_group("place_order"), element_group(None)
    ('*.buy_now', 'place_order', '(page)')
    """
    if name is None:
        return "(page)"
    head, dot, last = name.rpartition(".")
    return f"*.{last}" if dot and head else name


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
    *,
    browser: Any = None,
) -> ReplayResult:
    """Re-execute a recorded session on `site_url`; stop at the first divergence. See the module docstring.

    `browser` is an `envs.browser.SharedBrowser` to open the session in (the browser backend; default: its own).
    Raises `ValueError` for an unreadable trace or a bad backend, `ConnectionError` when the site cannot be opened.
    """
    cfg = config or ReplayConfig()
    _check_target(site_url, backend)
    tr = trace if isinstance(trace, Trace) else read_trace(trace)
    result = ReplayResult(ok=True, steps_replayed=0, session_id=tr.session_id, site=site_url, backend=backend)
    start = swap_origin(tr.header.site, site_url)
    env = AsyncShopEnv(site_url, backend,
                       EnvConfig(max_steps=max(1, len(tr.steps) + 1), timeout_s=cfg.timeout_s), browser=browser)

    def page(url: str | None) -> str:
        return _normalize(page_of(url), cfg.volatile)

    where: dict[str, Any] = {"page": "", "element": None}  # the step being replayed

    def diverge(step: int, kind: DivergenceKind, expected: str, actual: str, message: str) -> ReplayResult:
        result.ok = False
        result.divergence = Divergence(step=step, kind=kind, expected=expected, actual=actual, message=message,
                                       **where)
        log.info("replay of %s diverged at step %d: %s", tr.session_id, step, message)
        return result

    try:
        obs, _ = await env.reset(options={"url": start})
        done: str | None = None
        for rec in tr.steps:
            action = rec.action_dict
            if action is None:
                result.steps_skipped += 1
                continue
            where.update(page=page(rec.url), element=None)
            if done:
                return diverge(rec.step, "different_page", page(rec.url), f"(session ended: {done})",
                               f"the replayed session already ended ({done}) but the trace goes on")
            if page(obs.url) != page(rec.url):
                return diverge(rec.step, "different_page", page(rec.url), page(obs.url),
                               f"expected to be on {page(rec.url)}, actually on {page(obs.url)}")
            if cfg.compare_titles and rec.title and obs.title != rec.title:
                return diverge(rec.step, "different_page", rec.title, obs.title,
                               f"expected the page titled {rec.title!r}, actually {obs.title!r}")
            name = action.get("name")
            where["element"] = name if isinstance(name, str) else f"({action.get('type', '?')})"
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


def _check_target(site_url: str, backend: str) -> None:
    if backend not in ("browser", "http"):
        raise ValueError(f"Expect backend 'browser' or 'http', actually: {backend!r}")
    if urlsplit(site_url).scheme not in ("http", "https"):
        raise ValueError(f"Expect an http(s) site URL, actually: {site_url!r}")


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
    return _run_sync(replay_async(trace_path, site_url, backend, config))


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(coro)`, in a worker thread when this thread already runs an event loop."""
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


class DivergenceGroup(BaseModel):
    """First divergences of several traces at the same kind of page, of the same kind, on the same element group."""

    page_kind: str
    kind: DivergenceKind
    element: str
    sessions: list[str]
    example: Divergence  # the first session's


class RunReplay(BaseModel):
    """Every trace of a run replayed on one site: a result per replayed trace, a message per trace that could not be
    replayed (unreadable, damaged, or the site failed to open)."""

    run_dir: str
    site: str
    backend: str
    results: list[ReplayResult]
    failed: list[str] = Field(default_factory=list)

    @property
    def clean(self) -> int:
        return sum(r.ok for r in self.results)

    @property
    def diverged(self) -> int:
        return len(self.results) - self.clean

    @property
    def exit_code(self) -> int:
        """0: every trace replayed cleanly; 1: some diverged; 2: some could not be replayed (an incomplete check)."""
        return 2 if self.failed else (1 if self.diverged else 0)

    def groups(self) -> list[DivergenceGroup]:
        """The first divergences grouped by page kind, divergence kind and element group; largest group first."""
        groups: dict[tuple[str, str, str], DivergenceGroup] = {}
        for r in self.results:
            d = r.divergence
            if d is None:
                continue
            key = (page_kind(d.page), d.kind, element_group(d.element))
            if key in groups:
                groups[key].sessions.append(r.session_id)
            else:
                groups[key] = DivergenceGroup(page_kind=key[0], kind=d.kind, element=key[2],
                                              sessions=[r.session_id], example=d)
        return sorted(groups.values(), key=lambda g: (-len(g.sessions), g.page_kind, g.kind, g.element))


async def replay_run_async(
    run_dir: str | Path,
    site_url: str,
    backend: Literal["browser", "http"] = "browser",
    config: ReplayConfig | None = None,
    *,
    concurrency: int = 4,
) -> RunReplay:
    """Replay every session trace of `run_dir` on `site_url`, `concurrency` at a time (one shared browser).

    Raises `FileNotFoundError` when `run_dir` has no `sessions/`, `ValueError` when it holds no trace or the backend
    or URL is bad. Traces that cannot be replayed are listed in `RunReplay.failed`, not raised.
    """
    if concurrency < 1:
        raise ValueError(f"Expect concurrency >= 1, actually: {concurrency}")
    _check_target(site_url, backend)
    traces, unreadable = load_run(run_dir)
    if not traces and not unreadable:
        raise ValueError(f"Expect session traces in {Path(run_dir) / 'sessions'}, actually: none")
    failed = list(unreadable)
    ready = []
    for t in traces:
        if t.torn_lines:
            failed.append(f"{t.path.name if t.path else t.session_id}: {t.torn_lines} unreadable line(s); a damaged "
                          "trace cannot be replayed faithfully")
        else:
            ready.append(t)
    shared = None
    if backend == "browser" and ready:
        from envs.browser import SharedBrowser

        shared = SharedBrowser()
    sem = asyncio.Semaphore(concurrency)

    async def one(t: Trace) -> ReplayResult | str:
        async with sem:
            try:
                return await replay_async(t, site_url, backend, config, browser=shared)
            except (ValueError, OSError, RecursionError) as exc:  # ConnectionError: the site did not open
                return f"{t.session_id}: {str(exc).splitlines()[0][:300]}"

    try:
        outcomes = await asyncio.gather(*(one(t) for t in ready))
    finally:
        if shared is not None:
            await shared.close()
    results = [o for o in outcomes if isinstance(o, ReplayResult)]
    failed += [o for o in outcomes if isinstance(o, str)]
    return RunReplay(run_dir=str(run_dir), site=site_url, backend=backend, results=results, failed=failed)


def replay_run(
    run_dir: str | Path,
    site_url: str,
    backend: Literal["browser", "http"] = "browser",
    config: ReplayConfig | None = None,
    *,
    concurrency: int = 4,
) -> RunReplay:
    """Synchronous `replay_run_async`."""
    return _run_sync(replay_run_async(run_dir, site_url, backend, config, concurrency=concurrency))


def format_run_replay(run: RunReplay, width: int = 120, max_sessions: int = 20) -> str:
    """The verdict line, the table of first divergences by page kind and element, and one line per diverged trace."""
    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, force_terminal=False, highlight=False)
    total = len(run.results) + len(run.failed)
    head = f"{'OK' if run.exit_code == 0 else 'DIVERGED' if run.exit_code == 1 else 'INCOMPLETE'}: " \
           f"{run.clean} of {total} traces of {run.run_dir} replay cleanly on {run.site} ({run.backend})"
    extra = [f"{run.diverged} diverged"] if run.diverged else []
    extra += [f"{len(run.failed)} could not be replayed"] if run.failed else []
    console.print(head + (f"; {', '.join(extra)}" if extra else ""))
    groups = run.groups()
    if groups:
        table = Table(title="Where the replays first diverge", title_justify="left")
        for column, justify in (("page kind", "left"), ("divergence", "left"), ("element", "left"),
                                ("traces", "right"), ("example", "left")):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for g in groups:
            d = g.example
            table.add_row(g.page_kind, g.kind, g.element, str(len(g.sessions)),
                          f"{g.sessions[0]} step {d.step}: expected {_cut(d.expected)}, got {_cut(d.actual)}")
        console.print(table)
        diverged = [r for r in run.results if not r.ok]
        for r in diverged[:max_sessions]:
            console.print(f"  {r.verdict()}", soft_wrap=True)
        if len(diverged) > max_sessions:
            console.print(f"  ... and {len(diverged) - max_sessions} more diverged traces")
    for message in run.failed[:max_sessions]:
        console.print(f"  could not replay {message}", soft_wrap=True)
    if len(run.failed) > max_sessions:
        console.print(f"  ... and {len(run.failed) - max_sessions} more")
    return buf.getvalue()


def _cut(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
