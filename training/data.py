"""Training data from session traces: the SFT and RL datasets, split by session.

One path for every source: our simulated runs and imported logs (`training.opera`) are all run directories of
schema-v1 traces (`agent.runtime.trace`), and `build_datasets` turns any number of them into::

    DATA_DIR/sft/        DatasetDict (train / validation / test): whole sessions as chats
                         columns: messages, session_id
    DATA_DIR/rl/         DatasetDict (same splits, same sessions): one row per step with a parsed action
                         columns: prompt, prompt_latest, gold_action, gold_type, gold_rationale, session_id, step,
                                  url, persona, intent, site
    DATA_DIR/meta.json   sources, split fractions, seed, counts per split, the prompt budget, what the budget cut
    DATA_DIR/splits.json the session ids of each split

- **SFT** (Shop-R1, sec. SFT): `agent.policy.prompt.build_session_chat` with rationales, one user turn (the page) and
  one assistant turn (`format_step`) per step. A step without a rationale gets a short templated one
  (`template_rationale`, counted in meta.json), so every assistant turn is a valid step; the paper synthesised its
  rationales with an LLM.
- **RL** (Shop-R1, sec. RL): `agent.policy.prompt.build_messages` with `include_rationales=False` (the paper's RL
  context is the previous pages and actions, no rationales) and the whole session (`prompt`), or the current page only
  (`prompt_latest`, the Table 5 ablation). `gold_rationale` is the recorded rationale, "" when there was none.
- **Splits** are by session, never by step: a session's steps all land in one split, the same one in both datasets.
  The order is a hash of (seed, session id), so it does not depend on the order traces were read in.
- **Personas**: `persona` / `intent` are the header's, as `agent.policy.persona` models (unknown keys dropped) in JSON;
  "" when they do not validate (then the prompts have no persona block either). `DataConfig.persona=False` (`data build
  --no-persona`) leaves the block out of every prompt, SFT and RL: the paper's context, pages and actions only; the
  columns still say who shopped.
- **Session ids** are `"<source>:<trace session id>"`, `<source>` being the run directory's name (made unique), so
  runs that reuse `s00000` do not collide. `meta.json` maps each source back to its directory, and `split_states`
  re-reads the traces to give the structured states of a split (what the scripted labeller needs).

Steps whose output could not be parsed (`action` None) are skipped: the shopper did nothing there, and the next
step's history does not hold them (as in `agent.runtime.session`). Steps the env rejected (`valid` False) stay in the
history with their error, as the policy saw them, and in SFT; they are not RL targets unless `rl_invalid_targets` is
set.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from agent.policy.persona import Intent, Persona, PersonaIntent
from agent.policy.prompt import (
    HistoryItem,
    PromptConfig,
    PromptResult,
    approx_tokens,
    build_messages,
    build_session_chat,
)
from agent.policy.schema import MAX_RATIONALE_LEN, ShopperStep, format_action, format_step
from agent.runtime.trace import Trace, read_trace
from envs.actions import ActionError, Click, Terminate, TypeAndSubmit, parse_action
from training.presets import resolve_config

__all__ = [
    "SPLITS",
    "DataConfig",
    "DataError",
    "State",
    "ConfigBudget",
    "budget_for_config",
    "build_datasets",
    "load_meta",
    "load_split",
    "parse_split",
    "persona_intent_of",
    "session_states",
    "split_states",
    "split_traces",
    "template_rationale",
]

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "validation", "test")
KINDS: tuple[str, ...] = ("sft", "rl")
META_VERSION = 1
Action = Click | TypeAndSubmit | Terminate


class DataError(ValueError):
    """Input that cannot become a dataset (no traces, a bad split, a missing data directory), with what to do."""


@dataclass(frozen=True)
class DataConfig:
    """How traces become datasets. Written to meta.json."""

    split: tuple[float, float, float] = field(
        default=(0.8, 0.1, 0.1),
        metadata={"help": "Fractions of sessions in train / validation / test; they must sum to 1."},
    )
    seed: int = field(default=0, metadata={"help": "Seed of the session split (a hash of seed and session id)."})
    max_context_tokens: int = field(
        default=3584,
        metadata={"help": "Prompt budget: all message contents of an RL prompt, or of a whole SFT session (chat "
                          "template tokens not included). The paper trains with up to 32k (Shop-R1, sec. RL); 3584 "
                          "leaves 512 tokens of a 4096-token training sequence for the chat template and the "
                          "approximate count's error (the `tiny` tokenizer averages ~3.5 characters a token). Pass "
                          "`tokenizer_dir` for exact counts. `data build --config paper-3b` sets 32,704 "
                          "(`budget_for_config`): the paper's 32k whole-session contexts."},
    )
    tokenizer_dir: str | None = field(
        default=None,
        metadata={"help": "Count tokens with this model directory's tokenizer; None: "
                          "`agent.policy.prompt.approx_tokens`."},
    )
    system: Literal["full", "compact"] = field(
        default="compact",
        metadata={"help": "The system prompt of every prompt: 'compact' (`agent.policy.prompt.compact_system_prompt`, "
                          "leaves the budget to the page) or 'full' (`agent.policy.prompt.system_prompt`)."},
    )
    rl_rationales: bool = field(
        default=False,
        metadata={"help": "Show previous steps' rationales in RL prompts. The paper's RL prompts show none (Shop-R1, "
                          "sec. RL): False. True keeps RL prompts in the SFT sessions' layout (a small model trained "
                          "on whole sessions otherwise imitates the rationale-less history and drops its rationale)."},
    )
    sft_rows: Literal["sessions", "steps"] = field(
        default="sessions",
        metadata={"help": "SFT rows: 'sessions' (the paper's cold start: one whole-session chat per row, loss on every "
                          "assistant turn; within the budget only the last pages are shown, so most steps are learned "
                          "with their page replaced by a placeholder) or 'steps' (one prompt/completion row per step: "
                          "exactly the prompt the policy sees at inference, its page shown, loss on that step only)."},
    )
    persona: bool = field(
        default=True,
        metadata={"help": "Show the persona and intent block in every prompt "
                          "(`agent.policy.prompt.PromptConfig.persona`). False is the paper's exact context: pages "
                          "and actions only (Shop-R1, sec. 3); persona conditioning is Customer-R1's addition. The "
                          "intent is hidden too, as in the paper; the `persona`/`intent` columns are kept (online RL "
                          "and session realism shop as them)."},
    )
    missing_rationale: Literal["template", "skip"] = field(
        default="template",
        metadata={"help": "A step without a rationale in SFT: 'template' writes a short one from the action "
                          "(`template_rationale`); 'skip' leaves the whole session out of SFT (it stays in RL)."},
    )
    rl_invalid_targets: bool = field(
        default=False,
        metadata={"help": "Also make RL rows of steps the env rejected (`valid` False); they always stay in the "
                          "history of later steps."},
    )
    training_config: str | None = field(
        default=None,
        metadata={"help": "The training YAML this data was built for (`data build --config`, `budget_for_config`): "
                          "its prompt lengths set `max_context_tokens`. Recorded in meta.json; None: none."},
    )

    def __post_init__(self) -> None:
        check_split(self.split)
        if self.max_context_tokens <= 0:
            raise DataError(f"Expect max_context_tokens > 0, actually: {self.max_context_tokens}")
        if self.sft_rows not in ("sessions", "steps"):
            raise DataError(f"Expect sft_rows 'sessions' or 'steps', actually: {self.sft_rows!r}")
        if not isinstance(self.persona, bool):
            raise DataError(f"Expect persona True or False, actually: {self.persona!r}")
        if self.missing_rationale not in ("template", "skip"):
            raise DataError(f"Expect missing_rationale 'template' or 'skip', actually: {self.missing_rationale!r}")


def check_split(split: Sequence[float]) -> tuple[float, float, float]:
    """Validate split fractions: three numbers >= 0 that sum to 1 (within 1e-6)."""
    values = tuple(split)
    if len(values) != 3 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise DataError(f"Expect three split fractions (train, validation, test), actually: {split!r}")
    if any(not math.isfinite(v) or v < 0 for v in values) or abs(sum(values) - 1) > 1e-6:
        raise DataError(f"Expect split fractions >= 0 that sum to 1, actually: {values} (sum {sum(values):g})")
    if values[0] == 0:
        raise DataError("Expect a train fraction > 0, actually: 0")
    return values  # type: ignore[return-value]


def parse_split(text: str) -> tuple[float, float, float]:
    """Parse "0.8/0.1/0.1" (or with commas, or percentages "80/10/10") into fractions.

    >>> parse_split("0.8/0.1/0.1"), parse_split("80,10,10")
    ((0.8, 0.1, 0.1), (0.8, 0.1, 0.1))
    """
    parts = [p.strip() for p in re.split(r"[/,:]", text.strip())]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise DataError(f"Expect a split like 0.8/0.1/0.1, actually: {text!r}") from None
    if len(values) == 3 and all(math.isfinite(v) for v in values) and abs(sum(values) - 100) < 1e-6:
        values = [v / 100 for v in values]
    if len(values) != 3:
        raise DataError(f"Expect a split like 0.8/0.1/0.1, actually: {text!r}")
    return check_split(tuple(round(v, 12) for v in values))


# --------------------------------------------------------------------------------------------------------------------
# States: the decision points of a session


@dataclass(frozen=True)
class State:
    """One decision of a recorded session: what the shopper had seen and done before, the page, and what it did.

    `step` is the trace's step number (1-based, parse failures counted); `history` holds the earlier steps with a
    parsed action, rationales included (hide them with `PromptConfig(include_rationales=False)`).
    """

    session_id: str
    step: int
    persona_intent: PersonaIntent | None
    history: tuple[HistoryItem, ...]
    url: str
    title: str
    observation: str
    action: Action
    rationale: str | None
    valid: bool
    error: str | None

    def as_history_item(self, rationale: str | None = None) -> HistoryItem:
        return HistoryItem(self.url, self.observation, self.action, rationale or self.rationale, self.error)


def persona_intent_of(persona: dict[str, Any], intent: dict[str, Any]) -> PersonaIntent | None:
    """The trace header's persona and intent as models; unknown keys are dropped. None when they do not validate."""
    try:
        return PersonaIntent(persona=_known(Persona, persona), intent=_known(Intent, intent))
    except (ValidationError, TypeError, ValueError) as exc:
        log.debug("persona/intent do not validate: %s", str(exc).splitlines()[0])
        return None


