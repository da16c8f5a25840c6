"""The package layers hold (`[tool.importlinter]` in pyproject.toml): training -> agent -> envs, the store imports
none of them, only the composition layer (`agent.wiring`) imports the store, and inside agent cli -> wiring ->
serve | record | analysis -> runtime -> policy."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> str:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("import-linter is a dev dependency (pip install -e '.[dev]')")
    return exe


def test_the_layer_contracts_are_kept() -> None:
    done = subprocess.run([_lint_imports(), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "4 kept, 0 broken" in done.stdout, done.stdout[-2000:]


def test_a_new_import_of_the_store_breaks_a_contract(tmp_path: Path) -> None:
    """The check can fail: a copy of the tree where envs, or an agent module outside the composition layer, imports
    the store is refused."""
    for package in ("agent", "envs", "training", "sites"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("checkpoints", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "envs" / "leak.py").write_text("from sites.store import variants\n")
    (tmp_path / "agent" / "runtime" / "leak.py").write_text("from sites.store import catalog\n")
    done = subprocess.run([_lint_imports(), "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 1, done.stdout[-3000:]
    assert "envs.leak -> sites.store.variants" in done.stdout, done.stdout[-3000:]
    assert "agent.runtime.leak -> sites.store.catalog" in done.stdout, done.stdout[-3000:]
