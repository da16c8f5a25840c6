"""The dynamics behind Table 4's pathologies, from each GRPO model's `log.csv`: tables per logged step and SVG charts.

The paper's claims are dynamic: without DARS, or with a binary action reward, the policy learns to spam the easy
`terminate`; without the format reward, its outputs stop being well-formed JSON. So the evidence is a curve over GRPO
steps, not a final number:

- **terminate share**: `shop_r1/pred_terminate`, the share of sampled completions whose action is `terminate`, for
  Shop-R1, no DARS and the binary rewards, against the share of gold actions that are `terminate`
  (`shop_r1/gold_terminate`, the honest rate);
- **format**: `shop_r1/format_ok`, the share of sampled completions that pass the format check, for Shop-R1 and no
  format reward (whose format reward component is 0 by construction, so its `shop_r1/format` says nothing).

Both are logged by `training.rewards.ShopR1Reward` (`sample_shares`) once per logging step, averaged over that step's
completions. Each curve is the mean over seeds at the steps every seed logged.
"""

from __future__ import annotations

import csv
import html
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CURVES", "Curve", "format_curves", "line_chart_svg", "mean_curve", "read_log_column"]


@dataclass(frozen=True)
class Curve:
    """One chart: a log column of several models (and an optional reference column), over GRPO steps."""

    key: str
    title: str
    column: str
    models: tuple[str, ...]
    reference: str | None = None
    reference_label: str = ""


CURVES: tuple[Curve, ...] = (
    Curve("terminate_share", "Terminate share of sampled completions over GRPO steps", "shop_r1/pred_terminate",
          ("shop_r1", "no_dars", "binary_action", "binary_action_no_format", "sft_rl_binary", "rl_binary"),
          reference="shop_r1/gold_terminate", reference_label="gold terminate share"),
    Curve("format_ok", "Share of sampled completions passing the format check over GRPO steps", "shop_r1/format_ok",
          ("shop_r1", "no_format")),
)

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#7f7f7f")


def read_log_column(path: str | Path, column: str) -> list[tuple[int, float]]:
    """(step, value) of every row of a trainer `log.csv` that has `column` (the last value when a step repeats)."""
    by_step: dict[int, float] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            value = row.get(column)
            if value in (None, ""):
                continue
            try:
                by_step[int(float(row["step"]))] = float(value)
            except (KeyError, ValueError):
                raise ValueError(f"Expect numeric step and {column} in {path}, actually: {row.get('step')!r}, "
                                 f"{value!r}") from None
    return sorted(by_step.items())


def mean_curve(paths: Sequence[Path], column: str) -> list[tuple[int, float]]:
    """The mean over the logs in `paths` (one per seed) of `column`, at the steps every log has it."""
    series = [dict(read_log_column(p, column)) for p in paths if p.is_file()]
    series = [s for s in series if s]
    if not series:
        return []
    steps = sorted(set.intersection(*(set(s) for s in series)))
    return [(step, statistics.fmean(s[step] for s in series)) for step in steps]


