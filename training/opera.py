"""Import the OPeRA dataset (real Amazon sessions with persona surveys and rationales) as shop-r1 traces.

OPeRA ships three tables; each may be CSV/TSV, parquet or JSON lines, in one file or several shards, anywhere under
the directory given. Tables are recognised by their columns, not their file names:

- **action** table (has `session_id` and `action_type`): `action_id`, `timestamp`, `action_type` (`click` / `input`
  / `terminate`), `click_type`, `semantic_id` (the element's dotted name), `simplified_html`, `rationale` (often
  empty), `input_text`, `products`, `url`, `page_meta`.
- **session** table (has `session_id`, no `action_type`): links a session to its `user_id`; an `intent`, `task` or
  `goal` column, when present, becomes the session's intent text.
- **user** table (has `user_id` and `survey`): the persona survey, a JSON object (or a JSON string of one).

Mapping (PAPER.md, "Neighbours"):

- `input` -> `type_and_submit` (`semantic_id` as the name, `input_text` as the text); `click` -> `click`
  (`semantic_id` as the name); `terminate` -> `terminate`. Other action types, and clicks or inputs without a
  `semantic_id`, are skipped and counted.
- Steps are ordered by timestamp (when every row of the session has one), then `action_id`, then file order.
- The page is `simplified_html` at `url`; the title comes from `page_meta.title` or the page's `<title>`.
- The persona: survey answers whose question mentions price, brands, reviews, impulse/decisions, patience or
  browsing are mapped onto `Persona` traits (Likert numbers or agree/often-style words scaled to [0, 1]); a list of
  favourite brands becomes `preferred_brands`. The raw survey is kept in the description (cut to the field's 1000
  characters) and in full in the trace header (`survey`).
- The outcome: `terminate` when the last action is one; `purchase` when a click's `click_type` or name says so
  (buy now, place order, checkout, purchase); else `truncated` (the log just ends).

`import_opera` writes the traces into a run directory (`OUT_DIR/opera` by default) and then calls
`training.data.build_datasets`, so OPeRA and simulated runs share one path.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import re
import shutil
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agent.policy.persona import Intent, Persona
from agent.runtime.trace import EndRecord, SessionHeader, StepRecord, TraceWriter

from .data import DataConfig, DataError, build_datasets

__all__ = ["OperaConfig", "import_opera", "map_action", "persona_from_survey", "read_opera_tables", "write_traces"]

log = logging.getLogger(__name__)

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".jsonl", ".ndjson", ".json")
_PURCHASE = re.compile(r"buy_now|place_order|purchase|checkout|proceed_to_(?:checkout|buy)", re.I)


@dataclass(frozen=True)
class OperaConfig:
    """How OPeRA rows become traces."""

    default_intent: str = field(
        default="You are shopping on Amazon for something you need.",
        metadata={"help": "Intent text of a session whose session table row has no intent/task/goal."},
    )
    run_name: str = field(
        default="opera",
        metadata={"help": "Run directory name inside OUT_DIR; it prefixes the dataset's session ids."},
    )
    policy: str = field(default="human (OPeRA)", metadata={"help": "The trace header's policy field."})


# --------------------------------------------------------------------------------------------------------------------
# Reading tables


def _read_file(path: Path) -> list[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # simplified pages are long
        with open(path, newline="", encoding="utf-8-sig") as f:
            return list(csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ","))
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    text = path.read_text(encoding="utf-8")
    if suffix == ".json":
        data = json.loads(text)
        if isinstance(data, Mapping):
            data = next((v for v in data.values() if isinstance(v, list)), [data])
        if not isinstance(data, list):
            raise DataError(f"Expect a JSON list of rows in {path}, actually: {type(data).__name__}")
        return [row for row in data if isinstance(row, dict)]
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as exc:
                raise DataError(f"{path}:{lineno}: Expect a JSON object per line, actually: {exc}") from None
    return rows


def _kind(columns: set[str]) -> str | None:
    if {"session_id", "action_type"} <= columns:
        return "action"
    if {"user_id", "survey"} <= columns:
        return "user"
    if "session_id" in columns:
        return "session"
    return None


def read_opera_tables(directory: str | Path) -> dict[str, list[dict[str, Any]]]:
    """The action, session and user tables under `directory` (any depth), each the rows of all its files.

    Raises `DataError` when there is no action table.
    """
    root = Path(directory)
    if not root.is_dir():
        raise DataError(f"Expect an OPeRA directory, actually: {root} does not exist")
    tables: dict[str, list[dict[str, Any]]] = {"action": [], "session": [], "user": []}
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES)
    for path in files:
        try:
            rows = _read_file(path)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            log.warning("skipping %s: %s", path, str(exc).splitlines()[0][:200])
            continue
        if not rows:
            continue
        kind = _kind(set(rows[0]))
        if kind is None:
            log.info("skipping %s: not an OPeRA table (columns %s)", path, sorted(rows[0])[:8])
            continue
        log.info("%s: %s table, %d rows", path, kind, len(rows))
        tables[kind].extend(rows)
    if not tables["action"]:
        raise DataError(f"Expect an OPeRA action table (columns session_id, action_type, ...) under {root}, "
                        f"actually: none among {len(files)} table files")
    return tables


# --------------------------------------------------------------------------------------------------------------------
# Mapping


def _str(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def map_action(row: Mapping[str, Any]) -> dict[str, str] | None:
    """Our action for an OPeRA action row, or None when it has no counterpart (or no element name).

    >>> map_action({"action_type": "input", "semantic_id": "search_input", "input_text": "tea"})
    {'type': 'type_and_submit', 'name': 'search_input', 'text': 'tea'}
    >>> map_action({"action_type": "click", "semantic_id": "nav_bar.homepage"})
    {'type': 'click', 'name': 'nav_bar.homepage'}
    >>> map_action({"action_type": "terminate"}), map_action({"action_type": "scroll"})
    ({'type': 'terminate'}, None)
    """
    kind = _str(row.get("action_type")).lower()
    name = _str(row.get("semantic_id"))
    if kind == "terminate":
        return {"type": "terminate"}
    if kind == "click" and name:
        return {"type": "click", "name": name}
    if kind in ("input", "type", "type_and_submit") and name:
        return {"type": "type_and_submit", "name": name, "text": _str(row.get("input_text"))}
    return None


_WORD_SCALE = {
    "strongly disagree": 0.0, "disagree": 0.25, "somewhat disagree": 0.375, "neutral": 0.5,
    "neither agree nor disagree": 0.5, "somewhat agree": 0.625, "agree": 0.75, "strongly agree": 1.0,
    "never": 0.0, "rarely": 0.25, "sometimes": 0.5, "often": 0.75, "usually": 0.75, "always": 1.0,
    "not at all important": 0.0, "not important": 0.0, "slightly important": 0.25, "moderately important": 0.5,
    "important": 0.75, "very important": 1.0, "extremely important": 1.0,
    "very low": 0.0, "low": 0.25, "medium": 0.5, "moderate": 0.5, "high": 0.75, "very high": 1.0,
    "no": 0.0, "yes": 1.0,
}

# trait -> (key pattern, sign): the first matching answer wins; sign -1 flips the scale.
_TRAIT_KEYS: tuple[tuple[str, str, int], ...] = (
    ("budget_sensitivity", r"price|budget|deal|discount|coupon|cheap|sale", 1),
    ("brand_loyalty", r"brand", 1),
    ("review_reading", r"review|rating", 1),
    ("decisiveness", r"decisive|decide|impulse|impulsive|quick", 1),
    ("patience", r"patien", 1),
    ("exploration", r"browse|browsing|explor|compar", 1),
)


def _flatten(survey: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in survey.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{name}.")
        else:
            yield name, value


def _likert_top(answers: Sequence[Any]) -> float:
    numbers = [v for v in answers if isinstance(v, int | float) and not isinstance(v, bool) and v > 1]
    top = max(numbers, default=5)
    return next((s for s in (5, 7, 10, 100) if top <= s), top)


def _scaled(value: Any, top: float) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        if 0 <= value <= 1 and isinstance(value, float):
            return float(value)
        return min(1.0, max(0.0, (value - 1) / (top - 1))) if top > 1 else None
    if isinstance(value, str):
        text = " ".join(value.lower().replace("_", " ").split())
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return _scaled(float(text) if "." in text else int(text), top)
        return _WORD_SCALE.get(text)
    return None


def _parse_survey(raw: Any) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        return dict(raw)
    text = _str(raw)
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {"survey": text}
    return dict(data) if isinstance(data, Mapping) else {"survey": data}


def persona_from_survey(user_id: str, survey: Any) -> Persona:
    """A `Persona` from an OPeRA user survey: the traits that can be read off it, the raw survey in the description.

    >>> p = persona_from_survey("u1", {"price_sensitivity": 5, "brand_loyalty": 1, "favorite_brands": ["Sony"]})
    >>> p.budget_sensitivity, p.brand_loyalty, p.preferred_brands, p.patience
    (1.0, 0.0, ('Sony',), 0.5)
    """
    data = _parse_survey(survey)
    answers = list(_flatten(data))
    traits: dict[str, float] = {}
    top = _likert_top([v for _, v in answers])
    for trait, pattern, sign in _TRAIT_KEYS:
        for key, value in answers:
            if isinstance(value, list) or not re.search(pattern, key, re.I):
                continue
            scaled = _scaled(value, top)
            if scaled is not None:
                traits[trait] = round(scaled if sign > 0 else 1 - scaled, 3)
                break
    brands: tuple[str, ...] = ()
    for key, value in answers:
        if re.search(r"brand", key, re.I) and isinstance(value, list | str) and _scaled(value, top) is None:
            items = value if isinstance(value, list) else re.split(r"[,;]", value)
            brands = tuple(dict.fromkeys(_str(b) for b in items if _str(b)))[:8]
            break
    name = next((_str(v) for k, v in answers if k.lower() in ("name", "first_name", "nickname") and _str(v)), "")
    name = name or f"Shopper {user_id}"
    facts = [f"{k.replace('_', ' ')}: {_str(v)}" for k, v in answers
             if k.lower() in ("age", "gender", "occupation", "income", "location", "education") and _str(v)]
    about = f"A real Amazon shopper (OPeRA user {user_id})" + (f"; {', '.join(facts)}." if facts else ".")
    raw = json.dumps(data, ensure_ascii=False) if data else "none"
    description = f"{about} Survey: {raw}"
    if len(description) > 1000:
        description = description[:997] + "..."
    return Persona(persona_id=f"opera-{user_id}"[:128], name=name[:128], description=description,
                   preferred_brands=brands, **traits)


# --------------------------------------------------------------------------------------------------------------------
# Writing traces


def _timestamp(value: Any) -> float | None:
    text = _str(value)
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    try:
        return float(_str(value))
    except ValueError:
        return None


def _ordered(rows: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    stamps = [_timestamp(r.get("timestamp")) for _, r in rows]
    ids = [_number(r.get("action_id")) for _, r in rows]
    use_time = all(t is not None for t in stamps)
    use_ids = all(i is not None for i in ids)

    def key(k: int) -> tuple[float, float, int]:
        return (stamps[k] if use_time else 0.0, ids[k] if use_ids else 0.0, rows[k][0])  # type: ignore[return-value]

    return [rows[k][1] for k in sorted(range(len(rows)), key=key)]


def _safe_id(session_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", session_id).strip("._") or "session"
    if safe != session_id:
        safe = f"{safe[:80]}-{hashlib.blake2b(session_id.encode(), digest_size=4).hexdigest()}"
    return safe


def _title(row: Mapping[str, Any], html: str) -> str:
    meta = row.get("page_meta")
    if isinstance(meta, str) and meta.strip().startswith("{"):
        try:
            meta = json.loads(meta)
        except ValueError:
            meta = None
    if isinstance(meta, Mapping) and _str(meta.get("title")):
        return _str(meta.get("title"))
    match = re.search(r"<title>(.*?)</title>", html, re.S | re.I)
    return " ".join(match.group(1).split()) if match else ""


def _site(urls: Sequence[str]) -> str:
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    return "opera"


def _intent(session_row: Mapping[str, Any] | None, default: str) -> Intent:
    for key in ("intent", "task", "goal", "shopping_goal", "instruction"):
        text = _str((session_row or {}).get(key))
        if text:
            return Intent(text=text[:1000])
    return Intent(text=default)


def write_traces(tables: Mapping[str, list[dict[str, Any]]], run_dir: str | Path,
                 config: OperaConfig | None = None) -> dict[str, Any]:
    """Write one schema-v1 trace per OPeRA session into `run_dir` (cleared first); returns what was mapped."""
    config = config or OperaConfig()
    run = Path(run_dir)
    if (run / "sessions").exists():
        shutil.rmtree(run / "sessions")
    by_session: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for i, row in enumerate(tables["action"]):
        sid = _str(row.get("session_id"))
        if sid:
            by_session[sid].append((i, row))
    sessions = {_str(r.get("session_id")): r for r in tables.get("session", [])}
    users = {_str(r.get("user_id")): r for r in tables.get("user", [])}
    stats: Counter[str] = Counter()
    used: set[str] = set()
    for sid, rows in by_session.items():
        ordered = _ordered(rows)
        session_row = sessions.get(sid)
        user_id = _str((session_row or {}).get("user_id")) or _str(ordered[0].get("user_id")) or "unknown"
        user = users.get(user_id)
        stats["sessions_with_survey" if user else "sessions_without_survey"] += 1
        persona = persona_from_survey(user_id, user.get("survey") if user else None)
        intent = _intent(session_row, config.default_intent)
        steps: list[tuple[dict[str, Any], dict[str, str]]] = []
        for row in ordered:
            action = map_action(row)
            if action is None:
                stats[f"skipped_{_str(row.get('action_type')).lower() or 'unknown'}"] += 1
                continue
            steps.append((row, action))
        if not steps:
            stats["sessions_without_actions"] += 1
            continue
        safe = _safe_id(sid)
        while safe in used:
            safe += "_"
        used.add(safe)
        urls = [_str(r.get("url")) for r, _ in steps]
        with TraceWriter(run, safe) as writer:
            writer.write(SessionHeader(
                session_id=safe, persona=persona.model_dump(mode="json"), intent=intent.model_dump(mode="json"),
                site=_site(urls), policy=config.policy, backend="opera", source="opera",
                source_session_id=sid, user_id=user_id, survey=_parse_survey(user.get("survey")) if user else None,
            ))
            purchased = False
            for k, (row, action) in enumerate(steps):
                html = _str(row.get("simplified_html"))
                rationale = _str(row.get("rationale")) or None
                stats["steps"] += 1
                stats[f"steps_{action['type']}"] += 1
                stats["steps_with_rationale" if rationale else "steps_without_rationale"] += 1
                click_type = _str(row.get("click_type"))
                if action["type"] == "click" and (_PURCHASE.search(click_type) or _PURCHASE.search(action["name"])):
                    purchased = True
                writer.write(StepRecord(
                    step=k + 1, url=urls[k], title=_title(row, html), observation=html, rationale=rationale,
                    action=action, valid=True, next_url=urls[k + 1] if k + 1 < len(urls) else None,
                    opera={"action_id": _str(row.get("action_id")), "timestamp": _str(row.get("timestamp")),
                           "action_type": _str(row.get("action_type")), "click_type": click_type or None},
                ))
            last = steps[-1][1]["type"]
            outcome = "terminate" if last == "terminate" else "purchase" if purchased else "truncated"
            writer.write(EndRecord(outcome=outcome, steps=len(steps), final_url=urls[-1],
                                   error=None if outcome != "truncated" else "the log ends without a purchase or "
                                                                             "terminate"))
            stats[f"outcome_{outcome}"] += 1
            stats["sessions"] += 1
    if not stats["sessions"]:
        raise DataError("Expect OPeRA sessions with at least one click, input or terminate, actually: none")
    (run / "run.json").write_text(json.dumps({"source": "opera", "sessions": stats["sessions"],
                                              "stats": dict(sorted(stats.items()))}, indent=2) + "\n")
    return dict(sorted(stats.items()))


def import_opera(
    directory: str | Path,
    out_dir: str | Path,
    *,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    max_context_tokens: int = DataConfig.max_context_tokens,
    tokenizer_dir: str | Path | None = None,
    config: OperaConfig | None = None,
) -> dict[str, Any]:
    """Read OPeRA's tables under `directory`, write traces to `OUT_DIR/<run_name>`, then `build_datasets` into
    `out_dir`. Returns the data meta, with an `opera` section (also written to meta.json)."""
    config = config or OperaConfig()
    tables = read_opera_tables(directory)
    run_dir = Path(out_dir) / config.run_name
    stats = write_traces(tables, run_dir, config)
    log.info("OPeRA: %d sessions, %d steps -> %s", stats.get("sessions", 0), stats.get("steps", 0), run_dir)
    meta = build_datasets([run_dir], out_dir, DataConfig(
        split=tuple(split), seed=seed, max_context_tokens=max_context_tokens,  # type: ignore[arg-type]
        tokenizer_dir=str(tokenizer_dir) if tokenizer_dir is not None else None))
    meta["opera"] = {"directory": str(Path(directory).resolve()), "run_dir": str(run_dir.resolve()),
                     "tables": {k: len(v) for k, v in tables.items()}, **stats}
    (Path(out_dir) / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta
