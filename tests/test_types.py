"""The env contract type-checks: `envs/` (the `Driver` protocol both backends meet, `StepInfo`, typed `reset`/`step`),
the agent that uses it (`agent/`: typed trace records, policies, runtime), the store (`sites/`) and the training code
(`training/`: configs, data, rewards, trainers) are clean under mypy, so a driver, an `info` key, a trace field or a
config field that drifts from the contract fails here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(660)  # ~1 min of CPU without a cache; 4 min while a training job loads the machine
def test_envs_agent_sites_and_training_type_check_clean() -> None:
    pytest.importorskip("mypy", reason="mypy is a dev dependency (pip install -e '.[dev]')")
    done = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "envs", "agent", "sites", "training"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_both_drivers_meet_the_driver_protocol() -> None:
    from envs.browser import BrowserDriver
    from envs.driver import Driver
    from envs.http import HttpDriver
    from envs.origin import OriginPolicy

    policy = OriginPolicy.for_url("http://127.0.0.1:1/")
    assert isinstance(HttpDriver(policy), Driver)
    assert isinstance(BrowserDriver(policy), Driver)
