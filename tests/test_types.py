"""The env contract type-checks: `envs/` (the `Driver` protocol both backends meet, `StepInfo`, typed `reset`/`step`)
is clean under mypy, so a driver or an `info` key that drifts from the contract fails here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_envs_type_check_clean() -> None:
    pytest.importorskip("mypy", reason="mypy is a dev dependency (pip install -e '.[dev]')")
    done = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "envs"], cwd=ROOT,
                          capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_both_drivers_meet_the_driver_protocol() -> None:
    from envs.browser import BrowserDriver
    from envs.driver import Driver
    from envs.http import HttpDriver
    from envs.origin import OriginPolicy

    policy = OriginPolicy.for_url("http://127.0.0.1:1/")
    assert isinstance(HttpDriver(policy), Driver)
    assert isinstance(BrowserDriver(policy), Driver)
