"""Grammar-constrained decoding of one shopper step for local transformers models.

vLLM's structured outputs keep a served model inside the action JSON schema (`agent.policy.schema.response_format`);
this module does the same for the in-process `local` policy, and goes one step further: the `name` of a click can only
be one of the current page's clickable elements, and the `name` of a type_and_submit one of its text inputs. A small
model then never emits broken JSON or a name that is not on the page; what it still decides is the rationale, the
action type, which element, and the text.

The grammar is the canonical serialisation (`agent.policy.schema.format_step`, the SFT targets' exact bytes):

    {"rationale": "<text>", "action": {"type": "click", "name": "<clickable>"}}
    {"rationale": "<text>", "action": {"type": "type_and_submit", "name": "<input>", "text": "<text>"}}
    {"rationale": "<text>", "action": {"type": "terminate"}}

`ActionGrammar` is a pure character-level automaton (`start`, `feed`); `TokenTable` holds each token id's text;
`ActionLogitsProcessor` masks, at every generation step and for every row of a batch, the tokens whose text would
leave the grammar, and forces free text to close when the token budget gets short. Free text follows JSON string
rules (no raw control characters; escapes `\\" \\\\ \\/ \\b \\f \\n \\r \\t`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .schema import page_names

__all__ = ["ActionGrammar", "ActionLogitsProcessor", "TokenTable", "grammar_for_elements"]

_ESCAPES = frozenset('"\\/bfnrt')
_END = "end"


def _quote(text: str) -> str:
    """`text` as the inside of a JSON string, the way `format_step` writes it (unicode kept)."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


# --------------------------------------------------------------------------------------------------------------------
# The automaton

# A state is a tuple whose first item names the node:
#   ("lit", node, pos)                     inside a literal
#   ("choice", node, prefix)               inside one of a set of quoted options
#   ("free", node, length, escape, blank, space)
#                                          inside a free JSON string (escape: after a backslash; blank: only spaces
#                                          so far; space: the last character was a space)
#   ("end",)                               the object is complete


@dataclass(frozen=True)
class _Lit:
    text: str
    next: str


@dataclass(frozen=True)
class _Choice:
    options: tuple[str, ...]          # JSON-quoted option texts
    next: dict[str, str]              # option -> next node


@dataclass(frozen=True)
class _Free:
    max_chars: int
    next: str                          # the node after the closing quote
    nonblank: bool                     # the string must hold a non-space character
    close_after_space: bool = True     # False: a quote right after a space opens a quotation, it cannot close


