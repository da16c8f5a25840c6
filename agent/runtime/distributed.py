"""Distributed rollouts on Ray: the sessions of one run spread over actors, each with its own env and policy.

`run_sessions_ray` is `agent.runtime.session.run_sessions` on a Ray cluster (a local one by default). It is what
`shop-r1 simulate --ray [ADDRESS] --actors N` runs.

- **Actors.** Each `SessionActor` builds its own policy from a spec (`make_policy(name, **options)`), so nothing heavy
  is pickled, and owns its env backend: one shared Chromium for the browser backend (a context per session, as in
  `run_sessions`), or plain HTTP. Within an actor, up to `config.concurrency` sessions run at once and batch their
  policy calls through one `Batcher`; the run's total concurrency is `actors × concurrency`.
- **Work stealing.** The driver holds the queue of session ids and hands the next one to whichever actor has a free
  slot, so a fast actor takes more sessions than a slow one.
- **Traces.** Actors write `RUN_DIR/sessions/<id>.jsonl` themselves with `agent.runtime.session.run_session`: the same
  schema, header, step and end lines as a local run, and with the scripted policy and the same seeds the same
  actions (seeds derive from `(config.seed, session id)`, never from the actor). On a multi-node cluster RUN_DIR
  must be on a filesystem every node mounts at the same path, the package must be importable there (install it, or
  pass `runtime_env={"working_dir": ...}`), and the site must be reachable from every node (`--embedded` serves on
  this machine's loopback, which only a local Ray can reach).

**Attempts: no trace line lost or duplicated.** A session's file is written by exactly one process at a time. When
the actor running a session dies (or its task fails outside `run_session`), the driver:

1. kills that actor for good (`ray.kill`) and starts a replacement in its slot;
2. keeps the session's file as its result if the file is already complete (header, steps, end line: the actor died
   after finishing the session);
3. otherwise moves the attempt's file aside, untouched, to `sessions/<id>.attempt<k>.jsonl.partial` (k = 1, 2, ...).
   A rename keeps the inode, so even a writer that outlived its actor could only ever append to the `.partial` file;
4. queues the session again for a fresh attempt on any live actor, while it has had at most `max_retries` retries;
5. otherwise marks it `error`: the driver writes a new `sessions/<id>.jsonl` holding the last attempt's complete lines
   (its header, or a header rebuilt from the persona if none was written; a torn last line is dropped) followed by
   one `error` end line that names the attempts.

So `sessions/<id>.jsonl` always holds exactly one attempt: one header, steps 1..n without gaps, and one end line.
Earlier attempts stay on disk as `.partial` files, which `iter_traces` (a `*.jsonl` glob) does not read. Every
failed attempt counts against `max_retries`, whatever killed it. `run.json` records the Ray settings, the actors,
and after the run the retries, the failed attempts and the actor replacements.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agent.policy import Batcher, PolicyRequest, PolicyResponse, make_policy
from agent.policy.persona import PersonaIntent
from envs.env import AsyncShopEnv, EnvConfig

from .session import RunConfig, SessionResult, prepare_run_dir, progress_bar, run_session, session_seed
from .trace import EndRecord, SessionHeader, now_iso

__all__ = ["LOCAL_RAY", "RayUnavailableError", "SessionActor", "check_reachable", "import_ray",
           "ray_address", "run_sessions_ray"]

log = logging.getLogger(__name__)

LOCAL_RAY = "local"
"""The value of a bare `--ray`: a Ray instance started on this machine."""
RAY_HINT = "pip install 'shop-r1[ray]' (or 'ray[default]')"
_SECRET_HINTS = ("key", "token", "secret", "password")


class RayUnavailableError(ImportError):
    """Ray is not installed; the message says how to install it."""


def import_ray() -> Any:
    """The `ray` module, or `RayUnavailableError` with the install command."""
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailableError(f"distributed rollouts need Ray, which is not installed ({exc}): {RAY_HINT}") \
            from None
    return ray


def ray_address(value: str | None) -> str | None:
    """The `address` for `ray.init` from the CLI's `--ray` value: None (a local instance) for a bare `--ray`.

    >>> ray_address("local"), ray_address("auto"), ray_address("ray://head:10001")
    (None, 'auto', 'ray://head:10001')
    """
    return None if value in (None, "", LOCAL_RAY) else value


# --------------------------------------------------------------------------------------------------------------------
# The actor


class SessionActor:
    """One Ray actor's worth of shoppers: its own policy, its own env backend, many sessions.

    Plain Python so that this module imports without Ray; `run_sessions_ray` wraps it with `ray.remote`. Its async
    `run` makes it an async actor: the sessions it is given run concurrently on its event loop.

    `crash_after` is a fault-injection hook for tests: `{session_id: n}` makes the actor's process exit
    (`os._exit(1)`, no cleanup, like a killed worker) when that session's *first* attempt asks for step n + 1, i.e.
    after n step lines are written.
    """

    def __init__(self, run_dir: str, policy_spec: dict[str, Any], config: RunConfig,
                 crash_after: dict[str, int] | None = None) -> None:
        options = dict(policy_spec)
        self.policy = make_policy(options.pop("name"), **options)
        self.run_dir = Path(run_dir)
        self.config = config
        self.crash_after = dict(crash_after or {})
        self.env_config = EnvConfig(max_steps=config.max_steps, timeout_s=config.timeout_s,
                                    screenshots=config.screenshots)
        self._browser: Any = None
        self._batcher: Any = None

    def ready(self) -> dict[str, Any]:
        """Where this actor runs and what its policy is (the driver waits on it before queueing sessions)."""
        return {"pid": os.getpid(), "host": socket.gethostname(), "policy": self.policy.describe()}

    async def run(self, session_id: str, item: PersonaIntent, attempt: int) -> SessionResult:
        """Run one session, start to end, writing its trace into the run directory."""
        if self._batcher is None:
            self._batcher = Batcher(self.policy)
        if self.config.backend == "browser" and self._browser is None:
            from envs.browser import SharedBrowser

            self._browser = SharedBrowser()
        batcher = self._batcher
        crash_step = self.crash_after.get(session_id) if attempt == 1 else None

        async def crashing_ask(request: PolicyRequest) -> PolicyResponse:
            if crash_step is not None and request.step >= crash_step:
                log.warning("test hook: exiting the actor process in %s after %d steps", session_id, request.step)
                os._exit(1)
            return await batcher.submit(request)

        ask = batcher.submit if crash_step is None else crashing_ask

        trace_path = self.run_dir / "traces" / f"{session_id}.zip" if self.config.playwright_trace else None
        env = AsyncShopEnv(self.config.site, self.config.backend, self.env_config, browser=self._browser,
                           trace_path=trace_path)
        try:
            with batcher.active():
                return await run_session(env, ask, item, session_id, self.run_dir, self.config,
                                         self.policy.describe())
        finally:
            await env.close()

    async def close(self) -> None:
        """Release the policy and the browser. Calling it twice is harmless."""
        await self.policy.close()
        if self._browser is not None:
            await self._browser.close()
            self._browser = None


# --------------------------------------------------------------------------------------------------------------------
# The driver


@dataclass
class _Task:
    session_id: str
    item: PersonaIntent
    attempt: int
    slot: int = -1
    generation: int = -1


@dataclass
class _Slot:
    handle: Any
    generation: int = 0
    info: dict[str, Any] | None = None


def _public_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The policy spec for run.json, secrets masked."""
    return {k: ("***" if v is not None and any(h in k.lower() for h in _SECRET_HINTS) else v) for k, v in spec.items()}


