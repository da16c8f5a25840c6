"""Evaluation: next-action prediction on the RL split (the paper's Tables 2, 3 and 5), and session-level realism.

**Next-action prediction** (`evaluate_model`). Every row of a split of `DATA_DIR/rl` is a state of a recorded session
with its gold action. A model directory generates one completion per row from the row's `prompt` (whole-session
context) or `prompt_latest` (current page only, the Table 5 ablation), with its chat template, batched through
`agent.policy.engines.LocalEngine`; a `Policy` (e.g. `scripted`) answers the same states, rebuilt from the traces. The
completions are parsed with `agent.policy.schema.parse_step` and scored with `training.metrics.evaluate_predictions`:
exact action accuracy, action type accuracy, action type macro-F1, and per gold type.

The scripted shopper labelling the states of its own runs is the reference ceiling: it is the same stochastic
shopper, drawn again with another seed (`label_seed`), so it measures how predictable the behaviour is at all.

**Session realism** (`session_realism`). The policy shops in the env (http backend) as the reference sessions'
personas with their intents; its sessions are compared with the reference ones (`compare_runs`): the Jensen-Shannon
distance (`js_distance`, base 2, in [0, 1]) between action-type distributions, binned session lengths and outcomes,
the funnel-stage rates, and the purchase / terminate / invalid-action rates.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tqdm import tqdm

from agent.analysis.summary import STAGES, FunnelConfig, RunSummary, session_searches, session_stages, summarize
from agent.policy import make_policy
from agent.policy.base import Policy, PolicyRequest
from agent.policy.persona import Intent, Persona, PersonaIntent
from agent.policy.prompt import HistoryItem, PromptConfig
from agent.policy.schema import format_step
from agent.runtime.session import RunConfig, run_sessions
from agent.runtime.trace import Trace, load_run
from envs.observation import Observation
from training.metrics import (
    Metrics,
    MetricsConfig,
    evaluate_predictions,
    format_metrics_table,
    is_exact,
    prediction_action,
)
from training.rewards import PAPER_ROUGE_THRESHOLD, parse_gold

from .data import DataError, State, load_meta, load_split, persona_intent_of, split_states, split_traces

if TYPE_CHECKING:
    from agent.policy.engines import LocalEngine

__all__ = [
    "LENGTH_BINS",
    "EvalConfig",
    "compare_runs",
    "evaluate_model",
    "format_eval_markdown",
    "format_realism_markdown",
    "js_distance",
    "length_histogram",
    "session_realism",
]

log = logging.getLogger(__name__)

Context = Literal["all", "latest"]


@dataclass(frozen=True)
class EvalConfig:
    """How next-action prediction is run."""

    split: str = field(default="test", metadata={"help": "Which split of DATA_DIR/rl."})
    temperature: float = field(
        default=0.6, metadata={"help": "Sampling temperature; 0 is greedy. 0.6 is the paper's (Shop-R1, sec. 4); "
                                       "its sweep peaks at 0.7."})
    batch_size: int = field(default=8, metadata={"help": "Prompts per generate call."})
    max_new_tokens: int = field(
        default=160, metadata={"help": "Completion budget; a step is one short JSON object (~40-120 tokens)."})
    limit: int | None = field(
        default=None, metadata={"help": "Evaluate this many rows, evenly spaced over the split; None: all."})
    context: Context = field(
        default="all", metadata={"help": "'all': whole-session prompt; 'latest': current page only (Table 5)."})
    seed: int = field(default=0, metadata={"help": "Sampling seed, mixed with each row's index."})
    device: str = field(default="auto", metadata={"help": "'auto', 'cpu' or 'cuda' for a model directory."})
    rouge_threshold: float = field(
        default=PAPER_ROUGE_THRESHOLD, metadata={"help": "type_and_submit text counts as exact at ROUGE-L >= this "
                                        "(training.metrics.MetricsConfig)."})

    def __post_init__(self) -> None:
        if self.context not in ("all", "latest"):
            raise ValueError(f"Expect context 'all' or 'latest', actually: {self.context!r}")
        if self.temperature < 0:
            raise ValueError(f"Expect temperature >= 0, actually: {self.temperature}")
        if self.batch_size < 1 or self.max_new_tokens < 1:
            raise ValueError(f"Expect batch_size >= 1 and max_new_tokens >= 1, actually: {self.batch_size}, "
                             f"{self.max_new_tokens}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"Expect limit >= 1 or None, actually: {self.limit}")


# --------------------------------------------------------------------------------------------------------------------
# Next-action prediction


def _subset(n: int, limit: int | None) -> list[int]:
    """Row indices: all, or `limit` evenly spaced ones (deterministic, spanning the split's sessions).

    >>> _subset(10, 4), _subset(3, None), _subset(3, 5)
    ([0, 2, 5, 7], [0, 1, 2], [0, 1, 2])
    """
    if limit is None or limit >= n:
        return list(range(n))
    return [math.floor(i * n / limit) for i in range(limit)]


def label_seed(seed: int, session_id: str) -> int:
    """The seed a policy answers a session's states with: not the recorded session's seed (an independent draw)."""
    from agent.policy.engines import combine_seeds

    return combine_seeds("eval", seed, session_id) % 2**32


@dataclass
class _Prediction:
    completion: str
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None


def _generate(engine: LocalEngine, prompts: Sequence[Sequence[dict[str, str]]], config: EvalConfig,
              indices: Sequence[int], progress: bool = False) -> list[_Prediction]:
    """One completion per prompt, batched by length (less padding), returned in prompt order."""
    from agent.policy.engines import GenerationRequest, combine_seeds

    encoded = [engine.encode(engine.chat_prompt(list(p))) for p in prompts]
    limit = engine.max_length
    out: list[_Prediction | None] = [None] * len(prompts)
    ready: list[int] = []
    for k, ids in enumerate(encoded):
        if limit is not None and len(ids) + config.max_new_tokens > limit:
            out[k] = _Prediction("", error=f"prompt of {len(ids)} tokens + max_new_tokens {config.max_new_tokens} "
                                           f"exceeds the model's {limit} positions", prompt_tokens=len(ids))
        else:
            ready.append(k)
    ready.sort(key=lambda k: len(encoded[k]))
    bar = None
    if progress:
        bar = tqdm(total=len(ready), desc="generate", unit="row")
    for start in range(0, len(ready), config.batch_size):
        chunk = ready[start:start + config.batch_size]
        requests = [GenerationRequest(prompt_ids=tuple(encoded[k]), max_new_tokens=config.max_new_tokens,
                                      temperature=config.temperature, seed=combine_seeds(config.seed, indices[k]))
                    for k in chunk]
        for k, completion in zip(chunk, engine.generate(requests), strict=True):
            out[k] = _Prediction(completion.text, completion.finish_reason, completion.prompt_tokens,
                                 completion.completion_tokens)
        if bar is not None:
            bar.update(len(chunk))
        log.debug("generated %d/%d", min(start + config.batch_size, len(ready)), len(ready))
    if bar is not None:
        bar.close()
    return [p if p is not None else _Prediction("", error="not generated") for p in out]


_FALLBACK_PI = PersonaIntent(persona=Persona(persona_id="unknown", name="Shopper"),
                             intent=Intent(text="You are shopping for something you need."))


def _policy_requests(states: Sequence[State], config: EvalConfig) -> list[Any]:
    requests = []
    for state in states:
        pi = state.persona_intent or _FALLBACK_PI
        # As in the RL prompts: previous pages and actions, no previous rationales; none at all for 'latest'.
        history = () if config.context == "latest" else tuple(
            HistoryItem(h.url, h.observation, h.action, None, h.error) for h in state.history)
        requests.append(PolicyRequest(
            session_id=state.session_id, persona=pi.persona, intent=pi.intent, history=history,
            observation=Observation(url=state.url, title=state.title, html=state.observation, elements=()),
            step=len(history), seed=label_seed(config.seed, state.session_id)))
    return requests


def _act(policy: Policy, states: Sequence[State], config: EvalConfig) -> list[_Prediction]:
    requests = _policy_requests(states, config)
    size = max(1, min(config.batch_size, getattr(policy, "max_batch", config.batch_size)))

    async def run() -> list[_Prediction]:
        out: list[_Prediction] = []
        for start in range(0, len(requests), size):
            for response in await policy.act(requests[start:start + size]):
                text = response.raw or (format_step(response.step) if response.step is not None else "")
                out.append(_Prediction(text, error=response.error,
                                       prompt_tokens=response.usage.get("prompt_tokens"),
                                       completion_tokens=response.usage.get("completion_tokens")))
        return out

    return asyncio.run(run())


def _resolve(model: Any, config: EvalConfig) -> tuple[str, Any]:
    """('engine', LocalEngine) for a model directory or engine; ('policy', Policy) for a policy or its name."""
    from agent.policy.engines import LocalEngine

    if isinstance(model, LocalEngine):
        return "engine", model
    if isinstance(model, Policy):
        return "policy", model
    if isinstance(model, str | Path) and Path(model).is_dir():
        if not any((Path(model) / name).is_file() for name in ("config.json", "adapter_config.json")):
            raise DataError(f"Expect a model directory (with config.json or adapter_config.json), actually: {model}")
        return "engine", LocalEngine.from_pretrained(model, device=config.device)
    if isinstance(model, str):
        if model in ("openai", "local"):
            raise DataError(f"Expect a model directory or a policy instance for {model!r}, actually: its name")
        try:
            return "policy", make_policy(model)
        except ValueError:
            raise DataError(f"Expect a model directory or a policy name (scripted), actually: {model!r}") from None
    raise DataError(f"Expect a model directory, a LocalEngine or a Policy, actually: {type(model).__name__}")


def evaluate_model(
    model: str | Path | Any,
    data_dir: str | Path,
    split: str = "test",
    temperature: float = 0.6,
    batch_size: int = 8,
    max_new_tokens: int = 160,
    limit: int | None = None,
    context: Context = "all",
    *,
    seed: int = 0,
    device: str = "auto",
    rouge_threshold: float = PAPER_ROUGE_THRESHOLD,
    predictions_path: str | Path | None = None,
    name: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Score a model (directory or `LocalEngine`) or a policy (instance, or `"scripted"`) on next-action prediction.

    Returns a JSON-able dict: the settings, `metrics` (`training.metrics.Metrics` as a dict, rates in [0, 1]),
    `table` (Markdown in the paper's layout), `speed`, and the counts of prompts that did not fit the model.
    With `predictions_path`, one JSON line per row is written there (row index, session, step, gold action,
    completion, parsed action, exact), from which the metrics can be recomputed.
    """
    config = EvalConfig(split=split, temperature=temperature, batch_size=batch_size, max_new_tokens=max_new_tokens,
                        limit=limit, context=context, seed=seed, device=device, rouge_threshold=rouge_threshold)
    dataset = load_split(data_dir, "rl", split)
    if len(dataset) == 0:
        raise DataError(f"Expect rows in the {split} split of {data_dir}/rl, actually: none")
    indices = _subset(len(dataset), config.limit)
    rows = dataset.select(indices)
    golds = list(rows["gold_action"])
    kind, runner = _resolve(model, config)

    started = time.perf_counter()
    engine_stats: dict[str, Any] = {}
    if kind == "engine":
        column = "prompt" if context == "all" else "prompt_latest"
        predictions = _generate(runner, rows[column], config, indices, progress)
        engine_stats = runner.stats.as_dict()
        label = name or Path(getattr(runner, "name", "model")).name
        described: dict[str, Any] = {"model": label, "device": str(runner.device)}
    else:
        wanted = {(sid, int(step)) for sid, step in zip(rows["session_id"], rows["step"], strict=True)}
        states = {(s.session_id, s.step): s for s in split_states(data_dir, split) if (s.session_id, s.step) in wanted}
        missing = wanted - states.keys()
        if missing:
            raise DataError(f"Expect every row's state in the source traces, actually: {len(missing)} missing, "
                            f"e.g. {sorted(missing)[0]}")
        ordered = [states[(sid, int(step))] for sid, step in zip(rows["session_id"], rows["step"], strict=True)]
        predictions = _act(runner, ordered, config)
        label = name or runner.name
        described = {"policy": runner.describe()}
    seconds = time.perf_counter() - started

    metrics = evaluate_predictions([p.completion for p in predictions], golds,
                                   MetricsConfig(rouge_threshold=config.rouge_threshold))
    if predictions_path is not None:
        _write_predictions(predictions_path, rows, indices, predictions, config)
    new_tokens = sum(p.completion_tokens or 0 for p in predictions)
    result = {
        "task": "next_action",
        "name": label,
        **described,
        "data_dir": str(Path(data_dir).resolve()),
        "config": asdict(config),
        "n": metrics.n,
        "metrics": metrics.model_dump(mode="json"),
        "table": format_metrics_table({_row_label(label, context): metrics}),
        "over_context": sum(1 for p in predictions if p.error and "exceeds" in p.error),
        "finish_reasons": dict(Counter(p.finish_reason or "none" for p in predictions)),
        "speed": {"seconds": round(seconds, 3), "rows_per_s": round(len(predictions) / seconds, 2) if seconds else None,
                  "new_tokens": new_tokens, **({"engine": engine_stats} if engine_stats else {})},
    }
    log.info("%s on %s/%s (%d rows, context %s): exact %.2f%%, type acc %.2f%%, type F1 %.2f%% in %.1fs", label,
             Path(data_dir).name, split, metrics.n, context, 100 * metrics.exact_accuracy,
             100 * metrics.type_accuracy, 100 * metrics.type_macro_f1, seconds)
    return result


def _row_label(label: str, context: str) -> str:
    return label if context == "all" else f"{label} (latest page only)"


def _write_predictions(path: str | Path, rows: Any, indices: Sequence[int], predictions: Sequence[_Prediction],
                       config: EvalConfig) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for k, pred in enumerate(predictions):
            gold = rows[k]["gold_action"]
            action = prediction_action(pred.completion)
            record = {
                "index": indices[k], "session_id": rows[k]["session_id"], "step": rows[k]["step"],
                "gold_action": json.loads(gold), "completion": pred.completion,
                "predicted_action": action.model_dump() if action is not None else None,
                "exact": action is not None and is_exact(action, parse_gold(gold), config.rouge_threshold),
                "finish_reason": pred.finish_reason, "prompt_tokens": pred.prompt_tokens,
                "completion_tokens": pred.completion_tokens, "error": pred.error,
            }
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def format_eval_markdown(results: Sequence[Mapping[str, Any]]) -> str:
    """Tables 2 and 3 of the paper (one row per result), with the settings under them."""
    rows = {_row_label(r["name"], r["config"]["context"]): Metrics.model_validate(r["metrics"]) for r in results}
    lines = ["# Next-action prediction", "", "Values in %. Exact: every field matches (type_and_submit text at "
             f"ROUGE-L >= {results[0]['config']['rouge_threshold']}).", "", format_metrics_table(rows), ""]
    for r in results:
        c = r["config"]
        speed = r["speed"]
        lines.append(f"- {r['name']}: split {c['split']}, {r['n']} rows, context {c['context']}, temperature "
                     f"{c['temperature']}, {speed['seconds']} s ({speed['rows_per_s']} rows/s)"
                     + (f", {r['over_context']} prompts over the model's context" if r.get("over_context") else ""))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------------------------
# Distributions


def js_distance(p: Mapping[str, float] | Sequence[float], q: Mapping[str, float] | Sequence[float]) -> float:
    """The Jensen-Shannon distance (base 2, in [0, 1]) between two distributions given as counts or probabilities.

    Mappings are aligned on the union of their keys (a missing key is 0); sequences must have the same length. Each
    is normalised to sum 1. The distance is sqrt(JSD), JSD = (KL(P||M) + KL(Q||M)) / 2 with M = (P + Q) / 2.

    >>> js_distance({"a": 1}, {"a": 5}), js_distance([1, 0], [0, 1]), round(js_distance([1, 0], [0.5, 0.5]), 6)
    (0.0, 1.0, 0.557923)
    """
    if isinstance(p, Mapping) != isinstance(q, Mapping):
        raise ValueError("Expect two mappings or two sequences, actually: one of each")
    if isinstance(p, Mapping) and isinstance(q, Mapping):
        keys = sorted(set(p) | set(q))
        ps, qs = [float(p.get(k, 0.0)) for k in keys], [float(q.get(k, 0.0)) for k in keys]
    else:
        ps, qs = [float(x) for x in p], [float(x) for x in q]
        if len(ps) != len(qs):
            raise ValueError(f"Expect sequences of the same length, actually: {len(ps)} and {len(qs)}")
    for name, xs in (("p", ps), ("q", qs)):
        if any(not math.isfinite(x) or x < 0 for x in xs):
            raise ValueError(f"Expect finite non-negative weights in {name}, actually: {xs}")
        if not math.fsum(xs) > 0:
            raise ValueError(f"Expect a positive total weight in {name}, actually: {math.fsum(xs)}")
    sp, sq = math.fsum(ps), math.fsum(qs)
    ps, qs = [x / sp for x in ps], [x / sq for x in qs]
    divergence = 0.0
    for a, b in zip(ps, qs, strict=True):
        m = (a + b) / 2
        if a > 0:
            divergence += 0.5 * a * math.log2(a / m)
        if b > 0:
            divergence += 0.5 * b * math.log2(b / m)
    return min(1.0, math.sqrt(max(0.0, divergence)))


LENGTH_BINS: tuple[int, ...] = (1, 2, 3, 5, 7, 10, 15, 20, 30)
"""Lower edges of the session-length bins: 1, 2, 3-4, 5-6, 7-9, 10-14, 15-19, 20-29, 30+ steps."""


def _bin_label(k: int) -> str:
    lo = LENGTH_BINS[k]
    if k + 1 == len(LENGTH_BINS):
        return f"{lo}+"
    hi = LENGTH_BINS[k + 1] - 1
    return str(lo) if hi == lo else f"{lo}-{hi}"


def length_histogram(lengths: Sequence[int]) -> dict[str, int]:
    """Session lengths counted in `LENGTH_BINS` (every bin present; 0 steps falls in the first).

    >>> length_histogram([1, 4, 4, 31])["3-4"], length_histogram([1, 4, 4, 31])["30+"]
    (2, 1)
    """
    counts = dict.fromkeys((_bin_label(k) for k in range(len(LENGTH_BINS))), 0)
    for n in lengths:
        k = max((i for i, lo in enumerate(LENGTH_BINS) if n >= lo), default=0)
        counts[_bin_label(k)] += 1
    return counts


def furthest_stages(traces: Sequence[Trace], funnel: FunnelConfig | None = None) -> dict[str, int]:
    """How many sessions got furthest to each funnel stage (`none`: not even search results), in `STAGES` order.

    One distribution per run, so two runs' funnels compare by a Jensen-Shannon distance like the other views.

    >>> furthest_stages([])
    {'none': 0, 'search': 0, 'product': 0, 'add_to_cart': 0, 'purchase': 0}
    """
    counts = dict.fromkeys(("none", *STAGES), 0)
    for trace in traces:
        reached = session_stages(trace, funnel)
        counts[next((s for s in reversed(STAGES) if s in reached), "none")] += 1
    return counts


def _side(summary: RunSummary, traces: Sequence[Trace], funnel: FunnelConfig | None = None) -> dict[str, Any]:
    return {
        "furthest_stage": furthest_stages(traces, funnel),
        "sessions": summary.sessions,
        "action_types": dict(summary.action_types),
        "lengths": length_histogram([len(t.steps) for t in traces]),
        "mean_length": summary.steps_per_session.mean,
        "outcomes": {k: v for k, v in summary.outcomes.items() if v},
        "funnel": {stage.stage: stage.fraction for stage in summary.funnel},
        "purchase_rate": summary.purchase_rate,
        "terminate_rate": summary.terminate_rate,
        "invalid_rate": summary.invalid_rate,
        "unparseable_rate": summary.unparseable_rate,
        "search_rate": (sum(1 for t in traces if session_searches(t, funnel) > 0) / len(traces)) if traces else None,
    }


def _js_or_none(p: Mapping[str, float], q: Mapping[str, float]) -> float | None:
    if not sum(p.values()) or not sum(q.values()):
        return None
    return js_distance(p, q)


def compare_runs(reference: Sequence[Trace], simulated: Sequence[Trace],
                 funnel: FunnelConfig | None = None) -> dict[str, Any]:
    """How alike two sets of sessions are. Pure: a function of the traces.

    `js`: Jensen-Shannon distances (0 = same distribution, 1 = disjoint) of action types (unparseable outputs are a
    type of their own), binned session lengths, outcomes and the funnel (the furthest stage each session reached:
    `furthest_stages`); `funnel_abs_diff`: |simulated - reference| of each
    stage's rate and their mean; `rates`: purchase, terminate, invalid-action and search rates (the share of sessions
    that typed at least one search) of both.
    """
    if not reference or not simulated:
        raise ValueError(f"Expect sessions on both sides, actually: {len(reference)} reference, "
                         f"{len(simulated)} simulated")
    ref = _side(summarize(reference, funnel), reference, funnel)
    sim = _side(summarize(simulated, funnel), simulated, funnel)
    diffs = {s: abs((sim["funnel"][s] or 0.0) - (ref["funnel"][s] or 0.0)) for s in STAGES}
    return {
        "reference": ref,
        "simulated": sim,
        "js": {
            "action_types": _js_or_none(ref["action_types"], sim["action_types"]),
            "session_lengths": _js_or_none(ref["lengths"], sim["lengths"]),
            "outcomes": _js_or_none(ref["outcomes"], sim["outcomes"]),
            "funnel": _js_or_none(ref["furthest_stage"], sim["furthest_stage"]),
        },
        "funnel_abs_diff": {**diffs, "mean": sum(diffs.values()) / len(diffs)},
        "rates": {key: {"reference": ref[key], "simulated": sim[key]}
                  for key in ("purchase_rate", "terminate_rate", "invalid_rate", "search_rate")},
    }


def reference_traces(reference: str | Path, split: str) -> list[Trace]:
    path = Path(reference)
    if (path / "meta.json").is_file():
        load_meta(path)
        return [trace for _, trace in split_traces(path, split)]
    if (path / "sessions").is_dir():
        traces, _ = load_run(path)
        return traces
    raise DataError(f"Expect a data directory (meta.json) or a run directory (sessions/), actually: {path}")


def session_realism(
    policy: Any,
    reference: str | Path,
    site: str,
    n_sessions: int | None = None,
    *,
    split: str = "test",
    out_dir: str | Path | None = None,
    concurrency: int = 4,
    seed: int = 1,
    max_steps: int = 30,
    backend: Literal["http", "browser"] = "http",
    funnel: FunnelConfig | None = None,
    temperature: float = 0.6,
    device: str = "auto",
) -> dict[str, Any]:
    """Run `policy` (a `Policy`, `"scripted"` or a model directory) on `site` as the reference sessions' shoppers and
    compare the sessions with the reference (`compare_runs`).

    `reference` is a data directory (its `split`'s sessions) or a run directory (all its sessions). The shoppers are
    the reference sessions' personas and intents, in order, `n_sessions` of them (default: as many as there are;
    more cycle). A model directory samples at `temperature` on `device`, unconstrained (`structured=False`, at the
    data's page budget): the model's own outputs, as the next-action eval scores them; pass a `LocalPolicy` to measure
    other settings (the shipped default decodes with the action grammar). The simulated run is written to `out_dir`
    (default: a temporary directory, removed after). `seed` defaults to 1, not `simulate`'s 0, so a scripted
    reference run is not replayed draw for draw.
    """
    ref_traces = reference_traces(reference, split)
    items = [pi for t in ref_traces if (pi := persona_intent_of(t.header.persona, t.header.intent)) is not None]
    if not items:
        raise DataError(f"Expect reference sessions with personas and intents, actually: none in {reference}")
    n = n_sessions if n_sessions is not None else len(items)
    if n < 1:
        raise DataError(f"Expect n_sessions >= 1, actually: {n}")
    shoppers = [items[i % len(items)] for i in range(n)]
    owned = not _is_policy(policy)
    pol = _make_realism_policy(policy, reference, temperature, device) if owned else policy
    config = RunConfig(site=site, backend=backend, concurrency=concurrency, seed=seed, max_steps=max_steps)
    tmp = tempfile.TemporaryDirectory(prefix="shop-r1-realism-") if out_dir is None else None
    run_dir = Path(tmp.name) / "run" if tmp is not None else Path(out_dir)  # type: ignore[arg-type]

    async def go() -> None:
        try:
            await run_sessions(run_dir, pol, shoppers, config, progress=False, extra={"task": "session_realism"})
        finally:
            if owned:
                await pol.close()

    started = time.perf_counter()
    try:
        asyncio.run(go())
        simulated, _ = load_run(run_dir)
        comparison = compare_runs(ref_traces, simulated, funnel)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return {
        "task": "session_realism",
        "policy": pol.describe(),
        "reference": str(Path(reference).resolve()),
        "split": split if (Path(reference) / "meta.json").is_file() else None,
        "site": site,
        "sessions": n,
        "run_dir": str(run_dir.resolve()) if tmp is None else None,
        "seconds": round(time.perf_counter() - started, 2),
        **comparison,
    }


def _is_policy(policy: Any) -> bool:
    return isinstance(policy, Policy)


def _make_realism_policy(policy: Any, reference: str | Path, temperature: float, device: str) -> Any:
    if isinstance(policy, str | Path) and Path(policy).is_dir():
        from agent.policy.local import LocalPolicy, LocalPolicyConfig

        prompt = PromptConfig()
        if (Path(reference) / "meta.json").is_file():
            data_config = load_meta(reference)["config"]
            prompt = PromptConfig(max_context_tokens=data_config["max_context_tokens"],
                                  system=data_config.get("system", "full"),
                                  persona=bool(data_config.get("persona", True)))
        return LocalPolicy(LocalPolicyConfig(model_dir=str(policy), temperature=temperature, device=device,
                                             prompt=prompt, structured=False))
    if isinstance(policy, str):
        return make_policy(policy)
    raise DataError(f"Expect a Policy, a policy name or a model directory, actually: {type(policy).__name__}")


def _fmt(x: float | None, pct: bool = False) -> str:
    if x is None:
        return "–"
    return f"{100 * x:.1f}%" if pct else f"{x:.3f}"


def format_realism_markdown(result: Mapping[str, Any]) -> str:
    """The realism comparison as Markdown tables."""
    ref, sim, js = result["reference"], result["simulated"], result["js"]
    lines = [
        "# Session realism",
        "",
        f"{result['sessions']} simulated sessions vs {ref['sessions']} reference sessions. Jensen-Shannon distance "
        "(base 2): 0 = same distribution, 1 = disjoint.",
        "",
        "| distribution | JS distance |",
        "|---|---|",
        *(f"| {k.replace('_', ' ')} | {_fmt(v)} |" for k, v in js.items()),
        "",
        "| rate | reference | simulated |",
        "|---|---|---|",
        *(f"| {k.replace('_', ' ')} | {_fmt(v['reference'], True)} | {_fmt(v['simulated'], True)} |"
          for k, v in result["rates"].items()),
        *(f"| funnel: {s.replace('_', ' ')} | {_fmt(ref['funnel'][s], True)} | {_fmt(sim['funnel'][s], True)} |"
          for s in STAGES),
        f"| mean session length (steps) | {_fmt(ref['mean_length'])} | {_fmt(sim['mean_length'])} |",
    ]
    return "\n".join(lines) + "\n"