def line_chart_svg(series: Mapping[str, Sequence[tuple[float, float]]], *, title: str, y_label: str = "share",
                   y_range: tuple[float, float] = (0.0, 1.0), width: int = 640, height: int = 320) -> str:
    """A self-contained SVG line chart (no scripts, no external resources) of named (x, y) series with a legend.

    Pure and deterministic: the same series give the same bytes.

    >>> svg = line_chart_svg({"a": [(1, 0.0), (2, 1.0)]}, title="t")
    >>> svg.startswith("<svg") and "<polyline" in svg and ">a</text>" in svg
    True
    """
    left, right, top, bottom = 48, 170, 28, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [x for points in series.values() for x, _ in points]
    x_lo, x_hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if x_hi == x_lo:
        x_hi = x_lo + 1
    y_lo, y_hi = y_range

    def px(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * plot_w

    def py(y: float) -> float:
        y = min(max(y, y_lo), y_hi)
        return top + (1 - (y - y_lo) / (y_hi - y_lo)) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="16" font-size="13">{html.escape(title)}</text>',
           f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>']
    for k in range(5):
        y = y_lo + (y_hi - y_lo) * k / 4
        out.append(f'<line x1="{left}" y1="{py(y):.1f}" x2="{left + plot_w}" y2="{py(y):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 4}" y="{py(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
    for x in sorted({x_lo, x_hi, round((x_lo + x_hi) / 2)}):
        out.append(f'<text x="{px(x):.1f}" y="{top + plot_h + 14}" text-anchor="middle">{x:g}</text>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle">GRPO step</text>')
    out.append(f'<text x="12" y="{top + plot_h / 2:.1f}" transform="rotate(-90 12 {top + plot_h / 2:.1f})" '
               f'text-anchor="middle">{html.escape(y_label)}</text>')
    for i, (name, points) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        dash = ' stroke-dasharray="4 3"' if name.startswith("gold") else ""
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points if math.isfinite(y))
        if coords:
            out.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="1.5"{dash}/>')
        ly = top + 12 + 16 * i
        out.append(f'<line x1="{left + plot_w + 10}" y1="{ly - 4}" x2="{left + plot_w + 28}" y2="{ly - 4}" '
                   f'stroke="{color}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{left + plot_w + 32}" y="{ly}">{html.escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _thin(steps: Sequence[int], most: int) -> list[int]:
    """At most `most` steps, evenly spaced, first and last kept.

    >>> _thin(list(range(1, 31)), 4), _thin([1, 2], 4)
    ([1, 11, 20, 30], [1, 2])
    """
    if len(steps) <= most:
        return list(steps)
    picks = {round(i * (len(steps) - 1) / (most - 1)) for i in range(most)}
    return [steps[i] for i in sorted(picks)]


def format_curves(exp: str | Path, seeds: Sequence[int], *, svg_dir: str | Path | None = None,
                  max_rows: int = 12) -> str:
    """Markdown: per `CURVES` chart a table of the curve per logged step (at most `max_rows` steps, evenly spaced)
    for the models that have a log, and with `svg_dir` an SVG chart written there and linked (relative to `exp`)."""
    exp = Path(exp)
    lines = ["## Evidence: the pathologies over GRPO steps", "",
             "Mean over seeds at each logged step (`training.curves`). Terminate-spam shows as a terminate share "
             "climbing far above the gold share; format collapse as the well-formed share falling.", ""]
    for curve in CURVES:
        series: dict[str, list[tuple[int, float]]] = {}
        for model in curve.models:
            points = mean_curve([exp / f"seed{s}" / "models" / model / "log.csv" for s in seeds], curve.column)
            if points:
                series[model] = points
        lines += [f"### {curve.title}", ""]
        if not series:
            lines += [f"No GRPO log with `{curve.column}` for {', '.join(curve.models)} (not run, or run before "
                      "the column was logged).", ""]
            continue
        if curve.reference:
            reference = mean_curve([exp / f"seed{s}" / "models" / m / "log.csv" for s in seeds for m in series],
                                   curve.reference)
            if reference:
                series[curve.reference_label] = reference
        steps = sorted({step for points in series.values() for step, _ in points})
        lines += ["| step | " + " | ".join(series) + " |", "|---|" + "---|" * len(series)]
        values = {name: dict(points) for name, points in series.items()}
        for step in _thin(steps, max_rows):
            cells = [f"{values[name][step]:.3f}" if step in values[name] else "–" for name in series]
            lines.append(f"| {step} | " + " | ".join(cells) + " |")
        lines.append("")
        if svg_dir is not None:
            out = Path(svg_dir)
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"{curve.key}.svg"
            path.write_text(line_chart_svg(series, title=curve.title), encoding="utf-8")
            rel = path.relative_to(exp) if path.is_relative_to(exp) else path
            lines += [f"![{curve.title}]({rel.as_posix()})", ""]
    return "\n".join(lines)