def _known(model: type[Persona] | type[Intent], data: dict[str, Any]) -> Any:
    return model.model_validate({k: v for k, v in dict(data).items() if k in model.model_fields})


def session_states(trace: Trace, session_id: str | None = None) -> list[State]:
    """The decision points of a trace, in order: every step with a parsed action."""
    sid = session_id or trace.session_id
    pi = persona_intent_of(trace.header.persona, trace.header.intent)
    history: list[HistoryItem] = []
    states: list[State] = []
    for record in trace.steps:
        if record.action is None:
            continue
        try:
            action = parse_action(record.action)
        except ActionError as exc:
            log.warning("%s step %d: skipping an unreadable action (%s)", sid, record.step, exc)
            continue
        rationale = record.rationale if record.rationale and record.rationale.strip() else None
        state = State(session_id=sid, step=record.step, persona_intent=pi, history=tuple(history), url=record.url,
                      title=record.title, observation=record.observation, action=action, rationale=rationale,
                      valid=record.valid, error=record.error)
        states.append(state)
        history.append(state.as_history_item())
    return states


_TAG_WITH_NAME = r"<(?P<tag>\w+)\b[^>]*?\bname=\"{name}\"[^>]*>(?P<inner>.*?)</(?P=tag)>"


def _element_text(observation: str, name: str) -> str:
    """The visible text of the element named `name` in a simplified page ('' when not found or empty)."""
    pattern = _TAG_WITH_NAME.replace("{name}", re.escape(name))
    match = re.search(pattern, observation, flags=re.S)
    if not match:
        return ""
    text = re.sub(r"<[^>]+>", " ", match.group("inner"))
    text = " ".join(text.replace("&amp;", "&").replace("&quot;", '"').replace("&#x27;", "'").split())
    return text[:80]


