"""The training command line's layout: it starts without the heavy libraries, and only `training/cli/` holds
command-line code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import training

HEAVY = ("torch", "transformers", "trl", "datasets", "playwright", "ray")


def test_the_cli_starts_without_heavy_libraries() -> None:
    """`shop-r1 --help` with every training command registered imports none of them (a fresh interpreter: this one
    has imported them already)."""
    code = ("import sys; from agent.cli.root import app; import training.cli; training.cli.register(app); "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    checkout = Path(training.__file__).parent.parent  # `python -c` imports from its working directory first
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240, check=True,
                            cwd=checkout)
    assert result.stdout.strip() == "", f"Expect no heavy library imported, actually: {result.stdout.strip()}"


def test_only_the_cli_package_imports_typer() -> None:
    root = Path(training.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        if path.parent.name == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name.split(".")[0] in ("typer", "click") for name in names):
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not offenders, f"Expect typer only in training/cli/, actually imported by: {', '.join(offenders)}"
