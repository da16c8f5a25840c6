"""What every benchmark does with its table: format optional numbers, write the Markdown under docs/, print it."""

from __future__ import annotations

from pathlib import Path


def num(x: float | None, spec: str) -> str:
    """`x` formatted with `spec`, or an en dash when it was not measured."""
    return "–" if x is None else format(x, spec)


def write_report(path: Path, lines: list[str]) -> str:
    """Join `lines`, write them to `path` (parents created) and print them; returns the text."""
    text = "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(text)
    return text