def template_rationale(action: Action | dict[str, Any], observation: str = "") -> str:
    """A plain first-person rationale for an action that has none, from the action and the page it was taken on.

    >>> template_rationale({"type": "type_and_submit", "name": "search_input", "text": "tea"})
    'I\\'ll search for "tea".'
    >>> template_rationale({"type": "click", "name": "a.b"}, '<a name="a.b">Green Tea</a>')
    'I\\'ll click "Green Tea".'
    >>> template_rationale({"type": "click", "name": "nav_bar.customer_reviews"})
    "I'll click customer reviews."
    >>> template_rationale({"type": "terminate"})
    "Nothing here is what I want, so I'll leave."
    """
    action = parse_action(action)
    if isinstance(action, Terminate):
        return "Nothing here is what I want, so I'll leave."
    if isinstance(action, TypeAndSubmit):
        text = action.text.strip()[:200]
        return f'I\'ll search for "{text}".' if text else "I'll submit this."
    label = _element_text(observation, action.name) if observation else ""
    if label:
        return f'I\'ll click "{label}".'
    tail = [s for s in action.name.split(".") if s][-1:] or [action.name]
    words = " ".join(re.sub(r"[_\-]+", " ", tail[0]).split())[:80] or "this"
    return f"I'll click {words}."


