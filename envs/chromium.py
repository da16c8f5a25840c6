"""Finding and launching Chromium for Playwright on machines that cannot download Playwright's own browsers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Flags for headless Chromium in a sandboxed machine without network (see README).
LAUNCH_ARGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

_CANDIDATES = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    """The Chromium executable to launch, or None to let Playwright use its own downloaded browser.

    `SHOP_R1_CHROMIUM` overrides the search; otherwise the Debian packages' binaries are tried in order.
    """
    env = os.environ.get("SHOP_R1_CHROMIUM")
    if env:
        if not Path(env).is_file():
            raise FileNotFoundError(f"SHOP_R1_CHROMIUM={env!r} is not a file")
        return env
    for name in _CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def launch_kwargs(**extra) -> dict:
    """Keyword arguments for `playwright.chromium.launch(...)`."""
    kwargs: dict = {"args": list(LAUNCH_ARGS), **extra}
    exe = find_chromium()
    if exe:
        kwargs["executable_path"] = exe
    return kwargs
