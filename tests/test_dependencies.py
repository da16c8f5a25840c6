"""Dependency hygiene: every third-party import is declared, ranges in pyproject.toml, exact pins in the constraints."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agent", "envs", "training", "sites")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _top_level_imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_declared() -> None:
    project = PYPROJECT["project"]
    declared = {_name(r) for r in project["dependencies"]}
    optional = {_name(r) for extra in project["optional-dependencies"].values() for r in extra}
    optional |= {"vllm"}  # the `vllm` extra reaches it through trl[vllm]
    dists = metadata.packages_distributions()
    missing = {}
    for module, files in _top_level_imports().items():
        if module in sys.stdlib_module_names or module in PACKAGES or module == "__future__":
            continue
        names = {d.lower().replace("_", "-") for d in dists.get(module, [module])}
        if not names & (declared | optional):
            missing[module] = sorted(files)[:3]
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_library_dependencies_are_ranges_and_the_constraints_pin_the_cpu_torch() -> None:
    exact = [r for r in PYPROJECT["project"]["dependencies"] if "==" in r]
    assert not exact, f"exact pins belong in scripts/constraints.txt: {exact}"
    torch = next(r for r in PYPROJECT["project"]["dependencies"] if _name(r) == "torch")
    assert ">=2.13" in torch and "<3" in torch
    pins = dict(line.split("==") for line in (ROOT / "scripts/constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert pins["torch"] == "2.13.0"
    assert {"transformers", "trl", "peft", "openai"} <= set(pins)
    assert "-c scripts/constraints.txt" in (ROOT / "scripts/dev.sh").read_text()


def test_extras_carry_no_unused_ray_dashboard_and_vllm_follows_trl() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert all("ray[default]" not in r for extra in extras.values() for r in extra)
    assert [_name(r) for r in extras["vllm"]] == ["trl"] and "[vllm]" in extras["vllm"][0]


def test_one_statistics_path_without_scipy() -> None:
    assert "scipy" not in _top_level_imports()
