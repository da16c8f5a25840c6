"""Chat messages for the shopper policy: a pure function of persona, history and the current page.

Two layouts share the same rendering functions:

- `multi` (default): system, then per step a user turn (the page) and an assistant turn (the step's JSON), ending on
  the current page. `build_session_chat` is the same layout for a whole session with its last assistant turn, so SFT
  data and inference prompts agree token for token up to the step being predicted.
- `single`: system, then one user message with persona, the previous steps and the current page.

When the prompt is over `max_context_tokens`, the oldest pages' HTML is replaced by a placeholder first, then the
current page is cut (head kept). Actions and rationales are always kept.

>>> from envs.actions import Click
>>> history = [HistoryItem("http://shop/", "<a name='nav.deals'>Deals</a>", Click(name="nav.deals"), "I like deals.")]
>>> result = build_messages(None, history, "http://shop/deals", "<p>No deals today</p>")
>>> [m["role"] for m in result.messages], result.dropped, result.truncated_current
(['system', 'user', 'assistant', 'user'], [], False)
>>> result.messages[2]["content"]
'{"rationale": "I like deals.", "action": {"type": "click", "name": "nav.deals"}}'
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from agent.policy.persona import PersonaIntent
from agent.policy.schema import ShopperStep, format_action, format_step
from envs.actions import ACTION_MODELS, Click, Terminate, TypeAndSubmit, parse_action

__all__ = [
    "PROMPT_CONFIG_FILE",
    "HistoryItem",
    "PromptConfig",
    "PromptResult",
    "approx_tokens",
    "build_messages",
    "build_session_chat",
    "compact_system_prompt",
    "describe_actions",
    "load_prompt_config",
    "render_persona_intent",
    "save_prompt_config",
    "system_prompt",
]

Message = dict[str, str]
TokenCounter = Callable[[str], int]

NEXT_ACTION_REQUEST = 'What do you do next? Reply with one JSON object {"rationale": ..., "action": {...}}.'


def approx_tokens(text: str) -> int:
    """A tokenizer-free estimate: 3.5 characters per token, rounded up. Pass `lambda s: len(tok.encode(s))` instead
    for exact counts.

    >>> approx_tokens(""), approx_tokens("abcd"), approx_tokens("x" * 35)
    (0, 2, 10)
    """
    return math.ceil(len(text) / 3.5)


@dataclass(frozen=True)
class PromptConfig:
    """How the prompt is laid out and cut to fit."""

    max_context_tokens: int = field(
        default=8192,
        metadata={"help": "Token budget of all message contents together (chat-template tokens not included; leave "
                          "headroom). The paper trains with contexts up to 32k tokens."},
    )
    include_rationales: bool = field(
        default=True,
        metadata={"help": "Show previous steps' rationales. The paper's RL prompts use none (Shop-R1, sec. RL)."},
    )
    history_pages: Literal["all", "latest"] = field(
        default="all",
        metadata={"help": "'all': whole-session context; 'latest': the current page only, no previous steps. "
                          "Table 5 of the paper: 27.72 vs 14.74 exact accuracy."},
    )
    layout: Literal["multi", "single"] = field(
        default="multi",
        metadata={"help": "'multi': one user/assistant turn pair per step (the SFT layout); 'single': one user "
                          "message holding the whole history."},
    )
    store_name: str = field(default="the store", metadata={"help": "The store's name in the system prompt."})
    placeholder: str = field(
        default="[page html omitted: {url}]",
        metadata={"help": "Stands in for a dropped page's HTML; `{url}` is replaced by its URL."},
    )
    truncation_marker: str = field(
        default="[... page truncated: first {shown} of {total} characters shown ...]",
        metadata={"help": "Appended, on its own line, where the current page is cut."},
    )
    include_errors: bool = field(
        default=True, metadata={"help": "Show why a previous action failed (BrowserGym's last_action_error)."}
    )
    system: Literal["full", "compact"] = field(
        default="compact",
        metadata={"help": "'full': the paper's system prompt in substance (~1.4k characters, action docs with "
                          "examples); 'compact': the same rules in ~500 characters with no example values, for small "
                          "models whose context the page needs (and which copy examples verbatim)."},
    )
    persona: bool = field(
        default=True,
        metadata={"help": "Show who the shopper is and what they want (`render_persona_intent`) before the first "
                          "page. False: the paper's exact context, pages and actions only (Shop-R1, sec. 3: the "
                          "previous page contexts, actions and rationales); the persona and intent block is "
                          "Customer-R1's addition. The intent goes too: the paper's model is never told what the "
                          "shopper wants and reads it from the pages and the queries already typed."},
    )

    def __post_init__(self) -> None:
        if self.max_context_tokens <= 0:
            raise ValueError(f"Expect max_context_tokens > 0, actually: {self.max_context_tokens}")
        if self.history_pages not in ("all", "latest"):
            raise ValueError(f"Expect history_pages 'all' or 'latest', actually: {self.history_pages!r}")
        if self.layout not in ("multi", "single"):
            raise ValueError(f"Expect layout 'multi' or 'single', actually: {self.layout!r}")
        if self.system not in ("full", "compact"):
            raise ValueError(f"Expect system 'full' or 'compact', actually: {self.system!r}")
        if not isinstance(self.persona, bool):
            raise ValueError(f"Expect persona True or False, actually: {self.persona!r}")


PROMPT_CONFIG_FILE = "shop_r1_prompt.json"
"""Written beside a trained model: the prompt layout and budget it was trained with, which `LocalPolicy` then uses, so
a model never meets a page budget at inference that it did not see in training."""


def save_prompt_config(config: PromptConfig, model_dir: str | Path) -> Path:
    """Write `config` as `model_dir/shop_r1_prompt.json`."""
    path = Path(model_dir) / PROMPT_CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dataclasses.asdict(config), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def load_prompt_config(model_dir: str | Path) -> PromptConfig | None:
    """The prompt config saved beside a model, or None when there is none; a malformed file is a `ValueError`.

    Unknown keys (from a newer version) are ignored.
    """
    path = Path(model_dir) / PROMPT_CONFIG_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise TypeError(f"a JSON {type(raw).__name__}")
        known = {f.name for f in dataclasses.fields(PromptConfig)}
        return PromptConfig(**{k: v for k, v in raw.items() if k in known})
    except (ValueError, TypeError) as exc:
        raise ValueError(f"Expect a prompt config in {path}, actually: {exc}") from None


@dataclass(frozen=True)
class HistoryItem:
    """A previous step: the page it was taken on, the action, and optionally its rationale and why it failed.

    `load_s` is how long that page took to arrive (`Observation.load_s`), when known; it is not part of equality.

    `action` may be given as a dict or JSON string; it is parsed with `envs.actions.parse_action`.

    >>> HistoryItem("http://shop/", "<html/>", {"type": "terminate"}).action
    Terminate(type='terminate')
    """

    url: str
    observation: str
    action: Click | TypeAndSubmit | Terminate
    rationale: str | None = None
    error: str | None = None
    load_s: float | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", parse_action(self.action))


@dataclass(frozen=True)
class PromptResult:
    """The messages, and what the budget rule did to them.

    `dropped`: indices (into the history, or the session's steps) of pages whose HTML became the placeholder.
    `tokens`: the sum of `count_tokens` over the message contents, exactly as counted.
    `current_shown`: the fraction of the current page's characters the prompt shows (1.0 when it was not cut; 0.0
    means the model sees none of the page: the budget went to the system prompt, persona and history).
    """

    messages: list[Message]
    dropped: list[int]
    truncated_current: bool
    tokens: int
    max_tokens: int
    current_shown: float = 1.0

    @property
    def over_budget(self) -> bool:
        """True when even with every page dropped and the current page emptied the prompt does not fit."""
        return self.tokens > self.max_tokens


# --------------------------------------------------------------------------------------------------------------------
# Rendering


def describe_actions() -> str:
    """The action list of the system prompt, generated from the docstrings of `envs.actions`' models.

    >>> print(describe_actions().splitlines()[-1])
    - `terminate`: Leave the site without buying anything. Example: {"type": "terminate"}
    """
    lines = []
    for model in ACTION_MODELS:
        doc = inspect.cleandoc(model.__doc__ or "")
        summary, _, rest = doc.partition("\n\n")
        example = re.search(r"`(\{.*\})`", rest)
        line = f"- `{model.model_fields['type'].default}`: {' '.join(summary.split())}"
        if example:
            line += f" Example: {example.group(1)}"
        lines.append(line)
    return "\n".join(lines)


def system_prompt(store_name: str = "the store") -> str:
    """The paper's system prompt, in substance: who you are, the observation, the actions, the output format.

    >>> text = system_prompt("Acme Outfitters")
    >>> all(word in text for word in ("Acme Outfitters", "click", "type_and_submit", "terminate", "JSON", "`name`"))
    True
    """
    return (
        f"You are a real person shopping online at {store_name}. You are browsing the site to buy something; "
        "who you are and what you are looking for are described before the first page, when known.\n\n"
        "At each step you see the current web page as simplified HTML: scripts and styles are removed, layout and "
        "content are kept, and every element you can interact with carries a unique `name` attribute. Refer to an "
        "element only by its `name`, exactly as written in the page.\n\n"
        "Predict your next action on the page, and give a short first-person rationale for it: one or two sentences "
        'in your own voice, e.g. "These are over my budget, so I\'ll sort by price."\n\n'
        f"Actions:\n{describe_actions()}\n"
        "To buy, click the page's buy or checkout button. Use `terminate` only to leave without buying.\n\n"
        "Output a single JSON object and nothing else (no code fences, no text before or after it):\n"
        '{"rationale": "<short first-person rationale>", "action": {<one action as above>}}'
    )


def compact_system_prompt(store_name: str = "the store") -> str:
    """The system prompt's rules without the action docs' examples: who you are, names, the three actions, the output.

    Small models copy concrete example values from the system prompt (a query typed for every request, an element
    name that is not on the page), so it names none.

    >>> text = compact_system_prompt()
    >>> len(text) < 700 and all(w in text for w in ("click", "type_and_submit", "terminate", "JSON", "`name`"))
    True
    """
    return (
        f"You are a real person shopping online at {store_name}. Each user turn shows the current web page as "
        "simplified HTML; every element you can use has a `name` attribute. Use names exactly as written on the page.\n"
        "Actions: click (an element: link, button, option), type_and_submit (text into an input, then Enter), "
        "terminate (leave without buying). To buy, click the buy or checkout button.\n"
        'Reply with one JSON object only: {"rationale": "<why, first person, one sentence>", "action": '
        '{"type": "click", "name": "<name>"} or {"type": "type_and_submit", "name": "<input name>", "text": '
        '"<what you type>"} or {"type": "terminate"}}'
    )


def render_persona_intent(persona_intent: PersonaIntent) -> str:
    """Who the shopper is and what they want. Hidden intent fields (target product, keywords) are never shown.

    >>> from agent.policy.persona import Intent, Persona
    >>> pi = PersonaIntent(persona=Persona(persona_id="p", name="Bo", description="Bo likes tea."),
    ...                    intent=Intent(text="I need green tea.", max_price=10, options={"size": "large"}))
    >>> print(render_persona_intent(pi))
    # Who you are
    You are Bo. Bo likes tea.
    <BLANKLINE>
    # What you want
    I need green tea.
    Budget: at most $10.
    Preferences: size: large.
    """
    persona, intent = persona_intent.persona, persona_intent.intent
    lines = ["# Who you are", f"You are {persona.name}. {persona.description}".rstrip()]
    habits = persona.habits()
    if habits:
        lines.append("Your shopping habits:")
        lines.extend(f"- {habit}" for habit in habits)
    lines += ["", "# What you want", intent.text]
    if intent.max_price is not None:
        price = intent.max_price
        lines.append(f"Budget: at most ${price:,.0f}." if price == int(price) else f"Budget: at most ${price:,.2f}.")
    if intent.options:
        lines.append("Preferences: " + ", ".join(f"{k}: {v}" for k, v in intent.options.items()) + ".")
    return "\n".join(lines)


def _persona_block(persona_intent: PersonaIntent | None, config: PromptConfig) -> str | None:
    """The persona and intent block, or None: none known, or `config.persona` off (the paper's context)."""
    return render_persona_intent(persona_intent) if persona_intent is not None and config.persona else None


def _page(heading: str, url: str, html: str) -> str:
    return f"{heading}\nURL: {url}\n{html}"


def _action_json(item: HistoryItem, include_rationale: bool) -> str:
    if include_rationale and item.rationale and item.rationale.strip():
        return format_step(ShopperStep.model_construct(rationale=item.rationale, action=item.action))
    return '{"action": ' + format_action(item.action) + "}"


# --------------------------------------------------------------------------------------------------------------------
# Assembly and the budget rule


@dataclass(frozen=True)
class _Parts:
    config: PromptConfig
    persona_block: str | None
    history: Sequence[HistoryItem]  # the previous steps that are shown
    current_step: int  # 1-based; in latest-only mode it still counts the hidden steps
    current_url: str
    current_html: str
    current_error: str | None  # why the action that led to the current page failed, if shown there
    final: HistoryItem | None  # the session's last step, as a final assistant turn (build_session_chat)

    def render(self, dropped: frozenset[int], current_html: str) -> list[Message]:
        config = self.config
        htmls = [
            config.placeholder.replace("{url}", item.url) if i in dropped else item.observation
            for i, item in enumerate(self.history)
        ]
        n = len(self.history)
        system = compact_system_prompt if config.system == "compact" else system_prompt
        messages: list[Message] = [{"role": "system", "content": system(config.store_name)}]
        head = [self.persona_block] if self.persona_block else []
        current_page = _page(f"# Current page (step {self.current_step})", self.current_url, current_html)
        current = [*_error(self.current_error, config), current_page]

        if config.layout == "single":
            blocks = list(head)
            if self.history:
                steps = []
                for i, item in enumerate(self.history):
                    lines = [_page(f"## Step {i + 1}", item.url, htmls[i])]
                    if config.include_rationales and item.rationale and item.rationale.strip():
                        lines.append(f"Rationale: {item.rationale}")
                    lines.append(f"Action: {format_action(item.action)}")
                    if config.include_errors and item.error:
                        lines.append(f"Result: the action failed: {item.error}")
                    steps.append("\n".join(lines))
                blocks.append("# Your previous steps\n" + "\n\n".join(steps))
            messages.append({"role": "user", "content": "\n\n".join([*blocks, *current, NEXT_ACTION_REQUEST])})
        else:
            for i, item in enumerate(self.history):
                blocks = [*(head if i == 0 else []), *_error(self.history[i - 1].error if i else None, config)]
                blocks += [_page(f"# Current page (step {i + 1})", item.url, htmls[i]), NEXT_ACTION_REQUEST]
                messages.append({"role": "user", "content": "\n\n".join(blocks)})
                messages.append({"role": "assistant", "content": _action_json(item, config.include_rationales)})
            blocks = [*(head if n == 0 else []), *current, NEXT_ACTION_REQUEST]
            messages.append({"role": "user", "content": "\n\n".join(blocks)})
        if self.final is not None:
            messages.append({"role": "assistant", "content": _action_json(self.final, config.include_rationales)})
        return messages


def _error(error: str | None, config: PromptConfig) -> list[str]:
    return [f"Your last action failed: {error}"] if error and config.include_errors else []


class _Counter:
    """Counts each distinct message content once (a real tokenizer on 100 kB pages is not free)."""

    def __init__(self, count_tokens: TokenCounter) -> None:
        self._count = count_tokens
        self._cache: dict[str, int] = {}

    def __call__(self, messages: list[Message]) -> int:
        total = 0
        for message in messages:
            content = message["content"]
            if content not in self._cache:
                self._cache[content] = int(self._count(content))
            total += self._cache[content]
        return total


def _fit(parts: _Parts, count_tokens: TokenCounter) -> PromptResult:
    config, budget = parts.config, parts.config.max_context_tokens
    count = _Counter(count_tokens)
    dropped: list[int] = []
    full = parts.current_html
    messages = parts.render(frozenset(), full)
    tokens = count(messages)
    for index in range(len(parts.history)):  # oldest first
        if tokens <= budget:
            break
        dropped.append(index)
        messages = parts.render(frozenset(dropped), full)
        tokens = count(messages)

    truncated = False
    if tokens > budget and full:
        truncated = True

        def cut(k: int) -> str:
            marker = config.truncation_marker.replace("{shown}", str(k)).replace("{total}", str(len(full)))
            return f"{full[:k]}\n{marker}"

        def attempt(k: int) -> tuple[list[Message], int]:
            trial = parts.render(frozenset(dropped), cut(k))
            return trial, count(trial)

        lo, hi = 0, len(full) - 1  # the largest k in [lo, hi] that fits, if any
        best: tuple[int, list[Message], int] | None = None
        while lo <= hi:
            mid = (lo + hi) // 2
            trial, trial_tokens = attempt(mid)
            if trial_tokens <= budget:
                best, lo = (mid, trial, trial_tokens), mid + 1
            else:
                hi = mid - 1
        if best is None:
            messages, tokens = attempt(0)
            shown = 0
        else:
            k, messages, tokens = best
            shown = k
            boundary = max(full.rfind("\n", 0, k), full.rfind(">", 0, k) + 1)  # prefer cutting between tags/lines
            if boundary >= 0.9 * k and boundary != k:
                trial, trial_tokens = attempt(boundary)
                if trial_tokens <= budget:
                    messages, tokens, shown = trial, trial_tokens, boundary
        return PromptResult(messages=messages, dropped=dropped, truncated_current=True, tokens=tokens,
                            max_tokens=budget, current_shown=shown / len(full))
    return PromptResult(messages=messages, dropped=dropped, truncated_current=truncated, tokens=tokens,
                        max_tokens=budget)


def build_messages(
    persona_intent: PersonaIntent | None,
    history: Sequence[HistoryItem],
    current_url: str,
    current_observation: str,
    config: PromptConfig | None = None,
    count_tokens: TokenCounter = approx_tokens,
) -> PromptResult:
    """The chat messages to predict the next step from, cut to `config.max_context_tokens`.

    Pure: the same inputs give the same messages, and nothing passed in is modified.

    >>> r = build_messages(None, [], "http://shop/", "<input name='search_input'>", PromptConfig(layout="single"))
    >>> print(r.messages[1]["content"].splitlines()[0])
    # Current page (step 1)
    """
    config = config or PromptConfig()
    shown = tuple(history) if config.history_pages == "all" else ()
    # The failed last action is part of the current observation, except in the single layout's full history, where
    # it already sits under that action.
    in_history = config.layout == "single" and bool(shown)
    parts = _Parts(
        config=config,
        persona_block=_persona_block(persona_intent, config),
        history=shown,
        current_step=len(history) + 1,
        current_url=current_url,
        current_html=current_observation,
        current_error=history[-1].error if history and not in_history else None,
        final=None,
    )
    return _fit(parts, count_tokens)


def build_session_chat(
    persona_intent: PersonaIntent | None,
    steps: Sequence[HistoryItem],
    config: PromptConfig | None = None,
    count_tokens: TokenCounter = approx_tokens,
) -> PromptResult:
    """A whole session as system/user/assistant turns, one user (page) and one assistant (step JSON) per step.

    The SFT layout: every assistant turn is `format_step` of that step, and the messages up to step t's user turn are
    exactly `build_messages(..., history=steps[:t], ...)` with `layout="multi"` when nothing is cut. The budget rule
    is the same; the last step's page counts as the current page. `config.layout` is ignored.

    >>> from envs.actions import Terminate
    >>> chat = build_session_chat(None, [HistoryItem("http://shop/", "<p>hi</p>", Terminate(), "Nothing for me.")])
    >>> [m["role"] for m in chat.messages]
    ['system', 'user', 'assistant']
    """
    config = config or PromptConfig()
    if not steps:
        raise ValueError("Expect at least one step in a session, actually: none")
    if config.history_pages != "all":
        raise ValueError(
            f"Expect history_pages='all' for a session chat, actually: {config.history_pages!r}; "
            "build latest-only examples per step with build_messages"
        )
    if config.include_rationales:
        missing = [i for i, step in enumerate(steps) if not (step.rationale and step.rationale.strip())]
        if missing:
            raise ValueError(
                f"Expect a rationale on every step (the assistant turns are full steps), actually: none on steps "
                f"{missing[:10]}; fill them in or pass include_rationales=False for action-only turns"
            )
    if config.layout != "multi":
        config = dataclasses.replace(config, layout="multi")
    *previous, last = steps
    parts = _Parts(
        config=config,
        persona_block=_persona_block(persona_intent, config),
        history=tuple(previous),
        current_step=len(steps),
        current_url=last.url,
        current_html=last.observation,
        current_error=previous[-1].error if previous else None,
        final=last,
    )
    return _fit(parts, count_tokens)
