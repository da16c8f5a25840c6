"""Self-certainty s(r), Shop-R1's rationale reward: how peaked the policy's next-token distributions are on the
rationale's tokens.

Per position, with p = softmax(z / T) the policy's next-token distribution at temperature T and U uniform over the
vocabulary V:

    KL(U ‖ p) = −log|V| − (1/|V|)·Σ_j log p_j = logsumexp(z/T) − mean(z/T) − log|V|   (≥ 0, 0 iff p is uniform)

and s(r) is its mean over the rationale's tokens (Shop-R1, sec. 3; the self-certainty of Kang et al. 2025). We keep
the −log|V| so that values are true KL divergences (reference code drops it: a constant shift, irrelevant to GRPO's
group-normalised advantages but not to α·s(r) added to v(a)).

**Alignment.** A causal LM's logits at position i predict token i+1. The score of completion token k therefore uses
the logits at the position just before it: with `input_ids = prompt (P tokens) + completion (C tokens)`, completion
token k sits at P+k and is predicted by position P+k−1; the last position (after the final token) predicts nothing we
score. `self_certainty` does this shift; pass `shifted=True` when the logits are already aligned so that row k
predicts completion token k (TRL's `logits[:, :-1][:, -logits_to_keep:]`).

**Rationale tokens.** `rationale_token_mask` finds the characters of the `"rationale"` string literal (between its
quotes, escapes included) in the completion's first JSON object that has one, and selects every completion token
whose characters overlap them. No rationale (or an unterminated one) selects nothing, and s(r) is then 0.

**Wiring it into GRPO** (the objective is E[v(a) + α·s(r)] − β·KL, α = 0.005): after generation, for each completion
build its rationale mask (`rationale_token_masks(texts, completion_ids_list, tokenizer)`, right-padded to the
completion length like TRL's `completion_mask`), then either

- call `policy_self_certainty(model, prompt_completion_ids, attention_mask, masks, temperature)`, which runs the
  policy without gradients in chunks with `logits_to_keep = C + 1` and returns s(r) per completion; or
- if you already hold the policy's logits over `prompt + completion` (or their last C+1 positions), call
  `self_certainty(logits, completion_ids, masks, temperature)`.

and add `alpha * s` to the rewards before the group normalisation. s(r) is a reward: compute it under
`torch.no_grad()`. Only the masked positions' logits are expanded to float32, so memory is O(rationale tokens × |V|).

>>> import torch
>>> logits = torch.tensor([[[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [5.0, 0.0, 0.0]]])  # [batch 1, 3 positions, |V| 3]
>>> token_self_certainty(logits, temperature=1.0).round(decimals=4)  # uniform -> 0; more peaked -> larger
tensor([[0.0000, 0.4743, 2.2481]])
>>> # 3 positions = 1 prompt token + 2 completion tokens: position 0 predicts completion token 0, position 1 token 1
>>> ids = torch.tensor([[7, 8]])
>>> self_certainty(logits, ids, torch.tensor([[False, True]]), temperature=1.0).round(decimals=4)
tensor([0.4743])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from json.decoder import scanstring  # type: ignore[attr-defined]  # real, but typeshed's stub omits it
from typing import Any

import torch

from agent.policy.schema import ShopperStep, parse_step

__all__ = [
    "policy_self_certainty",
    "rationale_span",
    "rationale_token_mask",
    "rationale_token_masks",
    "self_certainty",
    "token_self_certainty",
]

MAX_OBJECTS = 64
"""At most this many `{` are tried as the start of the step object (agent.policy.schema tries as many candidates)."""

_WHITESPACE = " \t\n\r"


def _check_temperature(temperature: float) -> None:
    if not isinstance(temperature, int | float) or isinstance(temperature, bool) or not temperature > 0:
        raise ValueError(f"Expect temperature > 0 (the sampling one; Shop-R1: 0.6), actually: {temperature!r}")
    if not math.isfinite(temperature):
        raise ValueError(f"Expect a finite temperature, actually: {temperature!r}")


def token_self_certainty(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL(U ‖ softmax(logits / T)) over the last dimension, per position: `logits[..., V] -> [...]`.

    Computed as `logsumexp(z) − mean(z) − log|V|` with z = logits / T in float32 (float64 stays float64), clamped at 0
    against rounding. Logits of −inf (a masked-out vocabulary entry) give +inf, the true KL.

    >>> import torch
    >>> token_self_certainty(torch.zeros(4, 10)).tolist()
    [0.0, 0.0, 0.0, 0.0]
    """
    _check_temperature(temperature)
    z = logits if logits.dtype == torch.float64 else logits.float()
    z = z / temperature
    vocab = z.shape[-1]
    return (torch.logsumexp(z, dim=-1) - z.mean(dim=-1) - math.log(vocab)).clamp_min(0.0)


