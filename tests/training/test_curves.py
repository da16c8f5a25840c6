"""`training.curves`: log columns per step, means over seeds, the markdown tables and the SVG charts."""

from __future__ import annotations

import csv
import doctest
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import training.curves
from training.curves import format_curves, line_chart_svg, mean_curve, read_log_column


def write_log(path: Path, rows: list[dict]) -> Path:
    """A log.csv as `training.callbacks.ProgressCallback` writes it: every key a column, blanks where not logged."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def grpo_log(path: Path, terminate: list[float], format_ok: list[float], gold: float = 0.2) -> Path:
    rows = [{"step": k + 1, "loss": 0.1, "shop_r1/pred_terminate": t, "shop_r1/format_ok": f,
             "shop_r1/gold_terminate": gold} for k, (t, f) in enumerate(zip(terminate, format_ok, strict=True))]
    return write_log(path, [*rows, {"step": len(rows), "train_runtime": 12.0}])  # the trainer's last summary row


def test_columns_and_means_over_seeds(tmp_path):
    a = grpo_log(tmp_path / "a.csv", [0.1, 0.5, 0.9], [1, 1, 1])
    b = grpo_log(tmp_path / "b.csv", [0.3, 0.7], [1, 1])
    assert read_log_column(a, "shop_r1/pred_terminate") == [(1, 0.1), (2, 0.5), (3, 0.9)]
    assert mean_curve([a, b], "shop_r1/pred_terminate") == [(1, pytest.approx(0.2)), (2, pytest.approx(0.6))]
    assert mean_curve([a, tmp_path / "missing.csv"], "shop_r1/format_ok") == [(1, 1.0), (2, 1.0), (3, 1.0)]
    assert mean_curve([a], "nope") == []
    write_log(tmp_path / "bad.csv", [{"step": "x", "shop_r1/format_ok": "0.5"}])
    with pytest.raises(ValueError, match="Expect numeric step and shop_r1/format_ok in .*bad.csv, actually: 'x'"):
        read_log_column(tmp_path / "bad.csv", "shop_r1/format_ok")


def test_format_curves_tables_and_svgs(tmp_path):
    exp = tmp_path / "exp"
    for seed, shift in ((0, 0.0), (1, 0.1)):
        models = exp / f"seed{seed}" / "models"
        grpo_log(models / "shop_r1" / "log.csv", [0.2 + shift] * 30, [0.9] * 30)
        grpo_log(models / "no_dars" / "log.csv", [min(1.0, 0.2 + k / 30 + shift) for k in range(30)], [0.9] * 30)
        grpo_log(models / "no_format" / "log.csv", [0.2] * 30, [max(0.0, 0.9 - k / 20) for k in range(30)])
    md = format_curves(exp, [0, 1], svg_dir=exp / "curves")
    terminate = md.split("### Terminate share")[1].split("### Share")[0]
    assert "| step | shop_r1 | no_dars | gold terminate share |" in terminate
    assert "| 1 | 0.250 | 0.250 | 0.200 |" in terminate and "| 30 | 0.250 | 1.000 | 0.200 |" in terminate
    assert len([line for line in terminate.splitlines() if line.startswith("| ") and line[2].isdigit()]) == 12
    fmt = md.split("### Share of sampled completions")[1]
    assert "| step | shop_r1 | no_format |" in fmt and "| 30 | 0.900 | 0.000 |" in fmt
    for name in ("terminate_share", "format_ok"):
        svg = exp / "curves" / f"{name}.svg"
        root = ET.fromstring(svg.read_text())  # well-formed XML
        assert root.tag.endswith("svg") and f"](curves/{name}.svg)" in md
    assert (exp / "curves" / "terminate_share.svg").read_text().count("<polyline") == 3
    empty = format_curves(tmp_path / "none", [0])
    assert "No GRPO log with `shop_r1/pred_terminate`" in empty and "![" not in empty


def test_svg_is_deterministic_and_escapes_names():
    series = {"a<b": [(1, 0.5), (2, 2.0)], "gold": [(1, 0.1), (2, 0.1)]}
    svg = line_chart_svg(series, title="x & y")
    assert svg == line_chart_svg(series, title="x & y")
    assert "a&lt;b" in svg and "x &amp; y" in svg and 'stroke-dasharray="4 3"' in svg
    ET.fromstring(svg)


def test_doctests():
    assert doctest.testmod(training.curves).failed == 0