@dataclass(frozen=True)
class ActionGrammar:
    """The step JSON with `click` names drawn from `clickable` and `type_and_submit` names from `inputs`.

    `None` means any non-blank name (the page's names are unknown); an empty tuple removes that action type. The
    free strings are bounded: a rationale by `max_rationale_chars`, a typed text by `max_text_chars`.

    >>> g = ActionGrammar(clickable=("nav.home",), inputs=())
    >>> g.accepts('{"rationale": "Go home.", "action": {"type": "click", "name": "nav.home"}}')
    True
    >>> g.accepts('{"rationale": "Search.", "action": {"type": "type_and_submit", "name": "q", "text": "tent"}}')
    False
    """

    clickable: tuple[str, ...] | None = None
    inputs: tuple[str, ...] | None = None
    max_rationale_chars: int = 400
    max_text_chars: int = 120
    nodes: dict[str, Any] = field(init=False, repr=False, compare=False)
    _tail: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_rationale_chars < 1 or self.max_text_chars < 0:
            raise ValueError(f"Expect max_rationale_chars >= 1 and max_text_chars >= 0, actually: "
                             f"{self.max_rationale_chars}, {self.max_text_chars}")
        types: dict[str, str] = {"terminate": "term"}
        nodes: dict[str, Any] = {
            "open": _Lit('{"rationale": "', "rationale"),
            # `I'll look up "tents"`: a bare quote after a space starts a quotation; closing the rationale there
            # would cut it mid-sentence (rationales end on a word or punctuation), so only `\"` continues it
            "rationale": _Free(self.max_rationale_chars, "mid", nonblank=True, close_after_space=False),
            "mid": _Lit(', "action": {"type": "', "type"),
            "term": _Lit('"}}', _END),
        }
        for kind, names, prefix in (("click", self.clickable, "c"), ("type_and_submit", self.inputs, "t")):
            if names is not None and not names:
                continue
            types[kind] = f"{prefix}_name_key"
            nodes[f"{prefix}_name_key"] = _Lit('", "name": "', f"{prefix}_name")
            after = f"{prefix}_after"
            if names is None:
                nodes[f"{prefix}_name"] = _Free(256, after, nonblank=True)
                close = ""            # a free string consumes its own closing quote
            else:
                quoted = tuple(dict.fromkeys(_quote(n) for n in names if n.strip()))
                nodes[f"{prefix}_name"] = _Choice(quoted, dict.fromkeys(quoted, after))
                close = '"'
            if kind == "click":
                nodes[after] = _Lit(close + "}}", _END)
            else:
                nodes[after] = _Lit(close + ', "text": "', "t_text")
                nodes["t_text"] = _Free(self.max_text_chars, "t_close", nonblank=False)
                nodes["t_close"] = _Lit("}}", _END)
        nodes["type"] = _Choice(tuple(types), types)
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "_tail", {})

    # -- states --------------------------------------------------------------------------------------------------

    def start(self) -> tuple[Any, ...]:
        return self._enter("open")

    def _enter(self, node: str) -> tuple[Any, ...]:
        if node == _END:
            return (_END,)
        spec = self.nodes[node]
        if isinstance(spec, _Lit):
            return ("lit", node, 0)
        if isinstance(spec, _Choice):
            return ("choice", node, "")
        return ("free", node, 0, False, True, False)

    def feed(self, state: tuple[Any, ...] | None, text: str) -> tuple[Any, ...] | None:
        """The state after `text`, or None when `text` leaves the grammar."""
        for ch in text:
            if state is None:
                return None
            state = self._step(state, ch)
        return state

    def _step(self, state: tuple[Any, ...], ch: str) -> tuple[Any, ...] | None:
        kind = state[0]
        if kind == _END:
            return None
        spec = self.nodes[state[1]]
        if kind == "lit":
            pos = state[2]
            if spec.text[pos] != ch:
                return None
            return ("lit", state[1], pos + 1) if pos + 1 < len(spec.text) else self._enter(spec.next)
        if kind == "choice":
            prefix = state[2] + ch
            if any(o.startswith(prefix) for o in spec.options):
                return ("choice", state[1], prefix)
            # the option is complete when the next character belongs to what follows it
            if state[2] in spec.next:
                return self._step(self._enter(spec.next[state[2]]), ch)
            return None
        _, node, length, escape, blank, space = state
        if escape:
            return ("free", node, length + 1, False, False, False) if ch in _ESCAPES else None
        if ch == '"':
            if (spec.nonblank and blank) or (space and not spec.close_after_space):
                return None
            return self._enter(spec.next)
        if ch < " " or length >= spec.max_chars:
            return None
        if ch == "\\":
            return ("free", node, length, True, blank, False)
        return ("free", node, length + 1, False, blank and ch.isspace(), ch.isspace())

    def accepts(self, text: str) -> bool:
        """Whether `text` is one complete step of this grammar."""
        return self.feed(self.start(), text) == (_END,)

    # -- budgets -------------------------------------------------------------------------------------------------

    def tail_chars(self, node: str) -> int:
        """The most characters from entering `node` to the end, free strings counted empty: a token budget at least
        this large (plus one for EOS) always lets the object close."""
        if node == _END:
            return 0
        if node not in self._tail:
            spec = self.nodes[node]
            if isinstance(spec, _Lit):
                value = len(spec.text) + self.tail_chars(spec.next)
            elif isinstance(spec, _Choice):
                value = max(len(o) + self.tail_chars(spec.next[o]) for o in spec.options)
            else:
                value = 1 + self.tail_chars(spec.next) + (1 if spec.nonblank else 0)
            self._tail[node] = value
        return self._tail[node]

    @property
    def min_tokens(self) -> int:
        """The smallest `max_new_tokens` that always completes, even one character per token (plus EOS)."""
        return self.tail_chars("open") + 1

    def must_close(self, state: tuple[Any, ...], tokens_left: int) -> bool:
        """Whether a free string must end now so the rest still fits in `tokens_left` tokens."""
        if state[0] != "free":
            return False
        spec = self.nodes[state[1]]
        return tokens_left <= self.tail_chars(spec.next) + 2


def grammar_for_elements(elements: Sequence[Any], **kwargs: Any) -> ActionGrammar:
    """The grammar of a page: its clickable elements and its text inputs (`envs.observation.ElementRef`s), the same
    names `agent.policy.schema.page_names` puts in the served schema's enums."""
    clickable, inputs = page_names(elements)
    return ActionGrammar(clickable=clickable, inputs=inputs, **kwargs)


# --------------------------------------------------------------------------------------------------------------------
# Tokens


class TokenTable:
    """Each token id's text, grouped for fast masking. Build once per tokenizer (`LocalEngine` caches it).

    `plain` tokens hold no quote, backslash or control character: inside a free string any of them is allowed as
    long as it fits the length bound. The rest (`special`) are checked one by one; `by_first` indexes every usable
    token by its first character for literals and choices. Special tokens (chat markers) are never allowed, except
    the EOS ids once the object is complete.
    """

    def __init__(self, tokenizer: Any, vocab_size: int, eos_ids: Sequence[int]) -> None:
        self.vocab_size = vocab_size
        self.eos_ids = tuple(eos_ids)
        special_ids = set(getattr(tokenizer, "all_special_ids", []) or [])
        added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
        special_ids |= {int(i) for i, tok in added.items() if getattr(tok, "special", True)}
        n = min(vocab_size, len(tokenizer))
        texts = tokenizer.batch_decode([[i] for i in range(n)], skip_special_tokens=False,
                                       clean_up_tokenization_spaces=False)
        self.texts: list[str] = [""] * vocab_size
        plain_len = torch.full((vocab_size,), -1, dtype=torch.long)
        self.special: list[int] = []
        self.by_first: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            if i in special_ids or not text:
                continue
            self.texts[i] = text
            self.by_first.setdefault(text[0], []).append(i)
            if any(c == '"' or c == "\\" or c < " " for c in text):
                self.special.append(i)
            else:
                plain_len[i] = len(text)
        self.plain_len = plain_len
        self.blank = torch.tensor([bool(t) and t.isspace() for t in self.texts], dtype=torch.bool)  # whitespace only

    def plain_mask(self, max_len: int) -> torch.Tensor:
        """Plain tokens at most `max_len` characters long."""
        return (self.plain_len >= 0) & (self.plain_len <= max_len)