# --------------------------------------------------------------------------------------------------------------------
# The budget a training config asks for


@dataclass(frozen=True)
class ConfigBudget:
    """What a training YAML asks of its data: the page budget that fills its prompt lengths, and where the data goes."""

    max_context_tokens: int
    data_dir: str | None
    config: str
    rl_max_prompt_length: int
    sft_max_length: int


def budget_for_config(path: str | Path) -> ConfigBudget:
    """The data budget of a training config (a YAML path or a packaged name: `paper-3b`, `tiny-cpu`).

    `max_context_tokens` counts message contents only; the chat template adds ~`PROMPT_OVERHEAD_TOKENS` (64) around
    them. So the budget is min(`rl.max_prompt_length`, `sft.max_length`) − 64: an RL prompt then fits GRPO's prompt
    length after templating (TRL drops longer ones) and a whole SFT session its max length (TRL cuts longer ones). For
    `paper-3b` (both 32768, the paper's "up to 32k tokens") that is 32,704 tokens of whole-session context.

    >>> budget_for_config("paper-3b").max_context_tokens
    32704
    """
    from training.online import PROMPT_OVERHEAD_TOKENS

    resolved = resolve_config(path)
    if not resolved.is_file():
        raise DataError(f"Expect a training config (YAML path or packaged name), actually: {path} does not exist")
    data = yaml.safe_load(resolved.read_text(encoding="utf-8")) or {}
    sections = {name: {**(data.get("common") or {}), **(data.get(name) or {})} for name in ("sft", "rl")}
    try:
        rl_length = int(sections["rl"]["max_prompt_length"])
        sft_length = int(sections["sft"]["max_length"])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"Expect rl.max_prompt_length and sft.max_length (integers) in {resolved}, actually: "
                        f"{sections['rl'].get('max_prompt_length')!r} and {sections['sft'].get('max_length')!r}"
                        ) from None
    budget = min(rl_length, sft_length) - PROMPT_OVERHEAD_TOKENS
    if budget <= 0:
        raise DataError(f"Expect prompt lengths above the chat template's {PROMPT_OVERHEAD_TOKENS} tokens in "
                        f"{resolved}, actually: rl.max_prompt_length {rl_length}, sft.max_length {sft_length}")
    data_dir = (data.get("common") or {}).get("data_dir")
    return ConfigBudget(max_context_tokens=budget, data_dir=str(data_dir) if data_dir else None, config=str(resolved),
                        rl_max_prompt_length=rl_length, sft_max_length=sft_length)


