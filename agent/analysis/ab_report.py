"""An A/B test as one self-contained HTML page: `write_abtest_report(result, out)` (abtest writes `OUT/report.html`).

The page leads with the verdict, then two inline SVG charts (no JavaScript, no external assets):

- a **forest plot** of the paired differences B - A, one row per metric (conversion in percentage points by
  Newcombe's paired interval with the exact McNemar p; steps, searches and seconds per session by paired t), each
  with its 95% interval, the unpaired interval as a thin line beneath, and a zero line. The metrics have different
  units, so each row has its own scale, symmetric about the shared zero line, with its bound written under it;
- the **funnel of both arms side by side**: for each stage, the share of sessions of A and of B that reached it.

Tables with the same numbers follow, then the pairs whose sessions ended differently on the two arms (persona, intent,
outcomes), so a reader can open those traces. Every piece of text, in the HTML and in the SVG, goes through Jinja2's
autoescaping: a persona or product name such as `<script>` is shown as text.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .abtest import POWER, ABResult, ArmResult, PairedMetric
from .report import template_environment
from .stats import Interval
from .summary import load_run

__all__ = ["ForestRow", "verdict", "write_abtest_report"]

log = logging.getLogger(__name__)

# Geometry of the charts, in SVG user units (the SVGs scale to the page's width).
WIDTH = 960
PLOT_LEFT, PLOT_RIGHT = 250, 690
ZERO_X = (PLOT_LEFT + PLOT_RIGHT) / 2
ROW_H = 70
BAR_LEFT, BAR_RIGHT = 170, 800
MAX_PAIRS_LISTED = 50


@dataclass(frozen=True)
class ForestRow:
    """One metric of the forest plot: the paired interval (and the unpaired one), in the metric's own units."""

    label: str
    unit: str  # shown after the numbers: " pp" for conversion, "" otherwise
    scale: float  # 100 for conversion (a difference of rates shown in percentage points), else 1
    diff: Interval
    unpaired: Interval | None
    detected: bool
    test: str  # "exact McNemar p = 0.031", "paired t", ...
    sessions_needed: int | None


@dataclass(frozen=True)
class _Seg:
    x1: float
    x2: float


@dataclass(frozen=True)
class _ForestView:
    """A `ForestRow` laid out: y of its centre, x of its point and segments, its axis bound and texts."""

    y: float
    row: ForestRow
    point: float | None
    ci: _Seg | None
    unpaired: _Seg | None
    bound: str  # the row's scale, e.g. "2.5" (the axis runs from -bound to +bound)
    value: str  # "-75.0 pp [-95.4, -8.5]"
    unpaired_value: str
    title: str  # tooltip


