"""Running shopper sessions: one policy, many personas, a site, and a trace per session.

`run_sessions` is what `shop-r1 simulate` runs. Sessions run concurrently (one browser shared by all, a context
each), and their policy calls are batched. Every step is appended to the session's trace as soon as it is taken.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from tqdm import tqdm

from agent.policy.base import Batcher, Policy, PolicyRequest
from agent.policy.persona import PersonaIntent
from agent.policy.prompt import HistoryItem
from envs.env import AsyncShopEnv, EnvConfig

from .trace import EndRecord, SessionHeader, StepRecord, TraceWriter, now_iso

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunConfig:
    """How to run a batch of sessions. Written to RUN_DIR/run.json."""

    site: str
    backend: Literal["browser", "http"] = "browser"
    concurrency: int = 4
    seed: int = 0
    max_steps: int = 30
    timeout_s: float = 15.0
    screenshots: bool = False
    playwright_trace: bool = False
    max_parse_failures: int = 3
    """End a session as `error` after this many unparseable policy outputs in a row."""
    fsync: bool = False
    step_watchdog_s: float | None = None
    """End a session as `error` when one env call (reset or step) runs this long; None: 3 * timeout_s + 30. The env
    bounds its own steps by `timeout_s`; this only catches a step that hangs anyway, so that it ends one session,
    never the run."""

    @property
    def watchdog_s(self) -> float:
        return self.step_watchdog_s if self.step_watchdog_s is not None else 3 * self.timeout_s + 30

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"Expect concurrency >= 1, actually: {self.concurrency}")
        if self.screenshots and self.backend != "browser":
            raise ValueError("screenshots need the browser backend; drop --screenshots or use --backend browser")


class StepWatchdog(Exception):
    """An env call outlived `RunConfig.watchdog_s`."""


async def _guarded(call: Any, what: str, limit_s: float) -> Any:
    try:
        return await asyncio.wait_for(call, limit_s)
    except TimeoutError:
        raise StepWatchdog(f"watchdog: {what} did not finish within {limit_s:g}s") from None


def session_seed(seed: int, session_id: str) -> int:
    """A stable per-session seed (unlike hash(), the same in every process)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{session_id}".encode()).digest()[:4], "big")


def session_ids(n: int) -> list[str]:
    return [f"s{i:05d}" for i in range(n)]


@dataclass
class SessionResult:
    session_id: str
    outcome: str
    steps: int
    path: Path
    error: str | None = None


async def run_session(
    env: AsyncShopEnv,
    ask: Callable[[PolicyRequest], Any],
    item: PersonaIntent,
    session_id: str,
    run_dir: Path,
    config: RunConfig,
    policy_info: dict[str, Any],
) -> SessionResult:
    """One shopper, start to end. Never raises for a bad action or bad model output; those are recorded."""
    writer = TraceWriter(run_dir, session_id, fsync=config.fsync)
    seed = session_seed(config.seed, session_id)
    steps = 0
    try:
        writer.write(SessionHeader(
            session_id=session_id, persona=item.persona.model_dump(mode="json"),
            intent=item.intent.model_dump(mode="json"), site=config.site, policy=policy_info.get("name", "?"),
            backend=config.backend, seed=seed, policy_config=policy_info,
        ))
        try:
            obs, _ = await _guarded(env.reset(seed=seed), "reset()", config.watchdog_s)
        except (ConnectionError, OSError) as exc:
            writer.write(EndRecord(outcome="error", steps=0, error=str(exc)))
            return SessionResult(session_id, "error", 0, writer.path, str(exc))
        history: list[HistoryItem] = []
        failures = 0
        while True:
            t0 = time.perf_counter()
            resp = await ask(PolicyRequest(session_id=session_id, persona=item.persona, intent=item.intent,
                                           history=tuple(history), observation=obs, step=steps, seed=seed))
            policy_ms = (time.perf_counter() - t0) * 1000
            shot = _save_screenshot(run_dir, session_id, steps, obs.screenshot)
            if resp.step is None:
                failures += 1
                steps += 1
                writer.write(StepRecord(
                    step=steps, url=obs.url, title=obs.title, observation=obs.html, rationale=None, action=None,
                    valid=False, error=f"unparseable policy output: {resp.error}", error_kind="parse_error",
                    timing_ms={"policy": policy_ms}, screenshot=shot, raw_output=resp.raw, prompt=resp.prompt,
                    next_url=obs.url, usage=resp.usage or None,
                ))
                if failures >= config.max_parse_failures:
                    error = f"{failures} unparseable policy outputs in a row"
                    writer.write(EndRecord(outcome="error", steps=steps, error=error, trace_ms=writer.write_ms))
                    return SessionResult(session_id, "error", steps, writer.path, error)
                if steps >= config.max_steps:
                    writer.write(EndRecord(outcome="truncated", steps=steps, trace_ms=writer.write_ms))
                    return SessionResult(session_id, "truncated", steps, writer.path)
                continue
            failures = 0
            action = resp.step.action
            t1 = time.perf_counter()
            next_obs, _, terminated, truncated, info = await _guarded(
                env.step(action), f"step {steps + 1}", config.watchdog_s)
            env_ms = (time.perf_counter() - t1) * 1000
            steps += 1
            writer.write(StepRecord(
                step=steps, url=obs.url, title=obs.title, observation=obs.html, rationale=resp.step.rationale,
                action=action, valid=info["valid"], error=info["error"], error_kind=info["error_kind"],
                timing_ms={"policy": policy_ms, "env": env_ms, **{f"env_{k}": v for k, v in info["timing_ms"].items()}},
                screenshot=shot, raw_output=resp.raw or None, prompt=resp.prompt, next_url=next_obs.url,
                recovered=info.get("recovered") or None, usage=resp.usage or None,
            ))
            history.append(HistoryItem(obs.url, obs.html, action, resp.step.rationale, info["error"], obs.load_s))
            obs = next_obs
            if terminated or truncated:
                final = _save_screenshot(run_dir, session_id, "final", obs.screenshot)
                writer.write(EndRecord(outcome=info["outcome"], steps=steps, final_url=obs.url,
                                       final_screenshot=final, trace_ms=writer.write_ms))
                return SessionResult(session_id, info["outcome"], steps, writer.path)
    except StepWatchdog as exc:
        log.error("session %s: %s", session_id, exc)
        writer.write(EndRecord(outcome="error", steps=steps, error=str(exc)))
        return SessionResult(session_id, "error", steps, writer.path, str(exc))
    except Exception as exc:  # a dead server or an env bug ends this session, not the run
        log.exception("session %s failed", session_id)
        writer.write(EndRecord(outcome="error", steps=steps, error=f"{type(exc).__name__}: {exc}"[:2000]))
        return SessionResult(session_id, "error", steps, writer.path, str(exc))
    finally:
        writer.close()


