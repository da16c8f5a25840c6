"""A run as one self-contained HTML page: `write_report(run_dir)` writes `RUN_DIR/report.html`.

The page works offline and from a single file: CSS is inline, charts are CSS bars, and screenshots are embedded as
base64 `data:` URIs (each up to `max_image_bytes`, all together up to `max_total_bytes`; past a cap the page links
the file instead and says so). Every piece of trace text goes through Jinja2's autoescaping, so a rationale such as
`<script>…</script>` is shown as text. Sessions are `<details>` blocks, readable without JavaScript; a few lines of
inline script only add the outcome filter buttons.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from agent.runtime.trace import Trace

from .summary import OUTCOMES, UNPARSEABLE, FunnelConfig, RunSummary, load_run, summarize

__all__ = ["ReportOptions", "template_environment", "write_report"]

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class ReportOptions:
    """What goes into the page."""

    max_image_bytes: int = 1_500_000
    """A screenshot larger than this is linked, not embedded."""
    max_total_bytes: int = 60_000_000
    """Once this many screenshot bytes are embedded, later ones are linked."""
    max_observation_chars: int = 20_000
    """Simplified HTML longer than this is cut (the page says how much was left out); 0 leaves observations out."""
    funnel: FunnelConfig = field(default_factory=FunnelConfig)


@dataclass
class _Image:
    src: str | None = None  # a data: URI
    note: str | None = None  # why it is not embedded
    link: str | None = None  # relative path to the file, for a skipped image


@dataclass
class _Step:
    n: int
    url: str
    title: str
    rationale: str | None
    action_json: str | None
    action_type: str
    valid: bool
    error_kind: str | None
    error: str | None
    next_url: str | None
    timing: str
    shot: _Image | None
    observation: str | None
    observation_cut: int
    raw_output: str | None


@dataclass
class _Session:
    id: str
    outcome: str
    steps: list[_Step]
    persona: str
    intent: str
    policy: str
    seed: Any
    started_at: str
    end_error: str | None
    final_url: str | None
    final_shot: _Image | None
    torn_lines: int
    file: str


class _Images:
    """Embeds screenshots as data URIs within the size caps."""

    def __init__(self, run_dir: Path, out_dir: Path, options: ReportOptions):
        self.run_dir, self.out_dir, self.options = run_dir, out_dir, options
        self.embedded_bytes = 0
        self.embedded = 0
        self.skipped = 0
        self.missing = 0

    def get(self, rel: str | None) -> _Image | None:
        if not rel:
            return None
        path = self.run_dir / rel
        root = self.run_dir.resolve()
        if not path.resolve().is_relative_to(root) or path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            self.missing += 1  # a trace must not make the report embed an arbitrary file
            return _Image(note=f"not an image in the run directory, left out: {rel}")
        link = quote(Path(os.path.relpath(path, self.out_dir)).as_posix())
        try:
            size = path.stat().st_size
        except OSError:
            self.missing += 1
            return _Image(note=f"screenshot file missing: {rel}")
        mb = f"{size / 1e6:.1f} MB"
        if size > self.options.max_image_bytes:
            self.skipped += 1
            return _Image(note=f"screenshot not embedded ({mb}, over the {self.options.max_image_bytes / 1e6:.1f} MB "
                               "per-image cap)", link=link)
        if self.embedded_bytes + size > self.options.max_total_bytes:
            self.skipped += 1
            return _Image(note=f"screenshot not embedded (the report's {self.options.max_total_bytes / 1e6:.0f} MB "
                               "screenshot budget is used up)", link=link)
        data = path.read_bytes()
        self.embedded_bytes += size
        self.embedded += 1
        mime = "image/jpeg" if path.suffix.lower() in (".jpg", ".jpeg") else "image/png"
        return _Image(src=f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}")


def _timing(t: dict[str, float]) -> str:
    parts = [f"{k} {v:.0f} ms" for k, v in t.items() if k in ("policy", "env")]
    return " · ".join(parts)


def _session_view(trace: Trace, images: _Images, options: ReportOptions) -> _Session:
    steps = []
    for s in trace.steps:
        obs = s.observation if options.max_observation_chars else None
        cut = 0
        if obs is not None and len(obs) > options.max_observation_chars:
            cut = len(obs) - options.max_observation_chars
            obs = obs[: options.max_observation_chars]
        action = s.action_dict
        steps.append(_Step(
            n=s.step, url=s.url, title=s.title, rationale=s.rationale,
            action_json=json.dumps(action, ensure_ascii=False) if action is not None else None,
            action_type=action.get("type", UNPARSEABLE) if action is not None else UNPARSEABLE,
            valid=s.valid, error_kind=s.error_kind, error=s.error, next_url=s.next_url, timing=_timing(s.timing_ms),
            shot=images.get(s.screenshot), observation=obs, observation_cut=cut,
            raw_output=s.raw_output if s.action is None else None,
        ))
    end = trace.end
    persona = trace.header.persona
    intent = trace.header.intent
    return _Session(
        id=trace.session_id, outcome=trace.outcome, steps=steps,
        persona=str(persona.get("name") or persona.get("persona_id") or ""),
        intent=str(intent.get("text") or ""), policy=trace.header.policy, seed=trace.header.seed,
        started_at=trace.header.started_at, end_error=end.error if end else None,
        final_url=getattr(end, "final_url", None) if end else None,
        final_shot=images.get(getattr(end, "final_screenshot", None)) if end else None,
        torn_lines=trace.torn_lines, file=trace.path.name if trace.path else "",
    )


def _config_rows(run: dict[str, Any] | None) -> list[tuple[str, str]]:
    if not run:
        return []
    rows: list[tuple[str, str]] = []
    for key, value in run.items():
        if key == "config" and isinstance(value, dict):
            rows.extend((k, _show(v)) for k, v in value.items())
        else:
            rows.append((key, _show(value)))
    return rows


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _bars(counts: dict[str, int], total: int) -> list[dict[str, Any]]:
    return [{"label": k, "count": c, "pct": 100 * c / total if total else 0.0} for k, c in counts.items()]


def _time_split(summary: RunSummary) -> list[dict[str, Any]]:
    t = summary.timing
    parts = {"policy": t.policy_ms or 0.0, "env": t.env_ms or 0.0, "trace": t.trace_ms or 0.0}
    total = sum(parts.values())
    return [{"key": k, "pct": 100 * v / total} for k, v in parts.items()] if total else []


def template_environment() -> jinja2.Environment:
    """The reports' Jinja2 environment: the package's templates, autoescaped (product text is data), strict about
    undefined names, with the `pct` and `num` filters."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda x: "n/a" if x is None else f"{100 * x:.1f}%"
    env.filters["num"] = lambda x, d=1: "n/a" if x is None else f"{x:.{d}f}"
    return env


def write_report(run_dir: str | Path, out: str | Path | None = None, options: ReportOptions | None = None) -> Path:
    """Write a self-contained HTML report of `run_dir` to `out` (default `RUN_DIR/report.html`); return its path.

    Unreadable session files are skipped with a warning (and listed in the report); ValueError when none is readable.
    """
    opts = options or ReportOptions()
    run_dir = Path(run_dir)
    traces, unreadable = load_run(run_dir)
    if not traces and unreadable:
        raise ValueError(f"Expect at least one readable session in {run_dir}, actually: none of {len(unreadable)} "
                         f"(first: {unreadable[0][:200]})")
    out_path = Path(out) if out else run_dir / "report.html"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    summary: RunSummary = summarize(traces, opts.funnel)
    run: dict[str, Any] | None = None
    if (run_dir / "run.json").is_file():
        try:
            loaded = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        except ValueError as exc:
            unreadable.append(f"run.json: {exc}")
        else:
            if isinstance(loaded, dict):
                run = loaded
            else:
                unreadable.append(f"run.json: Expect a JSON object, actually: {type(loaded).__name__}")
    images = _Images(run_dir, out_path.parent, opts)
    sessions = [_session_view(t, images, opts) for t in traces]
    outcome_counts = {o: c for o, c in summary.outcomes.items() if c or o in OUTCOMES[:2]}

    html = template_environment().get_template("report.html").render(
        title=f"shop-r1 report · {run_dir.resolve().name}",
        run_dir=str(run_dir),
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        config_rows=_config_rows(run),
        s=summary,
        outcome_counts=outcome_counts,
        funnel=[{"label": f.label, "count": f.sessions, "pct": 100 * (f.fraction or 0.0)} for f in summary.funnel],
        actions=_bars(summary.action_types, summary.total_steps),
        time_split=_time_split(summary),
        sessions=sessions,
        images=images,
        options=opts,
        unreadable=unreadable,
    )
    out_path.write_text(html, encoding="utf-8")
    log.info("wrote %s (%d sessions, %d screenshots embedded, %d linked)", out_path, len(sessions), images.embedded,
             images.skipped)
    return out_path
