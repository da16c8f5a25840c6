"""Distributed rollouts on a local Ray: the same traces as a local run, and no trace line lost or duplicated when an
actor dies mid-session."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import pytest
import typer
from typer.testing import CliRunner

ray = pytest.importorskip("ray")

from agent.cli.options import RayOptionCommand  # noqa: E402
from agent.policy.scripted import ScriptedPolicy  # noqa: E402
from agent.runtime.distributed import check_reachable, ray_address, run_sessions_ray  # noqa: E402
from agent.runtime.session import RunConfig, run_sessions  # noqa: E402
from agent.runtime.trace import iter_traces, read_trace  # noqa: E402
from agent.wiring import sample_from_catalog  # noqa: E402

N = 6
SPEC = {"name": "scripted"}


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module (starting one takes ~4 s); `run_sessions_ray` reuses it."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def items(store_db):
    return sample_from_catalog(store_db, N, seed=0)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, store_url, items) -> Path:
    """The reference: the same sessions with `run_sessions` in this process."""
    run_dir = tmp_path_factory.mktemp("local") / "run"
    config = RunConfig(site=store_url, backend="http", concurrency=2, seed=0)
    asyncio.run(run_sessions(run_dir, ScriptedPolicy(), items, config, progress=False))
    return run_dir


def _config(store_url: str) -> RunConfig:
    return RunConfig(site=store_url, backend="http", concurrency=2, seed=0)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _assert_well_formed(path: Path) -> list[dict[str, Any]]:
    """Exactly one header first, steps 1..n without gaps, exactly one end line last, and no torn line."""
    lines = _lines(path)
    kinds = [line["kind"] for line in lines]
    assert kinds[0] == "session" and kinds.count("session") == 1, path
    assert kinds[-1] == "end" and kinds.count("end") == 1, path
    steps = [line["step"] for line in lines if line["kind"] == "step"]
    assert steps == list(range(1, len(steps) + 1)), path
    assert lines[-1]["steps"] == len(steps)
    return lines


_VOLATILE_HEADER = {"started_at"}
_STEP_KEYS = ("step", "url", "title", "observation", "rationale", "action", "valid", "error", "error_kind", "next_url")


# Ids the store hands out from global counters, so they depend on how concurrent sessions interleave.
_STORE_IDS = ((re.compile(r"/order/[^/?#\"'\\]+"), "/order/*"), (re.compile(r"([?&]added=)\d+"), r"\1*"))


def _comparable(path: Path) -> dict[str, Any]:
    """A trace without what legitimately differs between two runs: timestamps, timings, and the ids the store hands
    out (order numbers, cart line ids). Actions and rationales are compared as written."""
    text = path.read_text(encoding="utf-8")
    for pattern, replacement in _STORE_IDS:
        text = pattern.sub(replacement, text)
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    header = {k: v for k, v in lines[0].items() if k not in _VOLATILE_HEADER}
    steps = [{k: line.get(k) for k in _STEP_KEYS} for line in lines if line["kind"] == "step"]
    end = {k: lines[-1].get(k) for k in ("kind", "outcome", "steps", "final_url", "error")}
    return {"header": header, "steps": steps, "end": end}


def _same_as_local(run_dir: Path, local_run: Path, session_id: str) -> None:
    name = f"{session_id}.jsonl"
    assert _comparable(run_dir / "sessions" / name) == _comparable(local_run / "sessions" / name)


def test_ray_run_matches_a_local_run(local_ray, tmp_path, store_url, items, local_run):
    run_dir = tmp_path / "run"
    results = run_sessions_ray(run_dir, SPEC, items, _config(store_url), actors=2, progress=False)

    ids = [f"s{i:05d}" for i in range(N)]
    assert [r.session_id for r in results] == ids
    assert sorted(p.name for p in (run_dir / "sessions").iterdir()) == [f"{sid}.jsonl" for sid in ids]
    assert [t.session_id for t in iter_traces(run_dir)] == ids
    for sid in ids:
        _assert_well_formed(run_dir / "sessions" / f"{sid}.jsonl")
        _same_as_local(run_dir, local_run, sid)  # same headers apart from timestamps, same actions
    assert {r.outcome for r in results} <= {"purchase", "terminate", "truncated"}

    info = json.loads((run_dir / "run.json").read_text())
    assert info["ray"]["actors"] == 2 and info["ray"]["address"] == "local"
    assert info["ray"]["retries"] == 0 and info["ray"]["failed_attempts"] == []
    assert info["policy"]["name"] == "scripted" and info["sessions"] == N
    assert info["config"] == json.loads((local_run / "run.json").read_text())["config"]


def test_actor_death_mid_session_is_retried_without_losing_or_duplicating_lines(
        local_ray, tmp_path, store_url, items, local_run):
    run_dir = tmp_path / "run"
    results = run_sessions_ray(run_dir, SPEC, items, _config(store_url), actors=2, max_retries=1, progress=False,
                               crash_after={"s00001": 2})

    assert all(r.outcome != "error" for r in results), [(r.session_id, r.error) for r in results]
    info = json.loads((run_dir / "run.json").read_text())["ray"]
    assert info["actor_replacements"] == 1
    failed = {f["session_id"] for f in info["failed_attempts"]}
    assert "s00001" in failed and info["retried_sessions"]["s00001"] == 1
    assert info["retries"] == len(failed)  # every session of the dead actor, once

    for sid in (f"s{i:05d}" for i in range(N)):
        _assert_well_formed(run_dir / "sessions" / f"{sid}.jsonl")
        _same_as_local(run_dir, local_run, sid)  # the retry redid the session from its start, identically

    # The dead attempt is kept aside, untouched: its header and exactly the 2 steps it finished, no end line; they
    # are the same steps the retry took first (nothing lost, nothing twice in the session's file).
    partial = _lines(run_dir / "sessions" / "s00001.attempt1.jsonl.partial")
    assert [line["kind"] for line in partial] == ["session", "step", "step"]
    final = _lines(run_dir / "sessions" / "s00001.jsonl")
    assert [p["action"] for p in partial[1:]] == [f["action"] for f in final[1:3]]
    for f in info["failed_attempts"]:
        assert f["partial"] is None or (run_dir / "sessions" / f["partial"]).is_file()
    assert sorted(t.session_id for t in iter_traces(run_dir)) == [f"s{i:05d}" for i in range(N)]


def test_actor_death_without_retries_marks_the_session_error(local_ray, tmp_path, store_url, items):
    run_dir = tmp_path / "run"
    results = run_sessions_ray(run_dir, SPEC, items[:2], _config(store_url), actors=1, max_retries=0,
                               progress=False, crash_after={"s00001": 3})

    by_id = {r.session_id: r for r in results}
    assert by_id["s00001"].outcome == "error" and by_id["s00001"].steps == 3
    lines = _assert_well_formed(run_dir / "sessions" / "s00001.jsonl")
    assert [line["kind"] for line in lines] == ["session", "step", "step", "step", "end"]
    assert lines[-1]["outcome"] == "error" and "1 attempt" in lines[-1]["error"] and lines[-1]["attempts"] == 1
    assert _lines(run_dir / "sessions" / "s00001.attempt1.jsonl.partial") == lines[:-1]
    trace = read_trace(run_dir / "sessions" / "s00001.jsonl")
    assert trace.outcome == "error" and trace.torn_lines == 0
    # s00000 shared the dead actor: it either finished before the crash or ended as error the same way.
    _assert_well_formed(run_dir / "sessions" / "s00000.jsonl")


def test_cli_ray_option_takes_an_optional_address():
    app = typer.Typer()
    seen: dict[str, Any] = {}

    @app.command(cls=RayOptionCommand)
    def main(ray: Annotated[str | None, typer.Option("--ray")] = None, actors: int = 2) -> None:
        seen.update(ray=ray, actors=actors)

    for argv, expected in ((["--ray"], "local"), (["--ray", "--actors", "3"], "local"), (["--ray", "auto"], "auto"),
                           (["--ray", "ray://h:10001"], "ray://h:10001"), (["--actors", "1"], None)):
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 0, result.output
        assert seen["ray"] == expected
    assert [ray_address(v) for v in ("local", "auto", None)] == [None, "auto", None]


def test_doctests():
    import doctest

    import agent.runtime.distributed

    assert doctest.testmod(agent.runtime.distributed).failed == 0


def test_unreachable_address_fails_fast():
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        with pytest.raises(ConnectionError, match="cannot reach"):
            check_reachable(address, timeout_s=2)
    with pytest.raises(ConnectionError, match="Expect a Ray address"):
        check_reachable("no-port-here")
    check_reachable(None)
    check_reachable("auto")


def test_cli_simulate_on_ray(local_ray, tmp_path, store_url, store_db):
    from agent.cli.root import app

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["simulate", "--site", store_url, "--catalog", str(store_db), "--backend", "http",
                                      "--policy", "scripted",
                                      "--sessions", "3", "--concurrency", "2", "--out", str(out), "--no-report",
                                      "--ray", "--actors", "2"])
    assert result.exit_code == 0, result.output
    assert len(list(iter_traces(out))) == 3 and (out / "summary.json").is_file()
    assert json.loads((out / "run.json").read_text())["ray"]["actors"] == 2


def test_cli_ray_without_ray_installed_fails_cleanly(tmp_path, store_url, store_db, monkeypatch):
    from agent.cli.root import app

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    result = CliRunner().invoke(app, ["simulate", "--site", store_url, "--catalog", str(store_db), "--backend", "http",
                                      "--out", str(tmp_path / "run"), "--ray"])
    assert result.exit_code == 2
    assert "need Ray" in result.output and "pip install" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
