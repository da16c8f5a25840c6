"""Packaged configs (`training.presets`) and an install that works outside the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from training.configs import ConfigError, load_config
from training.presets import PRESET_DIR, preset_names, resolve_config

ROOT = Path(__file__).resolve().parents[2]


def test_packaged_configs_are_the_checkouts_configs():
    assert preset_names() == ["paper-3b", "tiny-cpu"]
    for name in preset_names():
        assert (PRESET_DIR / f"{name}.yaml").read_bytes() == (ROOT / "configs" / f"{name}.yaml").read_bytes(), name


def test_a_config_can_be_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ here
    assert resolve_config("tiny-cpu") == resolve_config("tiny-cpu.yaml") == PRESET_DIR / "tiny-cpu.yaml"
    assert load_config("tiny-cpu", "sft") == load_config(ROOT / "configs" / "tiny-cpu.yaml", "sft")
    (tmp_path / "tiny-cpu.yaml").write_text("sft:\n  learning_rate: 0.5\n")
    assert resolve_config("tiny-cpu.yaml") == Path("tiny-cpu.yaml")  # a file that exists wins
    with pytest.raises(ConfigError, match=r"Expect a YAML config file or a packaged config \(paper-3b, tiny-cpu\), "
                                          r"actually: huge does not exist"):
        load_config("huge", "sft")


@pytest.mark.slow
def test_a_wheel_installed_outside_the_checkout_runs(tmp_path, store_db):
    """Build a wheel from a copy of the tree, install it (no deps: this venv has them) into a directory, and run the
    CLI from outside the checkout with only that directory ahead on the path."""
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", "build",
                                                             "dist", "runs", ".pytest_cache", ".ruff_cache"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, cwd=tmp_path, timeout=240)
    [wheel] = (tmp_path / "dist").glob("shop_r1-*.whl")
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, timeout=240)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}

    def run(*args: str) -> str:
        done = subprocess.run([sys.executable, *args], cwd=work, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    where = run("-c", "import agent, envs, sites, training.presets as p; "
                      "print(agent.__file__, envs.__file__, sites.__file__, p.PRESET_DIR, sep='\\n')")
    assert all(line.startswith(str(site)) for line in where.splitlines()), where
    assert run("-m", "agent.cli", "--version").strip() == "shop-r1 0.1.0"
    scripts = ("from envs.browser import ANNOTATE_JS, REFRESH_TARGETS_JS; "
               "from agent.record.recorder import RECORDER_JS; "
               "print(all(s.strip() for s in (ANNOTATE_JS, REFRESH_TARGETS_JS, RECORDER_JS)))")
    assert run("-c", scripts) == "True\n", "Expect the JavaScript files shipped as package data"
    code = ("from training.experiments import BASE_CONFIG; from training.configs import load_config; "
            "print(BASE_CONFIG.is_file(), load_config('tiny-cpu', 'sft').output_dir)")
    assert run("-c", code) == "True runs/tiny/sft\n"
    out = run("-m", "agent.cli", "simulate", "--embedded", "--catalog", str(store_db), "--sessions", "2",
              "--backend", "http", "--policy", "scripted", "--out", str(work / "run"), "--no-report")
    assert len(list((work / "run" / "sessions").glob("*.jsonl"))) == 2, out
