"""Training configs shipped with the package, so `shop-r1 train --config tiny-cpu` and `shop-r1 experiment` work
from a wheel install as well as from a checkout.

The YAML files here are the same bytes as the checkout's `configs/*.yaml` (a test keeps them equal): edit both.

>>> sorted(preset_names())
['paper-3b', 'tiny-cpu']
>>> resolve_config("tiny-cpu") == PRESET_DIR / "tiny-cpu.yaml"
True
"""

from __future__ import annotations

from pathlib import Path

PRESET_DIR = Path(__file__).resolve().parent


def preset_names() -> list[str]:
    """The packaged configs, by name (file name without `.yaml`)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def resolve_config(path: str | Path) -> Path:
    """`path` itself when it is a file; else the packaged config of that name (`tiny-cpu` or `tiny-cpu.yaml`); else
    `path` unchanged (the caller reports it missing)."""
    given = Path(path)
    if given.is_file() or given.parent != Path("."):
        return given
    packaged = PRESET_DIR / (given.name if given.suffix == ".yaml" else f"{given.name}.yaml")
    return packaged if packaged.is_file() else given
