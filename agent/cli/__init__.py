"""The `shop-r1` command line: every command of `agent`, and the hooks other packages use to add theirs.

- `agent.cli.root`: the `shop-r1` app (`app`, `main`) with `simulate`, `demo` and `report`; it mounts the other
  commands and those of packages above agent (the `shop_r1.commands` entry-point group);
- `abtest`, `replay`, `record`, `serve` (`serve-policy`): one module per command over its library;
- `usage`: the one usage-error style; `options`: option handling shared by commands.

The app is imported only when `main` runs, so that `training`'s commands can use `usage_error` while the app loads
them.
"""

from .usage import UsageError, usage_error

__all__ = ["UsageError", "main", "usage_error"]


def main() -> None:
    """The `shop-r1` entry point: `agent.cli.root.main`."""
    from .root import main as run  # not at the top: the app loads training's commands, which import this package

    run()