# --------------------------------------------------------------------------------------------------------------------
# Sources and splits


@dataclass(frozen=True)
class _Source:
    label: str
    path: Path
    traces: list[Trace]


def _load_sources(run_dirs: Sequence[str | Path]) -> list[_Source]:
    if not run_dirs:
        raise DataError("Expect at least one run directory, actually: none")
    sources: list[_Source] = []
    labels: Counter[str] = Counter()
    for run_dir in run_dirs:
        path = Path(run_dir)
        sessions = path / "sessions"
        if not path.is_dir():
            raise DataError(f"Expect a run directory, actually: {path} does not exist")
        if not sessions.is_dir():
            raise DataError(f"Expect a run directory with sessions/*.jsonl, actually: {path} has no sessions/")
        traces: list[Trace] = []
        for file in sorted(sessions.glob("*.jsonl")):
            try:
                traces.append(read_trace(file))
            except (ValueError, OSError) as exc:
                log.warning("skipping %s: %s", file, exc)
        if not traces:
            raise DataError(f"Expect session traces in {sessions}, actually: no readable *.jsonl files")
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.resolve().name) or "run"
        labels[base] += 1
        label = base if labels[base] == 1 else f"{base}-{labels[base]}"
        sources.append(_Source(label, path.resolve(), traces))
    return sources


def _split_order(session_ids: Iterable[str], seed: int) -> list[str]:
    def key(sid: str) -> bytes:
        return hashlib.blake2b(f"{seed}:{sid}".encode(), digest_size=8).digest()

    return sorted(session_ids, key=key)


def _split_sizes(n: int, fractions: Sequence[float]) -> list[int]:
    """Largest-remainder sizes; a split with a fraction > 0 gets at least one session when n allows."""
    raw = [n * f for f in fractions]
    sizes = [math.floor(r) for r in raw]
    for i in sorted(range(3), key=lambda i: raw[i] - sizes[i], reverse=True)[: n - sum(sizes)]:
        sizes[i] += 1
    for i in (2, 1):
        if fractions[i] > 0 and sizes[i] == 0 and sizes[0] > 1:
            sizes[i], sizes[0] = 1, sizes[0] - 1
    return sizes


def assign_splits(session_ids: Sequence[str], split: Sequence[float], seed: int) -> dict[str, list[str]]:
    """Session ids per split (each id in exactly one), in split order.

    >>> parts = assign_splits([f"s{i}" for i in range(10)], (0.8, 0.1, 0.1), seed=0)
    >>> [len(parts[s]) for s in SPLITS], sorted(sum(parts.values(), [])) == sorted(f"s{i}" for i in range(10))
    ([8, 1, 1], True)
    """
    if len(set(session_ids)) != len(session_ids):
        raise DataError("Expect unique session ids, actually: duplicates")
    order = _split_order(session_ids, seed)
    sizes = _split_sizes(len(order), check_split(split))
    out, start = {}, 0
    for name, size in zip(SPLITS, sizes, strict=True):
        out[name] = order[start:start + size]
        start += size
    return out


# --------------------------------------------------------------------------------------------------------------------
# Building


def _features(sft_rows: str = "sessions") -> dict[str, Any]:
    from datasets import Features, List, Value

    message = {"role": Value("string"), "content": Value("string")}
    if sft_rows == "steps":
        sft = Features({"prompt": List(message), "completion": List(message), "session_id": Value("string"),
                        "step": Value("int64")})
    else:
        sft = Features({"messages": List(message), "session_id": Value("string")})
    rl = Features({
        "prompt": List(message), "prompt_latest": List(message), "gold_action": Value("string"),
        "gold_type": Value("string"), "gold_rationale": Value("string"), "session_id": Value("string"),
        "step": Value("int64"), "url": Value("string"), "persona": Value("string"), "intent": Value("string"),
        "site": Value("string"),
    })
    return {"sft": sft, "rl": rl}


