"""`shop-r1 experiment`: the paper's tables (`paper-tables`) and their write-up (`results-doc`), the default shopper
(`default-policy`), its fidelity (`fidelity`) and the store variants it can tell apart (`ux-sensitivity`).

Command-line code only: the runner is `training.experiments`, the tables `training.experiment_tables`, the write-up
`training.results_doc`, the default shopper `training.default_policy`, fidelity `training.fidelity`, and the
UX-sensitivity experiment `agent.wiring.run_sensitivity` (which needs no training code): every known-effect store
variant against `a`, paired, on the http backend of an embedded store; it writes `OUT/ux_sensitivity.md` and
`OUT/ux_sensitivity.json` (with `--doc docs/ux_sensitivity.md`, the report there too, keeping its hand-written
reading), and keeps every arm's traces in `OUT/<variant>/`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from agent.cli.usage import usage_error
from agent.policy import make_policy
from agent.runtime.session import RunConfig
from agent.wiring import VariantName, default_catalog, run_sensitivity, sample_from_catalog
from training.default_policy import PresetName as DefaultPolicyPreset
from training.default_policy import format_recipe, train_default_policy
from training.experiment_presets import PresetName
from training.experiments import run_experiment
from training.fidelity import format_fidelity, measure_fidelity
from training.results_doc import load_experiment, write_results_doc

__all__ = ["experiment_app", "parse_models"]


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


def parse_models(items: list[str], option: str) -> dict[str, Path]:
    """`LABEL=DIR` values of a repeatable `option` as {label: dir}; a usage error for a malformed one or a missing
    dir."""
    models = {}
    for item in items:
        label, sep, path = item.partition("=")
        if not sep or not label or not Path(path).is_dir():
            raise usage_error(f"Expect LABEL=DIR with an existing DIR, actually: {item!r}", option)
        models[label] = Path(path)
    return models


@experiment_app.command("default-policy")
def default_policy_command(
    out: Annotated[Path, typer.Option(help="Experiment directory (data, models, results).")],
    preset: Annotated[DefaultPolicyPreset, typer.Option(
        help="smollm2 (the shipped shopper: SmolLM2 + LoRA, ~1 h on 2 cores), smollm2-smoke, default-policy (the old "
             "3.9M from-scratch model) or default-policy-smoke.")] = "smollm2",
    install_dir: Annotated[Path | None, typer.Option(
        help="Where to write the checkpoint (default: OUT/checkpoint). Copy it to agent/checkpoints/default/ in a "
             "checkout to ship it.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Reuse data and models already trained in --out.")] = False,
    catalog: Annotated[Path | None, typer.Option(help="Catalog of the embedded store.")] = None,
    compare: Annotated[list[str] | None, typer.Option(
        help="LABEL=DIR, repeatable: other models measured beside it (e.g. the previous default).")] = None,
    free_text: Annotated[Path | None, typer.Option(
        help="JSONL of free-text requests with head nouns (tests/agent/data/free_text_intents.jsonl).")] = None,
) -> None:
    """Retrain the shipped default shopper and record how it was made and how realistic it is."""
    models = parse_models(compare or [], "--compare")
    try:
        recipe = train_default_policy(out, preset=preset, install_dir=install_dir, resume=resume, catalog=catalog,
                                      compare=models, free_text=free_text)
    except ValueError as exc:
        raise usage_error(str(exc)) from None
    typer.echo(format_recipe(recipe))


@experiment_app.command("fidelity")
def fidelity_command(
    exp: Annotated[Path, typer.Option(help="An experiment directory (its data/test split and traces/test).")],
    out: Annotated[Path, typer.Option(help="Writes OUT.json and OUT.md.")],
    model: Annotated[list[str], typer.Option(help="LABEL=DIR, repeatable: the model directories to compare.")],
    sessions: Annotated[int, typer.Option(min=1, help="Live sessions per shopper.")] = 20,
    validity_steps: Annotated[int, typer.Option(min=1, help="Seeded store steps for validity.")] = 50,
    eval_limit: Annotated[int, typer.Option(min=1, help="Test steps scored for next action.")] = 64,
    free_text: Annotated[Path | None, typer.Option(help="JSONL of free-text requests with head nouns.")] = None,
    max_steps: Annotated[int, typer.Option(min=1, help="Step cap of each live session.")] = 30,
) -> None:
    """Measure the scripted shopper and each model side by side on held-out shoppers (the README's fidelity table)."""
    models = parse_models(model, "--model")
    result = measure_fidelity(exp, models, sessions=sessions, validity_steps=validity_steps, eval_limit=eval_limit,
                              free_text=free_text, max_steps=max_steps)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    table = format_fidelity(result)
    out.with_suffix(".md").write_text(table, encoding="utf-8")
    typer.echo(table)


@experiment_app.command("ux-sensitivity")
def ux_sensitivity_command(
    out: Annotated[Path, typer.Option(help="Experiment directory: one run per variant, and the report.")],
    sessions: Annotated[int, typer.Option(min=2, help="Sessions per arm (the issue's target: 200).")] = 20,
    policy: Annotated[Literal["scripted", "local"], typer.Option(
        help="scripted (rule-based) or local (the shipped default trained shopper, on CPU; slow).")] = "scripted",
    model: Annotated[str | None, typer.Option(help="Model dir for --policy local (default: the shipped one).")] = None,
    variant: Annotated[list[VariantName] | None, typer.Option(
        help="A variant to compare with a, repeatable (default: every one).")] = None,
    seed: Annotated[int, typer.Option(help="Seeds the personas, intents and every session.")] = 0,
    concurrency: Annotated[int, typer.Option(
        min=1, help="Sessions at a time per arm. The arms run at once: keep the total below what the machine serves "
                    "without contention, or seconds per session measure the contention.")] = 2,
    catalog: Annotated[Path | None, typer.Option(help="Catalog of the embedded store (default: the cached one).")]
    = None,
    page_delay: Annotated[float | None, typer.Option(
        min=0, max=60, help="Seconds every page of the slow variant waits (default: its own 1.5 s); the other "
                            "variants stay fast.")] = None,
    max_steps: Annotated[int, typer.Option(min=1, help="Step budget per session.")] = 30,
    doc: Annotated[Path | None, typer.Option(
        help="Also write the report here (docs/ux_sensitivity.md), keeping the reading written between its "
             "<!-- notes --> markers.")] = None,
) -> None:
    """Run each known-effect store variant against a with the same shoppers; report what was detected."""
    try:
        catalog_path = catalog or default_catalog()
        items = sample_from_catalog(catalog_path, sessions, seed)
        shopper = make_policy(policy, model=model)  # one policy answers every arm (a model is loaded once)
    except (ValueError, OSError) as exc:
        raise usage_error(str(exc)) from None
    config = RunConfig(site="embedded", backend="http", concurrency=concurrency, seed=seed, max_steps=max_steps)
    run_sensitivity(out, lambda: shopper, items, config, policy_name=policy,
                    variants=[v.value for v in variant] if variant else None, catalog=catalog_path,
                    page_delay=page_delay)
    report = (out / "ux_sensitivity.md").read_text(encoding="utf-8")
    typer.echo(report)
    typer.echo(f"wrote {out / 'ux_sensitivity.md'} and {out / 'ux_sensitivity.json'}")
    if doc is not None:
        from training.results_doc import write_noted_doc

        command = " ".join(["shop-r1 experiment ux-sensitivity", f"--sessions {sessions}", f"--policy {policy}",
                            *(f"--variant {v.value}" for v in variant or ()), f"--seed {seed}",
                            f"--concurrency {concurrency}", f"--doc {doc}"])
        typer.echo(f"wrote {write_noted_doc(doc, report, command=command)}")
