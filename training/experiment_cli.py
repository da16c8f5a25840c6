"""`shop-r1 experiment`: the paper's tables (`paper-tables`), and their write-up (`results-doc`).

Command-line code only: the runner is `training.experiments`, the tables `training.experiment_tables`, the write-up
`training.results_doc`. `fidelity`, `default-policy` and `ux-sensitivity` add their commands to `experiment_app`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from agent.cli.usage import usage_error

from .experiment_presets import PresetName
from .experiments import run_experiment
from .results_doc import load_experiment, write_results_doc

__all__ = ["experiment_app"]


experiment_app = typer.Typer(help="Reproduce the paper's experiments at a small scale.", no_args_is_help=True)


@experiment_app.command("paper-tables")
def paper_tables(
    out: Annotated[Path, typer.Option(help="Experiment directory (results.json, tables.md, models, data).")],
    preset: Annotated[PresetName, typer.Option(
        help="smoke (minutes), tiny-cpu (every row, 3 seeds, ~2 h on 2 cores), tiny-cpu-long-rl, smollm2-cpu (SmolLM2 "
             "+ LoRA, the main rows, ~2 h on 2 cores), smollm2-gpu (every row, 3 seeds, full fine-tuning; with "
             "--device cuda) or smollm2-gpu-smoke (its shape at smoke sizes).")] = "smoke",
    seeds: Annotated[str | None, typer.Option(help="Comma-separated seeds (default: the preset's).")] = None,
    rows: Annotated[str | None, typer.Option(help="Comma-separated row keys (default: all).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Skip rows and models already done.")] = False,
    catalog: Annotated[Path | None, typer.Option(help="Catalog of the embedded store.")] = None,
    render_only: Annotated[bool, typer.Option(
        "--render-only", help="Only rewrite results.json and tables.md from the rows already on disk.")] = False,
    persona: Annotated[bool | None, typer.Option(
        "--persona/--no-persona", help="Prompts with the persona and intent block (Customer-R1's conditioning) or "
                                       "without (the paper's context: pages and actions only). Default: the "
                                       "preset's (with).")] = None,
    device: Annotated[Literal["cpu", "cuda"] | None, typer.Option(
        help="Where every stage trains and evaluates. Default: the preset's (smollm2-gpu: cuda).")] = None,
) -> None:
    """Train and evaluate every row of Tables 2-5, the temperature sweep and session realism."""

    def echo(r: Mapping[str, Any]) -> None:
        m = r["metrics"]
        took = "resumed" if r["resumed"] else f"{r['wall_seconds']}s"
        typer.echo(f"seed {r['seed']} {r['row']}: exact {100 * m['exact_accuracy']:.2f}% type "
                   f"{100 * m['type_accuracy']:.2f}% F1 {100 * m['type_macro_f1']:.2f}% ({took})")

    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()] if seeds else None
        row_list = [r.strip() for r in rows.split(",") if r.strip()] if rows else None
        run_experiment(preset, out, seeds=seed_list, rows=row_list, resume=resume, catalog=catalog, on_row=echo,
                       render_only=render_only, persona=persona, device=device)
    except ValueError as exc:
        raise usage_error(str(exc)) from None
    typer.echo(f"wrote {out / 'results.json'} and {out / 'tables.md'}")


@experiment_app.command("results-doc")
def results_doc(
    exp: Annotated[list[str], typer.Option(
        "--exp", help="LABEL=EXP_DIR of a paper-tables run (repeat: one column per experiment, in order).")],
    out: Annotated[Path, typer.Option(help="The results document; each experiment's tables go to results/LABEL/ "
                                           "beside it.")] = Path("docs/results.md"),
) -> None:
    """Write the results document: the paper's findings and tables with every experiment side by side."""
    try:
        pairs = [item.split("=", 1) for item in exp]
        bad = [item for item, pair in zip(exp, pairs, strict=True) if len(pair) != 2 or not all(pair)]
        if bad:
            raise ValueError(f"Expect --exp LABEL=EXP_DIR, actually: {', '.join(map(repr, bad))}")
        experiments = [load_experiment(label, path) for label, path in pairs]
        command = "shop-r1 experiment results-doc " + " ".join(f"--exp {label}=EXP_DIR" for label, _ in pairs)
        written = write_results_doc(experiments, out, command=f"{command} --out {out}")
    except ValueError as exc:
        raise usage_error(str(exc)) from None
    typer.echo(f"wrote {written} and {written.parent / 'results'}/")
