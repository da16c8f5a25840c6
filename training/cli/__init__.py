"""The training commands of the `shop-r1` CLI, one module per command group over its library:

- `data`: `data build`, `data import-opera`, `data to-verl` (`training.data`, `training.opera`, `training.verl_data`);
- `model`: `model init` (`training.modeling`);
- `evaluate`: `eval` (`training.evaluate`);
- `experiment`: `experiment paper-tables|results-doc|default-policy|fidelity|ux-sensitivity`;
- `train`: `train sft|rl`, also runnable on its own (`accelerate launch -m training.cli.train rl --config ...`).

`agent.cli` calls `register(app)` (the `shop_r1.commands` entry point). Starting the CLI imports no torch, transformers,
TRL or datasets: the libraries that do are imported inside the commands that need them, so `shop-r1 --help` stays fast.
Bad input (missing directories, empty runs, bad splits) exits with code 2 and a one-line message.
"""

from __future__ import annotations

import typer

from .data import data_app
from .evaluate import eval_command
from .experiment import experiment_app
from .model import model_app

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add `eval`, `data`, `model`, `experiment` and `train` to the main CLI."""
    # Imported here, not above: `python -m training.cli.train` imports this package first, and runpy warns when the
    # package has already imported the module it is about to run.
    from .train import register_train

    app.add_typer(data_app, name="data")
    app.add_typer(model_app, name="model")
    app.command("eval")(eval_command)
    app.add_typer(experiment_app, name="experiment")
    register_train(app)