def _save_screenshot(run_dir: Path, session_id: str, step: int | str, png: bytes | None) -> str | None:
    if not png:
        return None
    rel = Path("screenshots") / session_id / (f"{step:03d}.png" if isinstance(step, int) else f"{step}.png")
    (run_dir / rel).parent.mkdir(parents=True, exist_ok=True)
    (run_dir / rel).write_bytes(png)
    return rel.as_posix()


def prepare_run_dir(run_dir: str | Path, n: int, ids: Sequence[str] | None = None) -> tuple[Path, list[str]]:
    """Create RUN_DIR/sessions and pick the session ids; refuse a run directory that already holds these sessions."""
    run_dir = Path(run_dir)
    (run_dir / "sessions").mkdir(parents=True, exist_ok=True)
    ids = list(ids) if ids is not None else session_ids(n)
    if len(ids) != n:
        raise ValueError(f"Expect one session id per item ({n}), actually: {len(ids)}")
    done_ids = {p.stem for p in (run_dir / "sessions").glob("*.jsonl")} & set(ids)
    if done_ids:
        raise FileExistsError(f"{run_dir} already has traces for {len(done_ids)} of these sessions; use a new --out")
    return run_dir, ids


async def run_sessions(
    run_dir: str | Path,
    policy: Policy,
    items: Sequence[PersonaIntent],
    config: RunConfig,
    *,
    ids: Sequence[str] | None = None,
    progress: bool = True,
    extra: dict[str, Any] | None = None,
) -> list[SessionResult]:
    """Run one session per persona/intent, `config.concurrency` at a time; write traces and run.json."""
    run_dir, ids = prepare_run_dir(run_dir, len(items), ids)
    (run_dir / "run.json").write_text(json.dumps({
        "config": asdict(config), "policy": policy.describe(), "sessions": len(items), "started_at": now_iso(),
        **(extra or {}),
    }, indent=2, default=str))

    browser = None
    if config.backend == "browser":
        from envs.browser import SharedBrowser

        browser = SharedBrowser()
    batcher = Batcher(policy)
    sem = asyncio.Semaphore(config.concurrency)
    env_config = EnvConfig(max_steps=config.max_steps, timeout_s=config.timeout_s, screenshots=config.screenshots)
    bar = progress_bar(len(items), progress)
    results: list[SessionResult] = []

    async def one(session_id: str, item: PersonaIntent) -> None:
        async with sem:
            trace_path = run_dir / "traces" / f"{session_id}.zip" if config.playwright_trace else None
            env = AsyncShopEnv(config.site, config.backend, env_config, browser=browser, trace_path=trace_path)
            try:
                with batcher.active():
                    result = await run_session(env, batcher.submit, item, session_id, run_dir, config,
                                               policy.describe())
            finally:
                try:
                    await asyncio.wait_for(env.close(), config.watchdog_s)
                except TimeoutError:
                    log.error("session %s: the env did not close within %gs", session_id, config.watchdog_s)
            results.append(result)
            bar(result)

    try:
        await asyncio.gather(*(one(sid, item) for sid, item in zip(ids, items, strict=True)))
    finally:
        if browser is not None:
            await browser.close()
        bar(None)
    order = {sid: i for i, sid in enumerate(ids)}
    return sorted(results, key=lambda r: order[r.session_id])


def progress_bar(total: int, enabled: bool) -> Callable[[SessionResult | None], None]:
    if not enabled:
        return lambda result: None

    bar = tqdm(total=total, desc="sessions", unit="session")
    counts: dict[str, int] = {}

    def update(result: SessionResult | None) -> None:
        if result is None:
            bar.close()
            return
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
        bar.set_postfix(counts, refresh=False)
        bar.update(1)

    return update