def _nice(x: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is >= x (x > 0)."""
    power = 10 ** math.floor(math.log10(x))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= x * (1 - 1e-12))


def _fmt(v: float | None, scale: float, signed: bool = True) -> str:
    """`v * scale` with a sign (none on zero) and a real minus: '+0.45', '\u22120.45', '0.00', '\u221220.0'."""
    if v is None:
        return "n/a"
    x = v * scale
    digits = 1 if scale != 1 or abs(x) >= 10 else 2
    if round(x, digits) == 0:
        return f"{0:.{digits}f}"
    text = f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"
    return text.replace("-", "\u2212")


def _interval_text(i: Interval | None, scale: float, unit: str) -> str:
    if i is None or i.estimate is None:
        return "n/a"
    text = _fmt(i.estimate, scale) + unit
    if i.low is not None and i.high is not None:
        text += f" [{_fmt(i.low, scale)}, {_fmt(i.high, scale)}]"
    return text


def _excludes_zero(i: Interval) -> bool:
    return i.low is not None and i.high is not None and (i.low > 0 or i.high < 0)


def forest_rows(result: ABResult) -> list[ForestRow]:
    """The forest plot's rows: the paired metrics, or the unpaired differences when no session is on both arms."""
    p = result.paired
    if p is not None:
        def row(m: PairedMetric, label: str, percent: bool = False) -> ForestRow:
            test = f"exact McNemar p = {m.p_value:.3g}" if m.p_value is not None else "paired t"
            return ForestRow(label=label, unit=" pp" if percent else "", scale=100.0 if percent else 1.0,
                             diff=m.diff, unpaired=m.unpaired_diff, detected=m.detected, test=test,
                             sessions_needed=m.sessions_needed)

        return [row(p.conversion, "Conversion", percent=True), row(p.steps, "Steps per session"),
                row(p.searches, "Searches per session"), row(p.seconds, "Seconds waiting per session")]

    def unpaired(i: Interval, label: str, percent: bool = False) -> ForestRow:
        return ForestRow(label=label, unit=" pp" if percent else "", scale=100.0 if percent else 1.0, diff=i,
                         unpaired=None, detected=_excludes_zero(i), test=i.method, sessions_needed=None)

    return [unpaired(result.conversion_diff, "Conversion", percent=True),
            unpaired(result.steps_to_purchase_diff, "Steps to purchase"),
            unpaired(result.searches_diff, "Searches per session"),
            unpaired(result.terminate_diff, "Terminate rate", percent=True)]


def _forest_view(rows: list[ForestRow], top: float) -> list[_ForestView]:
    half = (PLOT_RIGHT - PLOT_LEFT) / 2
    views = []
    for k, r in enumerate(rows):
        values = [v for i in (r.diff, r.unpaired) if i is not None for v in (i.estimate, i.low, i.high)
                  if v is not None]
        bound = _nice(max(abs(v) for v in values) * r.scale * 1.1) if values and any(values) else 1.0

        def x(v: float | None, r: ForestRow = r, bound: float = bound) -> float | None:
            return None if v is None else round(ZERO_X + v * r.scale / bound * half, 1)

        def seg(i: Interval | None) -> _Seg | None:
            if i is None or i.low is None or i.high is None:
                return None
            lo, hi = x(i.low), x(i.high)
            assert lo is not None and hi is not None
            return _Seg(lo, hi)

        value = _interval_text(r.diff, r.scale, r.unit)
        views.append(_ForestView(
            y=top + k * ROW_H + ROW_H / 2, row=r, point=x(r.diff.estimate), ci=seg(r.diff), unpaired=seg(r.unpaired),
            bound=f"{bound:g}", value=value,
            unpaired_value=_interval_text(r.unpaired, r.scale, r.unit) if r.unpaired is not None else "",
            title=f"{r.label}: B \u2212 A = {value} ({r.test})"))
    return views


def _arm_label(arm: ArmResult) -> str:
    return arm.variant or arm.site or arm.name


def verdict(result: ABResult) -> tuple[str, str, list[str]]:
    """The verdict: (tone: better / worse / none, headline, detail sentences), from the paired tests when there are
    pairs, else from the unpaired intervals."""
    pct = round(result.confidence * 100)
    rows = forest_rows(result)
    conv = rows[0]
    d = conv.diff
    details: list[str] = []
    if d.estimate is None:
        return "none", "No verdict: an arm has no sessions", details
    ci = _interval_text(d, 100.0, " percentage points")
    p = result.paired
    basis = f"{p.pairs} pairs" if p is not None else f"{result.a.sessions} vs {result.b.sessions} sessions"
    if conv.detected:
        tone = "better" if d.estimate > 0 else "worse"
        headline = f"B converts {tone} than A"
        details.append(f"Conversion B \u2212 A: {ci} ({pct}% interval; {conv.test}; {basis}).")
    else:
        tone = "none"
        headline = "No difference in conversion detected"
        details.append(f"Conversion B \u2212 A: {ci} ({pct}% interval; {conv.test}; {basis}): the interval "
                       "covers zero.")
        if conv.sessions_needed is not None:
            details.append(f"A paired test would need about {conv.sessions_needed} sessions per arm to detect a "
                           f"difference this large ({POWER:.0%} power, {100 - pct}% two-sided).")
    others = [r for r in rows[1:] if r.detected and r.diff.estimate is not None]
    for r in others:
        assert r.diff.estimate is not None
        side = "higher" if r.diff.estimate > 0 else "lower"
        details.append(f"{r.label}: B \u2212 A = {_interval_text(r.diff, r.scale, r.unit)} ({pct}% interval, "
                       f"{r.test}): {side} on B.")
    if not others:
        details.append("No other metric differs detectably.")
    return tone, headline, details


def _funnel(result: ABResult) -> tuple[list[dict], float]:
    """Bars for the side-by-side funnel: per stage, A's and B's share of their sessions; and the chart's height."""
    width = BAR_RIGHT - BAR_LEFT
    stages = []
    top = 6.0
    for k, (fa, fb) in enumerate(zip(result.a.summary.funnel, result.b.summary.funnel, strict=True)):
        y = top + k * 58
        bars = []
        for j, (arm, f) in enumerate(((result.a, fa), (result.b, fb))):
            frac = f.fraction or 0.0
            w = round(max(frac * width, 1.5), 1)
            bars.append({"arm": "A" if j == 0 else "B", "y": y + j * 22, "w": w, "text_x": BAR_LEFT + w + 8,
                         "text": f"{f.sessions}/{arm.sessions} \u00b7 {100 * frac:.1f}%"})
        stages.append({"label": fa.label, "y": y + 20, "bars": bars})
    return stages, top + len(stages) * 58 + 4


def _pairs(result: ABResult) -> tuple[list[dict], int]:
    """Pairs whose sessions ended differently on A and B (bought on one arm only first), and how many there are."""
    try:
        traces_a, _ = load_run(result.a.run_dir)
        traces_b, _ = load_run(result.b.run_dir)
    except FileNotFoundError as exc:
        log.warning("A/B report: the pairs are left out (%s)", exc)
        return [], 0
    by_id = {t.session_id: t for t in traces_b}
    rows = []
    for a in traces_a:
        b = by_id.get(a.session_id)
        if b is None or a.outcome == b.outcome:
            continue
        bought = (a.outcome == "purchase") != (b.outcome == "purchase")
        rows.append({"id": a.session_id, "bought_one": bought,
                     "persona": str(a.header.persona.get("name") or a.header.persona.get("persona_id") or ""),
                     "intent": str(a.header.intent.get("text") or ""),
                     "a": a.outcome, "a_steps": len(a.steps), "b": b.outcome, "b_steps": len(b.steps)})
    rows.sort(key=lambda r: (not r["bought_one"], r["id"]))
    return rows[:MAX_PAIRS_LISTED], len(rows)


def write_abtest_report(result: ABResult, out: str | Path) -> Path:
    """Write the A/B report of `result` to `out` (a file, or a directory to hold `report.html`); return its path."""
    out_path = Path(out)
    if out_path.is_dir():
        out_path = out_path / "report.html"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tone, headline, details = verdict(result)
    rows = forest_rows(result)
    forest_top = 44.0
    forest = _forest_view(rows, forest_top)
    stages, funnel_h = _funnel(result)
    pairs, pairs_total = _pairs(result)
    pct = round(result.confidence * 100)
    html = template_environment().get_template("abtest_report.html").render(
        title=f"A/B test \u00b7 {_arm_label(result.a)} vs {_arm_label(result.b)}",
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        r=result, pct=pct, tone=tone, headline=headline, details=details,
        arm_a=_arm_label(result.a), arm_b=_arm_label(result.b),
        width=WIDTH, plot_left=PLOT_LEFT, plot_right=PLOT_RIGHT, zero_x=ZERO_X,
        forest=forest, forest_h=forest_top + len(rows) * ROW_H + 10, forest_top=forest_top, row_h=ROW_H,
        stages=stages, funnel_h=funnel_h, bar_left=BAR_LEFT, bar_width=BAR_RIGHT - BAR_LEFT,
        pairs=pairs, pairs_total=pairs_total, power=POWER,
        fmt=lambda i, percent=False: i.format(percent=percent),
    )
    out_path.write_text(html, encoding="utf-8")
    log.info("wrote %s", out_path)
    return out_path
