"""CLI conventions: `--version`, fixed choices as typer choices (listed in --help, bad values exit 2 in typer's own
style), and the same style for the commands' own usage errors."""

from __future__ import annotations

import re
from importlib.metadata import version

import pytest
from typer.testing import CliRunner

from agent.cli.root import app
from agent.policy import POLICY_NAMES

runner = CliRunner()


def _flat(text: str) -> str:
    """The output without the error box's borders and line breaks."""
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", text))


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"shop-r1 {version('shop-r1')}\n"


@pytest.mark.parametrize(("argv", "option", "choices"), [
    (["simulate", "--out", "x", "--embedded", "--backend", "ftp"], "--backend", "'browser', 'http'"),
    (["simulate", "--out", "x", "--embedded", "--variant", "c"], "--variant", "'a', 'b'"),
    (["simulate", "--out", "x", "--embedded", "--policy", "gpt"], "--policy", "'local', 'scripted', 'openai'"),
    (["demo", "--policy", "openai"], "--policy", "'local', 'scripted'"),
    (["store", "serve", "--variant", "c"], "--variant", "'a', 'b'"),
    (["serve-policy", "--model", ".", "--device", "tpu"], "--device", "'auto', 'cpu', 'cuda'"),
    (["eval", "--data", ".", "--out", "x.json", "--split", "dev"], "--split", "'train', 'validation', 'test'"),
    (["eval", "--data", ".", "--out", "x.json", "--context", "recent"], "--context", "'all', 'latest'"),
    (["eval", "--data", ".", "--out", "x.json", "--device", "tpu"], "--device", "'auto', 'cpu', 'cuda'"),
    (["model", "init", "--out", "m", "--preset", "big"], "--preset", "'tiny', 'micro'"),
    (["experiment", "paper-tables", "--out", "e", "--preset", "huge"], "--preset", "'smoke', 'tiny-cpu'"),
])
def test_bad_choices_are_rejected_by_typer_with_exit_2(argv: list[str], option: str, choices: str) -> None:
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    text = _flat(result.output)
    assert f"Invalid value for '{option}'" in text and choices in text, text


def test_choices_are_the_registries_and_show_in_help() -> None:
    from training.data import SPLITS
    from training.experiment_presets import PRESETS
    from training.modeling import PRESETS as MODEL_PRESETS

    def help_text(*argv: str) -> str:
        return runner.invoke(app, [*argv, "--help"], env={"COLUMNS": "400"}).output

    assert "<local|scripted|openai>" in help_text("simulate") and set(POLICY_NAMES) == {"local", "scripted", "openai"}
    assert f"<{'|'.join(SPLITS)}>" in help_text("eval")
    assert f"<{'|'.join(PRESETS)}>" in help_text("experiment", "paper-tables")
    assert f"<{'|'.join(MODEL_PRESETS)}>" in help_text("model", "init")


def test_the_commands_own_usage_errors_have_the_same_style(tmp_path) -> None:
    result = runner.invoke(app, ["simulate", "--out", str(tmp_path / "r"), "--backend", "http"])
    assert result.exit_code == 2
    assert "Expect exactly one of --site URL or --embedded, actually: neither" in _flat(result.output)
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "Expect a run directory written by simulate, actually:" in _flat(result.output)
    result = runner.invoke(app, ["eval", "--data", str(tmp_path), "--out", str(tmp_path / "x.json")])
    assert result.exit_code == 2
    assert "Expect exactly one of --model DIR or --policy NAME, actually: neither" in _flat(result.output)


@pytest.mark.browser
def test_demo_runs_the_policy_it_is_given(tmp_path) -> None:
    """`demo --policy scripted` runs the scripted shopper (a comment once swallowed the argument, and the demo ran the
    default model whatever was asked)."""
    import json

    result = runner.invoke(app, ["demo", "--policy", "scripted", "--sessions", "1", "--concurrency", "1",
                                 "--max-steps", "2", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    [run_dir] = [p for p in tmp_path.iterdir() if p.is_dir()]
    run = json.loads((run_dir / "run.json").read_text())
    assert run["policy"]["name"] == "scripted", run["policy"]
    assert (run_dir / "report.html").is_file() and any((run_dir / "screenshots").rglob("*.png"))
    from agent.runtime.trace import iter_traces

    [trace] = iter_traces(run_dir)
    assert 1 <= len(trace.steps) <= 2  # --max-steps reached simulate


def test_demo_declares_its_options_as_simulate_does() -> None:
    """demo reuses simulate's option declarations: the shared options carry the same help in both."""
    demo, simulate = (_flat(runner.invoke(app, [c, "--help"], terminal_width=200).output) for c in ("demo", "simulate"))
    for help_text in ("How many sessions (shoppers).", "Sessions at once.", "Step budget per session.",
                      "Seed for personas, intents and the scripted shopper."):
        assert help_text in demo and help_text in simulate, help_text
