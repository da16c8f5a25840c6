"""A shopper policy backed by a transformers causal LM in this process: one `generate` per batch of sessions.

The blocking `generate` runs in a worker thread (`asyncio.to_thread`) so browser sessions keep running on the event
loop while the model thinks; an asyncio lock keeps it to one generate at a time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .base import Policy, PolicyRequest, PolicyResponse, offered_elements
from .engines import Completion, GenerationRequest, LocalEngine, combine_seeds
from .grammar import grammar_for_elements
from .persona import PersonaIntent
from .prompt import PromptConfig, PromptResult, build_messages, load_prompt_config
from .schema import ParseError, parse_step

logger = logging.getLogger(__name__)

__all__ = ["LocalPolicy", "LocalPolicyConfig"]


@dataclass(frozen=True)
class LocalPolicyConfig:
    """How a local model is loaded and sampled."""

    model_dir: str = field(metadata={"help": "A directory written by `save_pretrained` (model and tokenizer)."})
    device: str = field(default="auto", metadata={"help": "'auto' (CUDA when available), 'cpu' or 'cuda'."})
    dtype: str = field(default="auto", metadata={"help": "'auto': bf16 on GPU, fp32 on CPU; or bf16/fp16/fp32."})
    temperature: float = field(
        default=0.6, metadata={"help": "Sampling temperature; 0 is greedy. 0.6 is the paper's (Shop-R1, sec. RL)."}
    )
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass; 1.0 keeps the whole distribution."})
    max_new_tokens: int = field(
        default=256, metadata={"help": "Completion budget; a step is one short JSON object (~40-120 tokens)."}
    )
    max_batch: int = field(default=8, metadata={"help": "Most requests per `generate` call."})
    seed: int | None = field(
        default=None,
        metadata={"help": "Base seed mixed with each request's (seed, step); None: the requests' seeds alone."},
    )
    prompt: PromptConfig | None = field(
        default=None,
        metadata={"help": "Prompt layout and token budget. None: the one the model was trained with "
                          "(`shop_r1_prompt.json` in model_dir), else `PromptConfig()`."},
    )
    structured: bool = field(
        default=True,
        metadata={"help": "Constrain decoding to the step JSON with names drawn from the page (agent.policy.grammar): "
                          "the local counterpart of vLLM structured outputs. False: the model's raw output."},
    )
    skip_tried_clicks: bool = field(
        default=True,
        metadata={"help": "With `structured`: leave out of the grammar every element already clicked on this very "
                          "page (`tried_clicks`: same URL and HTML), so a shopper cannot go round in circles."},
    )

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"Expect temperature >= 0, actually: {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"Expect 0 < top_p <= 1, actually: {self.top_p}")
        if self.max_new_tokens < 1 or self.max_batch < 1:
            raise ValueError(
                f"Expect max_new_tokens >= 1 and max_batch >= 1, actually: {self.max_new_tokens}, {self.max_batch}"
            )


class LocalPolicy(Policy):
    """Batches all pending requests into one `generate`, parses each completion with `parse_step`.

    Pass `engine` to share a loaded model (tests, the server); otherwise it is loaded from `config.model_dir`.
    Requests whose prompt cannot fit the model's context get an error response and are not generated.
    """

    name = "local"
    serial = True  # one generate at a time (`_generate_lock`)

    def __init__(self, config: LocalPolicyConfig, engine: LocalEngine | None = None) -> None:
        self.config = config
        self.max_batch = config.max_batch
        self._owns_engine = engine is None
        self.engine = engine or LocalEngine.from_pretrained(config.model_dir, config.device, config.dtype)
        self._device = str(self.engine.device)
        self.prompt = config.prompt or load_prompt_config(config.model_dir) or PromptConfig()
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def describe(self) -> dict[str, Any]:
        config = dataclasses.asdict(self.config)
        config["prompt"] = dataclasses.asdict(self.prompt)
        return {"name": self.name, "model": Path(self.config.model_dir).name, **config,
                "resolved_device": self._device}

    def _messages(self, request: PolicyRequest) -> PromptResult:
        persona_intent = PersonaIntent(persona=request.persona, intent=request.intent)
        return build_messages(persona_intent, request.history, request.observation.url, request.observation.html,
                              self.prompt, count_tokens=self.engine.count_tokens)

    def _seed(self, request: PolicyRequest) -> int:
        return combine_seeds(self.config.seed, request.seed, request.step)

    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        if self._closed:
            raise RuntimeError("Expect an open LocalPolicy, actually: act() after close()")
        # Prompt building tokenizes whole pages (many times when a page must be cut): off the event loop too.
        responses, pending = await asyncio.to_thread(self._prepare, requests)
        for start in range(0, len(pending), self.max_batch):
            chunk = pending[start:start + self.max_batch]
            async with self._generate_lock():
                completions = await asyncio.to_thread(self.engine.generate, [gen for _, gen, _ in chunk])
            for (i, _, prompt_info), completion in zip(chunk, completions, strict=True):
                responses[i] = self._response(completion, prompt_info)
        return [r for r in responses if r is not None]

    def _generate_lock(self) -> asyncio.Lock:
        """One generate at a time per event loop: a policy may serve several `asyncio.run` calls in turn (an asyncio
        lock belongs to the loop it was first awaited on)."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    def _prepare(self, requests: Sequence[PolicyRequest]) -> tuple[list[PolicyResponse | None],
                                                                   list[tuple[int, GenerationRequest, dict[str, Any]]]]:
        """Prompts for every request: generation requests, or error responses for prompts that cannot fit."""
        responses: list[PolicyResponse | None] = [None] * len(requests)
        pending: list[tuple[int, GenerationRequest, dict[str, Any]]] = []
        for i, request in enumerate(requests):
            result = self._messages(request)
            prompt_info = {"dropped": result.dropped, "truncated_current": result.truncated_current,
                           "tokens": result.tokens}
            ids = self.engine.encode(self.engine.chat_prompt(result.messages))
            limit = self.engine.max_length
            if limit is not None and len(ids) + self.config.max_new_tokens > limit:
                responses[i] = PolicyResponse(
                    step=None, prompt=prompt_info, usage={"prompt_tokens": len(ids)},
                    error=f"prompt: Expect at most {limit - self.config.max_new_tokens} prompt tokens "
                          f"(model context {limit} - max_new_tokens {self.config.max_new_tokens}), actually: "
                          f"{len(ids)}; lower PromptConfig.max_context_tokens",
                )
                continue
            grammar = None
            if self.config.structured:
                grammar = grammar_for_elements(offered_elements(request, self.config.skip_tried_clicks))
            gen = GenerationRequest(prompt_ids=tuple(ids), max_new_tokens=self.config.max_new_tokens,
                                    temperature=self.config.temperature, top_p=self.config.top_p,
                                    seed=self._seed(request), grammar=grammar)
            pending.append((i, gen, prompt_info))
        return responses, pending

    def _response(self, completion: Completion, prompt_info: dict[str, Any]) -> PolicyResponse:
        usage = {"prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens,
                 "total_tokens": completion.prompt_tokens + completion.completion_tokens}
        parsed = parse_step(completion.text)
        if isinstance(parsed, ParseError):
            error = str(parsed)
            if completion.finish_reason == "length":
                error += f" (hit max_new_tokens={self.config.max_new_tokens})"
            return PolicyResponse(step=None, raw=completion.text, error=error, prompt=prompt_info, usage=usage)
        return PolicyResponse(step=parsed, raw=completion.text, prompt=prompt_info, usage=usage)

    async def close(self) -> None:
        """Free a model this policy loaded itself (a shared engine is left alone); calling it twice is harmless."""
        if self._closed:
            return
        self._closed = True
        if self._owns_engine:
            import torch

            self.engine.model = None  # the only reference: its memory goes now
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
