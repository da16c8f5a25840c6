"""Shared builders for the data, modeling and evaluation tests: a scripted run on the test store, its datasets, and a
micro model initialised on them. Each is built once per test session, however many modules ask for it.

Wrap them in session fixtures in each test module, e.g.
`data_dir = pytest.fixture(scope="session")(lambda tmp_path_factory, store_db, store_url: cached_data_dir(...))`.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

_AGENT_TESTS = Path(__file__).resolve().parents[1] / "agent"
if str(_AGENT_TESTS) not in sys.path:
    sys.path.insert(0, str(_AGENT_TESTS))

OPERA_FIXTURE = Path(__file__).parent / "data" / "opera"
RUN_SESSIONS = 24
BUDGET = 3000  # tokens: small enough that long sessions drop pages, large enough for every current page

_CACHE: dict[str, Any] = {}


def scripted_run(run_dir: Path, store_db: Path, store_url: str, n: int = RUN_SESSIONS, seed: int = 0) -> Path:
    """`n` scripted shoppers on the store over HTTP, traces in `run_dir`."""
    from agent.policy.scripted import ScriptedPolicy
    from agent.runtime.session import RunConfig, run_sessions
    from agent.wiring import sample_from_catalog

    items = sample_from_catalog(store_db, n, seed=seed)
    config = RunConfig(site=store_url, backend="http", concurrency=4, seed=seed)
    asyncio.run(run_sessions(run_dir, ScriptedPolicy(), items, config, progress=False))
    return run_dir


def cached_run_dir(tmp_path_factory: pytest.TempPathFactory, store_db: Path, store_url: str) -> Path:
    if "run" not in _CACHE:
        _CACHE["run"] = scripted_run(tmp_path_factory.mktemp("scripted") / "run", store_db, store_url)
    return _CACHE["run"]


def cached_data_dir(tmp_path_factory: pytest.TempPathFactory, store_db: Path, store_url: str) -> Path:
    """The datasets of the scripted run (split 0.7/0.15/0.15, budget `BUDGET` approximate tokens)."""
    if "data" not in _CACHE:
        from training.data import DataConfig, build_datasets

        run_dir = cached_run_dir(tmp_path_factory, store_db, store_url)
        out = tmp_path_factory.mktemp("data")
        build_datasets([run_dir], out, DataConfig(split=(0.7, 0.15, 0.15), seed=0, max_context_tokens=BUDGET))
        _CACHE["data"] = out
    return _CACHE["data"]


def cached_data_micro_model(tmp_path_factory: pytest.TempPathFactory, store_db: Path, store_url: str) -> Path:
    """A `micro` model whose tokenizer was trained on the scripted run's datasets."""
    if "micro" not in _CACHE:
        from training.modeling import init_model

        out = tmp_path_factory.mktemp("micro") / "model"
        init_model("micro", cached_data_dir(tmp_path_factory, store_db, store_url), out, seed=0)
        _CACHE["micro"] = out
    return _CACHE["micro"]