def _dataset(cls: Any, rows: list[dict[str, Any]], features: Any) -> Any:
    """A Dataset of `rows`; an empty one keeps its columns (`from_list([])` would have none, and not load back)."""
    if rows:
        return cls.from_list(rows, features=features)
    return cls.from_dict({name: [] for name in features}, features=features)


def _token_counter(tokenizer_dir: str | None) -> Callable[[str], int]:
    if tokenizer_dir is None:
        return approx_tokens
    from agent.policy.engines import encode_plain, load_tokenizer

    tokenizer = load_tokenizer(tokenizer_dir)

    @lru_cache(maxsize=8192)
    def count(text: str) -> int:
        return len(encode_plain(tokenizer, text))

    return count


@dataclass
class _Budget:
    """What the budget rule did, over all prompts of one kind."""

    prompts: int = 0
    pages_dropped: int = 0
    with_dropped: int = 0
    truncated_current: int = 0
    over_budget: int = 0
    max_tokens: int = 0
    current_shown_sum: float = 0.0
    current_blind: int = 0

    @property
    def mean_current_shown(self) -> float:
        """The mean fraction of the current page's characters shown."""
        return self.current_shown_sum / self.prompts if self.prompts else 1.0

    def add(self, result: PromptResult) -> None:
        self.prompts += 1
        self.current_shown_sum += result.current_shown
        self.current_blind += result.current_shown == 0.0
        self.pages_dropped += len(result.dropped)
        self.with_dropped += bool(result.dropped)
        self.truncated_current += result.truncated_current
        self.over_budget += result.over_budget
        self.max_tokens = max(self.max_tokens, result.tokens)


@contextlib.contextmanager
def _quiet_progress() -> Iterator[None]:
    """No `datasets` progress bars while saving (a few small splits; the bars are noise in logs)."""
    from datasets.utils import logging as ds_logging

    enabled = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            ds_logging.enable_progress_bar()


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=False)


