"""Finding 9: replay and report on hostile traces (deep nesting, unreadable files)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parents[1] / "agent"))
from tracefix import buyer  # noqa: E402

from agent.cli.replay import replay_command  # noqa: E402
from agent.cli.root import app  # noqa: E402
from agent.runtime.trace import loads_limited, read_trace  # noqa: E402

DEEP = "[" * 100_000 + "]" * 100_000


def test_deep_json_is_refused_not_a_recursion_error():
    with pytest.raises(ValueError, match="nested"):
        loads_limited(DEEP)
    inside_a_string = '{"a": "' + "[" * 100 + '"}'
    assert loads_limited(inside_a_string) == {"a": "[" * 100}, "brackets inside strings do not count"


def test_replay_exits_2_with_one_line_on_a_deep_line(tmp_path, capsys):
    path = buyer(tmp_path)
    with path.open("a") as f:
        f.write(DEEP + "\n")
    assert read_trace(path).torn_lines == 1
    with pytest.raises(typer.Exit) as exc:
        replay_command(path, site="http://127.0.0.1:9", backend="http")
    out = capsys.readouterr()
    text = out.out + out.err
    assert exc.value.exit_code == 2 and text.startswith("ERROR") and text.count("\n") == 1, \
        f"Expect exit 2 and one line, actually: {exc.value.exit_code} {text!r}"


def test_report_skips_unreadable_files_and_fails_when_none_is_readable(tmp_path):
    runner = CliRunner()
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    (sessions / "s99999.jsonl").write_text(DEEP + "\n")
    (sessions / "s99998.jsonl").write_bytes(b"\xff\xfe not utf-8\n")
    none = runner.invoke(app, ["report", str(tmp_path)])
    assert none.exit_code == 2 and "readable" in none.output, f"Expect exit 2, actually: {none.exit_code}"
    buyer(tmp_path)
    some = runner.invoke(app, ["report", str(tmp_path)])
    assert some.exit_code == 0, f"Expect a report from the one readable file, actually: {some.output[-500:]}"
    html = (tmp_path / "report.html").read_text()
    assert "s99999.jsonl" in html and "s00000" in html