# --------------------------------------------------------------------------------------------------------------------
# The logits processor


class ActionLogitsProcessor:
    """A transformers logits processor: row `i` of the batch may only continue `grammars[i]` (None: unconstrained).

    `prompt_width` is the (left-padded) prompt length: generated tokens start there. `max_new_tokens[i]` bounds row
    `i`; free text is forced to close when what is left would not fit the rest of the object. Once a row's object is
    complete only EOS is allowed. If sampling filters (top-p) left no allowed token, the allowed tokens are kept with
    the model's raw scores, so a row never ends up with nothing to sample.
    """

    def __init__(self, table: TokenTable, grammars: Sequence[ActionGrammar | None], prompt_width: int,
                 max_new_tokens: Sequence[int]) -> None:
        self.table = table
        self.grammars = list(grammars)
        self.width = prompt_width
        self.max_new = list(max_new_tokens)
        self.states: list[tuple[Any, ...] | None] = [g.start() if g else None for g in self.grammars]
        self._cache: list[dict[tuple[Any, ...], torch.Tensor]] = [{} for _ in self.grammars]
        self._seen = 0
        self.seconds = 0.0  # time spent in this processor (the grammar's cost, for the engine's stats)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        started = time.perf_counter()
        try:
            return self._constrain(input_ids, scores)
        finally:
            self.seconds += time.perf_counter() - started

    def _constrain(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        generated = input_ids.shape[1] - self.width
        if generated > self._seen:
            last = input_ids[:, -1].tolist()
            for row, grammar in enumerate(self.grammars):
                if grammar is not None and self.states[row] is not None and self.states[row] != (_END,):
                    self.states[row] = grammar.feed(self.states[row], self.table.texts[last[row]])
            self._seen = generated
        out = scores
        for row, grammar in enumerate(self.grammars):
            if grammar is None:
                continue
            allowed = self._allowed(row, grammar, self.max_new[row] - generated).to(scores.device)
            if allowed.shape[0] < scores.shape[1]:
                allowed = torch.nn.functional.pad(allowed, (0, scores.shape[1] - allowed.shape[0]))
            masked = scores[row].masked_fill(~allowed, float("-inf"))
            if not torch.isfinite(masked).any():
                masked = torch.where(allowed, torch.zeros_like(masked), torch.full_like(masked, float("-inf")))
            if out is scores:
                out = scores.clone()
            out[row] = masked
        return out

    def _allowed(self, row: int, grammar: ActionGrammar, tokens_left: int) -> torch.Tensor:
        table, state = self.table, self.states[row]
        allowed = torch.zeros(table.vocab_size, dtype=torch.bool)
        if state is None or state == (_END,):
            # done (or, defensively, off the grammar): only EOS, so the row stops
            allowed[list(table.eos_ids)] = True
            return allowed
        if state[0] == "free":
            spec = grammar.nodes[state[1]]
            closing = grammar.must_close(state, tokens_left)
            if not closing and not state[3]:
                allowed |= table.plain_mask(spec.max_chars - state[2])
            candidates: Sequence[int] = table.by_first.get('"', []) if closing else table.special
            for i in candidates:
                if grammar.feed(state, table.texts[i]) is not None:
                    allowed[i] = True
            if closing and not allowed.any():
                # a blank required string, or one that ends on a space where a quote cannot close it: let one plain
                # non-space character through, after which the quote can close
                allowed |= table.plain_mask(1) & ~table.blank
            return allowed
        cache = self._cache[row]
        if state in cache:
            return cache[state]
        for first in self._next_chars(grammar, state):
            for i in table.by_first.get(first, []):
                if grammar.feed(state, table.texts[i]) is not None:
                    allowed[i] = True
        cache[state] = allowed
        return allowed

    @staticmethod
    def _next_chars(grammar: ActionGrammar, state: tuple[Any, ...]) -> set[str]:
        spec = grammar.nodes[state[1]]
        if state[0] == "lit":
            return {spec.text[state[2]]}
        prefix = state[2]
        chars = {o[len(prefix)] for o in spec.options if o.startswith(prefix) and len(o) > len(prefix)}
        if prefix in spec.next:
            follow = grammar._enter(spec.next[prefix])
            chars |= ActionLogitsProcessor._next_chars(grammar, follow) if follow[0] != "free" else {'"'}
        return chars