def self_certainty(
    logits: torch.Tensor,
    completion_ids: torch.Tensor,
    mask: torch.Tensor,
    temperature: float,
    *,
    shifted: bool = False,
) -> torch.Tensor:
    """s(r) per completion: the mean of `token_self_certainty` over the completion tokens selected by `mask`.

    Args:
        logits: `[B, L, V]`. By default the model's output over `prompt + completion` (or at least its last C+1
            positions, e.g. from `logits_to_keep=C + 1`); position L−C−1+k predicts completion token k and the last
            position is dropped. With `shifted=True`, `[B, C, V]` already aligned: row k predicts completion token k.
        completion_ids: `[B, C]` completion token ids (right-padded); only their shape is used: KL(U ‖ p) does not
            depend on which token was sampled.
        mask: `[B, C]` bool, True on the rationale's tokens (`rationale_token_masks`); False on padding.
        temperature: the sampling temperature; logits are divided by it first.

    Returns:
        `[B]` float32 (float64 for float64 logits); 0 for a completion whose mask is empty.
    """
    if logits.dim() != 3:
        raise ValueError(f"Expect logits of shape [batch, positions, vocab], actually: {tuple(logits.shape)}")
    if completion_ids.dim() != 2:
        raise ValueError(f"Expect completion_ids of shape [batch, completion], actually: {tuple(completion_ids.shape)}")
    batch, length = completion_ids.shape
    if tuple(mask.shape) != (batch, length):
        raise ValueError(f"Expect mask of shape {(batch, length)} like completion_ids, actually: {tuple(mask.shape)}")
    if logits.shape[0] != batch:
        raise ValueError(f"Expect logits for {batch} completions, actually: {logits.shape[0]}")
    if shifted:
        if logits.shape[1] != length:
            raise ValueError(f"Expect shifted logits with {length} positions (one per completion token), "
                             f"actually: {logits.shape[1]}")
        aligned = logits
    else:
        if logits.shape[1] < length + 1:
            raise ValueError(f"Expect logits over prompt + completion (at least {length + 1} positions), actually: "
                             f"{logits.shape[1]}; pass shifted=True for logits already aligned to completion tokens")
        aligned = logits[:, logits.shape[1] - length - 1 : logits.shape[1] - 1]
    mask = mask.to(device=logits.device, dtype=torch.bool)
    dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    rows, cols = mask.nonzero(as_tuple=True)
    per_token = token_self_certainty(aligned[rows, cols], temperature)  # only the rationale's positions
    total = torch.zeros(batch, dtype=dtype, device=logits.device).index_add(0, rows, per_token.to(dtype))
    count = mask.sum(dim=1)
    return torch.where(count > 0, total / count.clamp_min(1).to(dtype), torch.zeros_like(total))


# --------------------------------------------------------------------------------------------------------------------
# Where the rationale is


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WHITESPACE:
        i += 1
    return i


def _object_rationale(text: str, start: int) -> tuple[tuple[int, int, str] | None, int | None]:
    """Walk the JSON-ish object opening at `text[start] == "{"`. Returns the top-level `"rationale"` string value's
    (content start, content end, decoded value), if any, and where the object ends (None if it does not close)."""
    depth, i, n = 0, start, len(text)
    while i < n:
        char = text[i]
        if char == '"':
            try:
                key, end = scanstring(text, i + 1)
            except ValueError:
                return None, None  # unterminated or invalid string: nothing reliable after it
            colon = _skip_ws(text, end)
            if depth == 1 and colon < n and text[colon] == ":":  # a top-level key
                value_start = _skip_ws(text, colon + 1)
                if key == "rationale" and value_start < n and text[value_start] == '"':
                    try:
                        value, value_end = scanstring(text, value_start + 1)
                    except ValueError:
                        return None, None
                    return (value_start + 1, value_end - 1, value), value_end
                i = colon + 1
                continue
            i = end
            continue
        if char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return None, i + 1
        i += 1
    return None, None


def rationale_span(text: str, expected: str | None = None) -> tuple[int, int] | None:
    """Character span `[start, end)` of the rationale's string contents (inside the quotes, escapes as written) in
    the first JSON object of `text` with a top-level `"rationale"` string; None if there is none.

    With `expected` (the rationale `parse_step` returned), the first object whose decoded rationale equals it wins,
    so the span is the one the format check read.

    >>> text = 'Sure: {"rationale": "Too \\\\"pricey\\\\" for me.", "action": {"type": "terminate"}}'
    >>> start, end = rationale_span(text)
    >>> text[start:end]
    'Too \\\\"pricey\\\\" for me.'
    >>> rationale_span('{"action": {"type": "terminate", "rationale": "nested"}}') is None
    True
    """
    first: tuple[int, int] | None = None
    position, tried = text.find("{"), 0
    while position >= 0 and tried < MAX_OBJECTS:
        tried += 1
        found, end = _object_rationale(text, position)
        if found is not None:
            span = (found[0], found[1])
            if expected is None or found[2] == expected:
                return span
            first = first or span
        # a closed object's nested objects are not candidates; after an unclosed `{`, the next `{` may start one
        position = text.find("{", end if found is None and end is not None else position + 1)
    return None if expected is not None else first


def _decode(tokenizer: Any, ids: Sequence[int]) -> str:
    return tokenizer.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)