def _init_kwargs(address: str | None, actors: int, actor_cpus: float,
                 runtime_env: dict[str, Any] | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
    if runtime_env:
        kwargs["runtime_env"] = runtime_env
    if address:
        kwargs["address"] = address
    else:  # a local instance sized to the actors: nothing listens beyond this machine's own processes
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        kwargs["num_cpus"] = max(1, math.ceil(actors * actor_cpus))
    return kwargs


def check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Fail fast with `ConnectionError` when an explicit `host:port` (or `ray://host:port`) does not accept a TCP
    connection; `ray.init` would otherwise retry for minutes. None and "auto" are left to Ray."""
    if not address or address in ("auto", LOCAL_RAY):
        return
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        raise ConnectionError(f"Expect a Ray address like auto, HOST:PORT or ray://HOST:PORT, actually: {address!r}")
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        raise ConnectionError(f"cannot reach the Ray cluster at {address} ({exc})") from None


def _complete_lines(path: Path | None) -> tuple[list[str], list[str | None], int]:
    """The file's complete lines (newline-terminated JSON objects), their `kind`s, and how many lines were dropped
    (a torn tail, written when the process died)."""
    if path is None or not path.is_file():
        return [], [], 0
    kept: list[str] = []
    kinds: list[str | None] = []
    dropped = 0
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if not line.strip():
            continue
        try:
            if not line.endswith("\n"):
                raise ValueError("no newline")
            record = json.loads(line)
            kind = record.get("kind") if isinstance(record, dict) else None
        except ValueError:
            dropped += 1
            continue
        kept.append(line)
        kinds.append(kind)
    return kept, kinds, dropped


class _Run:
    """The driver's bookkeeping of one distributed run: actor slots, the queue, attempts and their files."""

    def __init__(self, ray: Any, run_dir: Path, policy_spec: dict[str, Any], config: RunConfig, actors: int,
                 max_retries: int, actor_cpus: float, crash_after: dict[str, int] | None) -> None:
        self.ray = ray
        self.run_dir = run_dir
        self.config = config
        self.max_retries = max_retries
        self.actor_cls = ray.remote(num_cpus=actor_cpus, max_restarts=0, max_task_retries=0)(SessionActor)
        self.actor_args = (str(run_dir.resolve()), dict(policy_spec), config, crash_after)
        self.slots = [_Slot(self._spawn()) for _ in range(actors)]
        self.policy_info: dict[str, Any] = {"name": policy_spec["name"]}
        self.failed_attempts: list[dict[str, Any]] = []
        self.replacements = 0

    def _spawn(self) -> Any:
        return self.actor_cls.remote(*self.actor_args)

    def wait_ready(self) -> list[dict[str, Any]]:
        """Wait for every actor to build its policy; a policy that cannot be built fails the run here, clearly."""
        try:
            infos = self.ray.get([slot.handle.ready.remote() for slot in self.slots])
        except self.ray.exceptions.RayError as exc:
            raise RuntimeError(f"a Ray actor could not start (building the policy failed?): {_cause(exc)}") from None
        for slot, info in zip(self.slots, infos, strict=True):
            slot.info = info
        self.policy_info = infos[0]["policy"]
        return infos

    def submit(self, task: _Task, slot_index: int) -> Any:
        slot = self.slots[slot_index]
        task.slot, task.generation = slot_index, slot.generation
        return slot.handle.run.remote(task.session_id, task.item, task.attempt)

    def replace(self, slot_index: int, generation: int, reason: str) -> None:
        """Kill the actor of a slot for good (once per generation) and start a fresh one there."""
        slot = self.slots[slot_index]
        if slot.generation != generation:
            return  # already replaced because of another of its sessions
        log.warning("actor %d (pid %s) is gone (%s); starting a replacement", slot_index,
                    (slot.info or {}).get("pid", "?"), reason)
        try:
            self.ray.kill(slot.handle, no_restart=True)
        except Exception as exc:  # noqa: BLE001 - already dead is fine
            log.debug("ray.kill: %s", exc)
        self.slots[slot_index] = _Slot(self._spawn(), generation + 1)
        self.replacements += 1

    def finished(self, task: _Task) -> SessionResult | None:
        """The result of an attempt whose file is complete (its end line written) though its task failed after it,
        e.g. the actor died between writing the end line and returning; None when the file is not complete."""
        path = self.run_dir / "sessions" / f"{task.session_id}.jsonl"
        lines, kinds, dropped = _complete_lines(path)
        if dropped or not kinds or kinds[0] != "session" or kinds[-1] != "end" or kinds.count("end") != 1:
            return None
        end = EndRecord.model_validate_json(lines[-1])
        return SessionResult(task.session_id, end.outcome, end.steps, path, end.error)

    def set_aside(self, task: _Task, reason: str) -> Path | None:
        """Move a failed attempt's file out of the way, untouched; record the attempt."""
        path = self.run_dir / "sessions" / f"{task.session_id}.jsonl"
        partial = path.with_name(f"{task.session_id}.attempt{task.attempt}.jsonl.partial")
        moved = None
        if path.exists():
            os.replace(path, partial)
            moved = partial
        self.failed_attempts.append({"session_id": task.session_id, "attempt": task.attempt, "actor": task.slot,
                                     "reason": reason[:500], "partial": moved.name if moved else None})
        return moved

    def mark_error(self, task: _Task, partial: Path | None, reason: str) -> SessionResult:
        """Write the final `<id>.jsonl` of a session that ran out of attempts: its last attempt's complete lines and
        one `error` end line."""
        lines, kinds, dropped = _complete_lines(partial)
        header = lines[0] if kinds[:1] == ["session"] else self._header(task) + "\n"
        step_lines = [line for line, kind in zip(lines, kinds, strict=True) if kind == "step"]
        lines = [header, *step_lines]
        steps = len(step_lines)
        attempts = task.attempt
        error = (f"gave up after {attempts} attempt{'s' if attempts > 1 else ''} on Ray actors; last: {reason}"
                 f"{f' ({dropped} torn line(s) dropped)' if dropped else ''}")[:2000]
        end = EndRecord(outcome="error", steps=steps, error=error, attempts=attempts)
        path = self.run_dir / "sessions" / f"{task.session_id}.jsonl"
        tmp = path.with_name(f".{task.session_id}.jsonl.tmp")
        tmp.write_text("".join(lines) + end.model_dump_json(by_alias=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return SessionResult(task.session_id, "error", steps, path, error)

    def _header(self, task: _Task) -> str:
        header = SessionHeader(
            session_id=task.session_id, persona=task.item.persona.model_dump(mode="json"),
            intent=task.item.intent.model_dump(mode="json"), site=self.config.site,
            policy=self.policy_info.get("name", "?"), backend=self.config.backend,
            seed=session_seed(self.config.seed, task.session_id), policy_config=self.policy_info,
        )
        return header.model_dump_json(by_alias=True, exclude_none=False)

    def close(self, timeout_s: float = 30.0) -> None:
        refs = [slot.handle.close.remote() for slot in self.slots]
        try:
            self.ray.get(refs, timeout=timeout_s)
        except Exception as exc:  # noqa: BLE001 - a dead actor has nothing left to close
            log.debug("closing actors: %s", _cause(exc))
        for slot in self.slots:
            try:
                self.ray.kill(slot.handle, no_restart=True)
            except Exception as exc:  # noqa: BLE001
                log.debug("ray.kill: %s", exc)


def _cause(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    useful = [line for line in text if line.strip() and not line.startswith((" ", "\t"))]
    return (useful[-1] if useful else type(exc).__name__)[:300]


def run_sessions_ray(
    run_dir: str | Path,
    policy_spec: dict[str, Any],
    items: Sequence[PersonaIntent],
    config: RunConfig,
    *,
    address: str | None = None,
    actors: int = 2,
    max_retries: int = 1,
    progress: bool = True,
    ids: Sequence[str] | None = None,
    extra: dict[str, Any] | None = None,
    actor_cpus: float = 1.0,
    runtime_env: dict[str, Any] | None = None,
    crash_after: dict[str, int] | None = None,
) -> list[SessionResult]:
    """Run one session per persona/intent on `actors` Ray actors; write traces and run.json like `run_sessions`.

    Args:
        run_dir: the run directory (shared by every actor; on a multi-node cluster, a shared filesystem).
        policy_spec: `{"name": ..., **options}` for `agent.policy.make_policy`; each actor builds its own policy.
        items: one persona/intent per session; session ids are `s00000`, ... unless `ids` are given.
        config: as for `run_sessions`; `config.concurrency` is sessions at once *per actor*.
        address: None for a local Ray instance started here (and shut down at the end), `"auto"` for the cluster
            this machine belongs to, `"ray://host:10001"` for a remote one. An already initialised Ray is reused.
        actors: how many `SessionActor`s.
        max_retries: attempts after the first for a session whose actor died; then it ends as `error`.
        actor_cpus: CPUs each actor reserves (also sizes the local instance: `ceil(actors × actor_cpus)`).
        runtime_env: passed to `ray.init` (e.g. `{"working_dir": "."}` for a cluster without the package).
        crash_after: test hook, see `SessionActor`.

    Returns the results in session-id order. Raises `RayUnavailableError` without Ray, `RuntimeError` when an
    actor cannot start (e.g. its policy cannot be built), `FileExistsError` for a run directory already in use.
    """
    if actors < 1:
        raise ValueError(f"Expect actors >= 1, actually: {actors}")
    if max_retries < 0:
        raise ValueError(f"Expect max_retries >= 0, actually: {max_retries}")
    if not isinstance(policy_spec, dict) or not policy_spec.get("name"):
        raise ValueError(f"Expect a policy spec {{'name': ..., **options}}, actually: {policy_spec!r}")
    ray = import_ray()
    run_dir, ids = prepare_run_dir(run_dir, len(items), ids)

    started_here = not ray.is_initialized()
    t0 = time.perf_counter()
    if started_here:
        check_reachable(address)
        ray.init(**_init_kwargs(address, actors, actor_cpus, runtime_env))
    init_s = time.perf_counter() - t0
    run = _Run(ray, run_dir, policy_spec, config, actors, max_retries, actor_cpus, crash_after)
    try:
        t1 = time.perf_counter()
        infos = run.wait_ready()
        ray_info: dict[str, Any] = {
            "address": address or "local", "actors": actors, "max_retries": max_retries,
            "concurrency_per_actor": config.concurrency, "actor_cpus": actor_cpus, "init_seconds": round(init_s, 2),
            "actors_ready_seconds": round(time.perf_counter() - t1, 2),
            "ray_version": ray.__version__, "hosts": sorted({i["host"] for i in infos}),
        }
        run_info = {"config": asdict(config), "policy": run.policy_info, "policy_spec": _public_spec(policy_spec),
                    "sessions": len(items), "started_at": now_iso(), **(extra or {}), "ray": ray_info}
        (run_dir / "run.json").write_text(json.dumps(run_info, indent=2, default=str))
        results = _drive(ray, run, [_Task(sid, item, 1) for sid, item in zip(ids, items, strict=True)], progress)
        retried: dict[str, int] = {}  # session id -> the highest attempt that failed
        for failure in run.failed_attempts:
            retried[failure["session_id"]] = max(retried.get(failure["session_id"], 0), failure["attempt"])
        run_info["ray"] = {**ray_info, "retries": sum(retried.values()), "retried_sessions": retried,
                           "failed_attempts": run.failed_attempts, "actor_replacements": run.replacements,
                           "finished_at": now_iso()}
        (run_dir / "run.json").write_text(json.dumps(run_info, indent=2, default=str))
    finally:
        run.close()
        if started_here:
            ray.shutdown()
    order = {sid: i for i, sid in enumerate(ids)}
    return sorted(results, key=lambda r: order[r.session_id])


def _drive(ray: Any, run: _Run, tasks: list[_Task], progress: bool) -> list[SessionResult]:
    """Hand sessions to actors with free slots until every session has a result."""
    queue = deque(tasks)
    inflight: dict[Any, _Task] = {}
    results: list[SessionResult] = []
    bar = progress_bar(len(tasks), progress)
    per_actor = run.config.concurrency
    try:
        while queue or inflight:
            for index, slot in enumerate(run.slots):
                busy = sum(1 for t in inflight.values() if t.slot == index and t.generation == slot.generation)
                while queue and busy < per_actor:
                    task = queue.popleft()
                    inflight[run.submit(task, index)] = task
                    busy += 1
            done, _ = ray.wait(list(inflight), num_returns=1)
            for ref in done:
                task = inflight.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    reason = f"{type(exc).__name__}: {_cause(exc)}"
                    if isinstance(exc, ray.exceptions.RayActorError):
                        run.replace(task.slot, task.generation, reason)
                    else:  # the task raised, its actor lives on; the attempt is over either way
                        log.warning("session %s attempt %d failed: %s", task.session_id, task.attempt, reason)
                    complete = run.finished(task)
                    if complete is not None:
                        log.warning("session %s: its task failed (%s) after its trace was complete; kept",
                                    task.session_id, reason)
                        results.append(complete)
                        bar(complete)
                        continue
                    partial = run.set_aside(task, reason)
                    if task.attempt <= run.max_retries:
                        log.warning("retrying session %s (attempt %d of %d)", task.session_id, task.attempt + 1,
                                    run.max_retries + 1)
                        queue.appendleft(_Task(task.session_id, task.item, task.attempt + 1))
                        continue
                    result = run.mark_error(task, partial, reason)
                results.append(result)
                bar(result)
    finally:
        bar(None)
    return results