def build_datasets(run_dirs: Sequence[str | Path], out_dir: str | Path, config: DataConfig | None = None
                   ) -> dict[str, Any]:
    """Build `OUT_DIR/sft`, `OUT_DIR/rl`, `meta.json` and `splits.json` from the traces of `run_dirs`, as `config`
    says (split, seed, page budget, tokenizer, layout; default `DataConfig()`).

    Returns the meta dict (also written to meta.json). Existing `sft/` and `rl/` in `out_dir` are replaced; nothing
    else there is touched. Raises `DataError` for input that cannot become a dataset.
    """
    from datasets import Dataset, DatasetDict

    started = time.perf_counter()
    config = config or DataConfig()
    sources = _load_sources(run_dirs)
    count = _token_counter(config.tokenizer_dir)
    prompt_all = PromptConfig(max_context_tokens=config.max_context_tokens, include_rationales=config.rl_rationales,
                              history_pages="all", system=config.system, persona=config.persona)
    prompt_latest = PromptConfig(max_context_tokens=config.max_context_tokens, include_rationales=config.rl_rationales,
                                 history_pages="latest", system=config.system, persona=config.persona)
    prompt_sft = PromptConfig(max_context_tokens=config.max_context_tokens, include_rationales=True,
                              system=config.system, persona=config.persona)

    sessions: dict[str, tuple[_Source, Trace, list[State]]] = {}
    stats: Counter[str] = Counter()
    for source in sources:
        for trace in source.traces:
            stats["traces"] += 1
            stats[f"outcome_{trace.outcome}"] += 1
            sid = f"{source.label}:{trace.session_id}"
            states = session_states(trace, sid)
            stats["steps_unparsed"] += sum(1 for s in trace.steps if s.action is None)
            if not states:
                stats["sessions_without_actions"] += 1
                log.info("%s has no step with a parsed action; left out", sid)
                continue
            if states[0].persona_intent is None:
                stats["sessions_without_persona"] += 1
            sessions[sid] = (source, trace, states)
    if not sessions:
        raise DataError(f"Expect sessions with at least one parsed action, actually: none in {len(sources)} run(s)")

    parts = assign_splits(list(sessions), config.split, config.seed)
    features = _features(config.sft_rows)
    sft_budget, rl_budget, latest_budget = _Budget(), _Budget(), _Budget()
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {kind: {s: [] for s in SPLITS} for kind in KINDS}
    counts: dict[str, dict[str, Any]] = {}
    for split_name in SPLITS:
        types: Counter[str] = Counter()
        for sid in parts[split_name]:
            source, trace, states = sessions[sid]
            persona = states[0].persona_intent  # None: the prompts have no persona block, the columns are ""
            # (with `config.persona` off the prompts have none either, but the columns keep who shopped)
            persona_json = _json(persona.persona.model_dump(mode="json")) if persona else ""
            intent_json = _json(persona.intent.model_dump(mode="json")) if persona else ""

            # SFT: the whole session, every assistant turn a full step.
            missing = [s for s in states if s.rationale is None]
            if missing and config.missing_rationale == "skip":
                stats["sft_sessions_skipped_no_rationale"] += 1
            else:
                stats["sft_template_rationales"] += len(missing)
                rationales = [s.rationale or template_rationale(s.action, s.observation) for s in states]
                steps = [s.as_history_item(r) for s, r in zip(states, rationales, strict=True)]
                if config.sft_rows == "sessions":
                    chat = build_session_chat(persona, steps, prompt_sft, count)
                    sft_budget.add(chat)
                    rows["sft"][split_name].append({"messages": chat.messages, "session_id": sid})
                else:
                    for k, state in enumerate(states):
                        # the prompt the policy sees at this step (earlier rationales shown, the page within budget)
                        prompt = build_messages(persona, steps[:k], state.url, state.observation, prompt_sft, count)
                        sft_budget.add(prompt)
                        if prompt.over_budget:
                            stats["sft_steps_over_budget_skipped"] += 1
                            continue
                        target = ShopperStep.model_construct(rationale=rationales[k], action=state.action)
                        completion = [{"role": "assistant", "content": format_step(target)}]
                        rows["sft"][split_name].append({"prompt": prompt.messages, "completion": completion,
                                                        "session_id": sid, "step": state.step})

            # RL: one row per step, previous rationales only with `rl_rationales`.
            for state in states:
                if not state.valid and not config.rl_invalid_targets:
                    stats["rl_invalid_targets_skipped"] += 1
                    continue
                full = build_messages(persona, state.history, state.url, state.observation, prompt_all, count)
                latest = build_messages(persona, state.history, state.url, state.observation, prompt_latest, count)
                rl_budget.add(full)
                latest_budget.add(latest)
                types[state.action.type] += 1
                rows["rl"][split_name].append({
                    "prompt": full.messages, "prompt_latest": latest.messages,
                    "gold_action": format_action(state.action), "gold_type": state.action.type,
                    "gold_rationale": (state.rationale or "")[:MAX_RATIONALE_LEN], "session_id": sid,
                    "step": state.step, "url": state.url, "persona": persona_json, "intent": intent_json,
                    "site": trace.header.site,
                })
        counts[split_name] = {
            "sessions": len(parts[split_name]), "sft_rows": len(rows["sft"][split_name]),
            "rl_rows": len(rows["rl"][split_name]), "rl_gold_types": dict(sorted(types.items())),
        }

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with _quiet_progress():
        for kind in KINDS:
            kind_dir = out / kind
            if kind_dir.exists():
                shutil.rmtree(kind_dir)
            # An empty split saved with the default sharding gets 0 shards, which `datasets` 5.2 cannot load back.
            DatasetDict({s: _dataset(Dataset, rows[kind][s], features[kind]) for s in SPLITS}).save_to_disk(
                str(kind_dir), num_shards={s: 1 for s in SPLITS if not rows[kind][s]})

    if rl_budget.prompts and rl_budget.mean_current_shown < 0.5:
        log.warning("the prompt budget leaves little of the page: RL prompts show %.0f%% of the current page's "
                    "characters on average, %d of %d none at all (the system prompt, persona and history come "
                    "first); raise --max-context-tokens", 100 * rl_budget.mean_current_shown,
                    rl_budget.current_blind, rl_budget.prompts)
    over = rl_budget.over_budget + latest_budget.over_budget + sft_budget.over_budget
    if over:
        log.warning("%d prompts do not fit %d tokens even with every earlier page dropped and the current page "
                    "emptied; raise --max-context-tokens", over, config.max_context_tokens)
    meta = {
        "version": META_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sources": [{"label": s.label, "path": str(s.path), "sessions": len(s.traces)} for s in sources],
        "config": {**asdict(config), "split": list(config.split)},
        "split": dict(zip(SPLITS, config.split, strict=True)),
        "seed": config.seed,
        "counts": counts,
        "prompt_budget": {
            "max_context_tokens": config.max_context_tokens,
            "token_counter": config.tokenizer_dir or "approx_tokens (3.5 characters a token)",
            "rl_prompt": asdict(rl_budget), "rl_prompt_latest": asdict(latest_budget),
            "rl_prompt_mean_current_shown": round(rl_budget.mean_current_shown, 4),
            "sft_session": asdict(sft_budget),
        },
        "stats": dict(sorted(stats.items())),
        "build_seconds": round(time.perf_counter() - started, 3),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    (out / "splits.json").write_text(json.dumps(parts, indent=1) + "\n", encoding="utf-8")
    log.info("wrote %s: %s sessions, %s RL rows in %.1fs", out,
             "/".join(str(counts[s]["sessions"]) for s in SPLITS),
             "/".join(str(counts[s]["rl_rows"]) for s in SPLITS), meta["build_seconds"])
    return meta


# --------------------------------------------------------------------------------------------------------------------
# Reading back


def _check_data_dir(data_dir: str | Path) -> Path:
    path = Path(data_dir)
    if not (path / "meta.json").is_file():
        raise DataError(f"Expect a data directory written by build_datasets (with meta.json), actually: {path}")
    return path


def load_meta(data_dir: str | Path) -> dict[str, Any]:
    """The meta.json of a data directory."""
    return json.loads((_check_data_dir(data_dir) / "meta.json").read_text(encoding="utf-8"))


def load_split(data_dir: str | Path, kind: Literal["sft", "rl"], split: str) -> Any:
    """One split of one dataset as a `datasets.Dataset`."""
    from datasets import load_from_disk

    if kind not in KINDS:
        raise DataError(f"Expect kind 'sft' or 'rl', actually: {kind!r}")
    if split not in SPLITS:
        raise DataError(f"Expect split one of {', '.join(SPLITS)}, actually: {split!r}")
    path = _check_data_dir(data_dir) / kind / split
    if not path.is_dir():
        raise DataError(f"Expect {path} (written by build_datasets), actually: missing")
    return load_from_disk(str(path))


def split_traces(data_dir: str | Path, split: str) -> list[tuple[str, Trace]]:
    """The traces of a split's sessions, re-read from the sources recorded in meta.json, as (session id, trace)."""
    path = _check_data_dir(data_dir)
    if split not in SPLITS:
        raise DataError(f"Expect split one of {', '.join(SPLITS)}, actually: {split!r}")
    meta = load_meta(path)
    ids = json.loads((path / "splits.json").read_text(encoding="utf-8"))[split]
    roots = {s["label"]: Path(s["path"]) for s in meta["sources"]}
    out: list[tuple[str, Trace]] = []
    for sid in ids:
        label, _, trace_id = sid.partition(":")
        root = roots.get(label)
        file = root / "sessions" / f"{trace_id}.jsonl" if root else None
        if file is None or not file.is_file():
            raise DataError(f"Expect the trace of {sid} at {file}, actually: missing (moved run directory?)")
        out.append((sid, read_trace(file)))
    return out


def split_states(data_dir: str | Path, split: str) -> Iterator[State]:
    """The states of a split's sessions, rebuilt from their traces exactly as `build_datasets` built them."""
    for sid, trace in split_traces(data_dir, split):
        yield from session_states(trace, sid)