def _offsets_by_reencoding(tokenizer: Any, text: str, ids: list[int]) -> list[tuple[int, int]] | None:
    if not getattr(tokenizer, "is_fast", False):
        return None
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    if list(encoded["input_ids"]) != ids:
        return None  # the sampled ids are not the canonical tokenization of their text
    return [tuple(o) for o in encoded["offset_mapping"]]


def _offsets_by_prefix_decoding(tokenizer: Any, text: str, ids: list[int]) -> list[tuple[int, int]]:
    """Token k covers [end of the complete characters decoded from ids[:k], same for ids[:k+1]). A token holding only
    some bytes of a multi-byte character gets the empty span at that character."""
    offsets, previous = [], 0
    for k in range(1, len(ids) + 1):
        prefix = _decode(tokenizer, ids[:k])
        end = len(prefix)
        while end > previous and prefix[end - 1] == "\ufffd" and (end > len(text) or text[end - 1] != "\ufffd"):
            end -= 1  # an incomplete character at the end of the prefix
        end = min(max(end, previous), len(text))
        offsets.append((previous, end))
        previous = end
    return offsets


def rationale_token_mask(completion_text: str | None, completion_ids: Sequence[int] | torch.Tensor,
                         tokenizer: Any) -> torch.Tensor:
    """`[C]` bool: True on the completion tokens that overlap the rationale's characters.

    The ids are decoded (special tokens kept) and the rationale is found in that text, so the character offsets are
    the ids' own. Offsets come from the fast tokenizer's `return_offsets_mapping` on the decoded text when that
    re-encoding gives back the same ids, and from prefix decoding otherwise (sampled ids need not be canonical).
    A token holding part of a character is in the rationale when that character is.

    `completion_text` is the completion as the reward saw it (TRL decodes with `skip_special_tokens=True`); when it
    parses (`agent.policy.schema.parse_step`), its rationale picks the object. Pass None to take the first rationale.
    """
    ids = completion_ids.tolist() if isinstance(completion_ids, torch.Tensor) else [int(i) for i in completion_ids]
    mask = torch.zeros(len(ids), dtype=torch.bool)
    if not ids:
        return mask
    text = _decode(tokenizer, ids)
    expected = None
    if completion_text is not None:
        step = parse_step(completion_text)
        expected = step.rationale if isinstance(step, ShopperStep) else None
    span = rationale_span(text, expected)
    if span is None and expected is not None:
        span = rationale_span(text)
    if span is None or span[0] == span[1]:
        return mask
    start, end = span
    offsets = _offsets_by_reencoding(tokenizer, text, ids) or _offsets_by_prefix_decoding(tokenizer, text, ids)
    for k, (lo, hi) in enumerate(offsets):
        mask[k] = (lo < end and hi > start) if hi > lo else (start <= lo < end)
    return mask


def rationale_token_masks(completion_texts: Sequence[str | None], completion_ids: Sequence[Sequence[int]],
                          tokenizer: Any, length: int | None = None) -> torch.Tensor:
    """`[B, length]` bool rationale masks for a batch, right-padded with False (TRL's completion layout).

    `length` defaults to the longest completion.
    """
    if len(completion_texts) != len(completion_ids):
        raise ValueError(f"Expect one text per completion ({len(completion_ids)}), actually: {len(completion_texts)}")
    masks = [rationale_token_mask(t, ids, tokenizer) for t, ids in zip(completion_texts, completion_ids, strict=True)]
    width = max((len(m) for m in masks), default=0) if length is None else length
    out = torch.zeros(len(masks), width, dtype=torch.bool)
    for row, m in enumerate(masks):
        if len(m) > width:
            raise ValueError(f"Expect completions of at most {width} tokens, actually: {len(m)} (row {row})")
        out[row, : len(m)] = m
    return out


@torch.no_grad()
def policy_self_certainty(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    rationale_mask: torch.Tensor,
    temperature: float,
    *,
    batch_size: int | None = None,
) -> torch.Tensor:
    """s(r) per sequence from the policy itself: a gradient-free forward over `prompt + completion` in chunks.

    `input_ids`/`attention_mask` are `[B, P + C]` (TRL's `prompt_completion_ids`, left-padded prompts and
    right-padded completions), `rationale_mask` is `[B, C]`. The model is called with `logits_to_keep = C + 1`.
    """
    batch, length = rationale_mask.shape
    if input_ids.shape[0] != batch or input_ids.shape[1] < length + 1:
        raise ValueError(f"Expect input_ids [{batch}, > {length}] (prompt + completion), actually: "
                         f"{tuple(input_ids.shape)}")
    size = batch_size or batch
    scores = []
    for lo in range(0, batch, size):
        hi = min(lo + size, batch)
        out = model(input_ids=input_ids[lo:hi], attention_mask=attention_mask[lo:hi], logits_to_keep=length + 1)
        scores.append(self_certainty(out.logits, input_ids[lo:hi, -length:], rationale_mask[lo:hi], temperature))
    return torch.cat(scores)
