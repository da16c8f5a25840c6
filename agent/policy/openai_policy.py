"""A shopper policy served by any OpenAI-compatible Chat Completions server: vLLM, `shop-r1 serve-policy`, OpenAI.

Requests go out concurrently (at most `concurrency` in flight in total) and are balanced over the replicas in
`base_urls` by **least in flight**: each request goes to the replica with the fewest open requests, ties broken
round-robin, so sequential requests alternate and a slow replica gets less. A replica that refuses connections is
skipped for `replica_cooldown_s` and the request is tried once on another.

Retries: the openai client's own (`max_retries`, exponential backoff with jitter, honouring `Retry-After`) on
connection errors, timeouts, 408/409/429 and 5xx. What still fails becomes a `PolicyResponse` with `step=None` and
`error="server: ..."`; `act` never raises for one bad request.

With `structured` (the default), each request carries a page-exact JSON schema as `response_format`: a click's
`name` is an `enum` of the current page's clickable names and a type_and_submit's an `enum` of its text inputs
(`agent.policy.schema.page_names`, the same names the `local` policy's grammar allows). A server that enforces the
schema (vLLM's structured outputs, `shop-r1 serve-policy`) then only ever returns names that exist on the page.
`page_schema=False` sends the fixed schema with free-string names instead. `schema_field="structured_outputs"` sends
the same schema in vLLM's own request field (`{"structured_outputs": {"json": schema}}`, vLLM >= 0.12) instead of
OpenAI's `response_format`.

If the server rejects `response_format` (a 400/422 that mentions response_format, json_schema or guided/structured
decoding) the policy logs a warning, turns structured output off for good, and resends without it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import openai
from openai import AsyncOpenAI

from .base import Policy, PolicyRequest, PolicyResponse, offered_elements
from .engines import combine_seeds
from .persona import PersonaIntent
from .prompt import PromptConfig, PromptResult, approx_tokens, build_messages
from .schema import ParseError, page_names, parse_step, response_format

logger = logging.getLogger(__name__)

__all__ = ["OpenAIPolicy", "OpenAIPolicyConfig"]

_STRUCTURED_HINTS = ("response_format", "json_schema", "guided", "structured", "grammar")


def _default_api_key() -> str:
    return os.environ.get("OPENAI_API_KEY") or "EMPTY"


@dataclass(frozen=True)
class OpenAIPolicyConfig:
    """Where the model is served and how it is sampled."""

    base_urls: tuple[str, ...] = field(
        metadata={"help": "One or more replicas' base URLs, e.g. ('http://127.0.0.1:8001/v1',)."}
    )
    model: str = field(metadata={"help": "The served model name (vLLM: --served-model-name)."})
    api_key: str = field(
        default_factory=_default_api_key,
        metadata={"help": "Bearer token; from OPENAI_API_KEY when set, else 'EMPTY' (local servers ignore it)."},
    )
    temperature: float = field(default=0.6, metadata={"help": "Sampling temperature; 0.6 is the paper's (Shop-R1)."})
    top_p: float | None = field(default=None, metadata={"help": "Nucleus mass; None leaves the server's default."})
    max_tokens: int = field(
        default=256, metadata={"help": "Completion budget; a step is one short JSON object (~40-120 tokens)."}
    )
    timeout_s: float = field(default=60.0, metadata={"help": "Per-attempt HTTP timeout in seconds."})
    max_retries: int = field(
        default=2, metadata={"help": "Retries per request by the openai client, with exponential backoff."}
    )
    concurrency: int = field(default=8, metadata={"help": "Most requests in flight, over all replicas together."})
    structured: bool = field(
        default=True, metadata={"help": "Send agent.policy.schema.response_format() (JSON-schema guided decoding)."}
    )
    page_schema: bool = field(
        default=True,
        metadata={"help": "With structured: put the page's names in the schema as enums (page-valid by construction); "
                          "False sends the fixed schema with free-string names."},
    )
    skip_tried_clicks: bool = field(
        default=True,
        metadata={"help": "With page_schema: leave out of the schema every element already clicked on this very "
                          "page (`agent.policy.base.tried_clicks`), as the local policy does."},
    )
    schema_field: Literal["response_format", "structured_outputs"] = field(
        default="response_format",
        metadata={"help": "Where the schema goes: OpenAI's `response_format` json_schema (OpenAI, `serve-policy`, and "
                          "vLLM too), or vLLM's own `structured_outputs: {json: schema}` request field (vLLM >= "
                          "0.12, which removed `guided_json`); `serve-policy` honours both."},
    )
    schema_lengths: bool = field(
        default=False,
        metadata={"help": "Put minLength/maxLength in the schema: vLLM honours them, OpenAI strict mode rejects them."},
    )
    prompt: PromptConfig = field(default_factory=PromptConfig, metadata={"help": "Prompt layout and token budget."})
    seed: int | None = field(
        default=None,
        metadata={"help": "None: send no seed. An int: send a seed derived from (seed, request.seed, step)."},
    )
    tokenizer: str | None = field(
        default=None,
        metadata={"help": "A local tokenizer directory for exact prompt token counts; None: ~3.5 chars per token."},
    )
    replica_cooldown_s: float = field(
        default=10.0, metadata={"help": "How long a replica that refused a connection is skipped."}
    )

    def __post_init__(self) -> None:
        if isinstance(self.base_urls, str):
            object.__setattr__(self, "base_urls", (self.base_urls,))
        object.__setattr__(self, "base_urls", tuple(u.rstrip("/") for u in self.base_urls))
        if not self.base_urls:
            raise ValueError("Expect at least one base URL, actually: none")
        if not self.model:
            raise ValueError("Expect a model name, actually: empty")
        if self.temperature < 0 or self.max_tokens < 1 or self.concurrency < 1 or self.max_retries < 0:
            raise ValueError(
                f"Expect temperature >= 0, max_tokens >= 1, concurrency >= 1, max_retries >= 0, actually: "
                f"{self.temperature}, {self.max_tokens}, {self.concurrency}, {self.max_retries}"
            )
        if self.timeout_s <= 0:
            raise ValueError(f"Expect timeout_s > 0, actually: {self.timeout_s}")


@dataclass
class _Replica:
    base_url: str
    client: AsyncOpenAI
    in_flight: int = 0
    requests: int = 0
    failures: int = 0
    down_until: float = 0.0


class OpenAIPolicy(Policy):
    """Concurrent chat completions over one or more replicas; outputs parsed with `parse_step`."""

    name = "openai"

    def __init__(self, config: OpenAIPolicyConfig) -> None:
        self.config = config
        self.max_batch = config.concurrency  # a Batcher batch waits for its slowest request: keep it one wave
        self._replicas = [
            _Replica(url, AsyncOpenAI(base_url=url, api_key=config.api_key, timeout=config.timeout_s,
                                      max_retries=config.max_retries))
            for url in config.base_urls
        ]
        self._turn = itertools.count()
        self._semaphore = asyncio.Semaphore(config.concurrency)
        self._structured = config.structured
        self._count_tokens: Callable[[str], int] = approx_tokens
        if config.tokenizer is not None:
            from .engines import encode_plain, load_tokenizer

            tok = load_tokenizer(config.tokenizer)
            self._count_tokens = lambda text: len(encode_plain(tok, text))
        self._closed = False

    @property
    def structured(self) -> bool:
        """Whether `response_format` is still sent (False after a server rejected it)."""
        return self._structured

    def describe(self) -> dict[str, Any]:
        config = dataclasses.asdict(self.config)
        config.pop("api_key")
        config["prompt"] = dataclasses.asdict(self.config.prompt)
        config["structured"] = self._structured
        return {"name": self.name, **config,
                "replicas": {r.base_url: {"requests": r.requests, "failures": r.failures} for r in self._replicas}}

    # ---------------------------------------------------------------------------------------------------------------

    def _pick(self, exclude: _Replica | None = None) -> _Replica:
        now = time.monotonic()
        candidates = [r for r in self._replicas if r is not exclude and r.down_until <= now]
        if not candidates:
            candidates = [r for r in self._replicas if r is not exclude] or self._replicas
        turn = next(self._turn)
        n = len(self._replicas)
        # least in flight; among equals, the one whose index comes next after this turn's position
        return min(candidates, key=lambda r: (r.in_flight, (self._replicas.index(r) - turn) % n))

    def _messages(self, request: PolicyRequest) -> PromptResult:
        persona_intent = PersonaIntent(persona=request.persona, intent=request.intent)
        return build_messages(persona_intent, request.history, request.observation.url, request.observation.html,
                              self.config.prompt, count_tokens=self._count_tokens)

    def _body(self, messages: list[dict[str, str]], request: PolicyRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.config.model, "messages": messages,
                                "temperature": self.config.temperature, "max_tokens": self.config.max_tokens}
        if self.config.top_p is not None:
            body["top_p"] = self.config.top_p
        if self.config.seed is not None:
            body["seed"] = combine_seeds(self.config.seed, request.seed, request.step) % (2**31)
        if self._structured:
            if self.config.page_schema:
                clickable, inputs = page_names(offered_elements(request, self.config.skip_tried_clicks))
                fmt = response_format(lengths=self.config.schema_lengths, clickable=clickable, inputs=inputs)
            else:
                fmt = response_format(lengths=self.config.schema_lengths)
            if self.config.schema_field == "structured_outputs":
                body["extra_body"] = {"structured_outputs": {"json": fmt["json_schema"]["schema"]}}
            else:
                body["response_format"] = fmt
        return body

    async def _complete(self, body: dict[str, Any]) -> Any:
        replica = self._pick()
        try:
            return await self._send(replica, body)
        except openai.APIConnectionError as exc:
            if isinstance(exc, openai.APITimeoutError) or len(self._replicas) == 1:
                raise
            replica.down_until = time.monotonic() + self.config.replica_cooldown_s
            other = self._pick(exclude=replica)
            logger.warning("%s unreachable (%s); skipping it for %.0fs, retrying on %s", replica.base_url, exc,
                           self.config.replica_cooldown_s, other.base_url)
            return await self._send(other, body)

    async def _send(self, replica: _Replica, body: dict[str, Any]) -> Any:
        replica.in_flight += 1
        replica.requests += 1
        try:
            return await replica.client.chat.completions.create(**body)
        except openai.APIError:
            replica.failures += 1
            raise
        finally:
            replica.in_flight -= 1

    async def _one(self, request: PolicyRequest) -> PolicyResponse:
        # With a real tokenizer, fitting a long page takes many encodes: keep them off the event loop.
        result = await asyncio.to_thread(self._messages, request) if self.config.tokenizer else self._messages(request)
        prompt_info = {"dropped": result.dropped, "truncated_current": result.truncated_current,
                       "tokens": result.tokens}
        async with self._semaphore:
            body = self._body(result.messages, request)
            try:
                try:
                    response = await self._complete(body)
                except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                    if not ({"response_format", "extra_body"} & set(body)) or not _mentions_structured(exc):
                        raise
                    if self._structured:  # the first rejection says so; concurrent ones just resend
                        self._structured = False
                        logger.warning("the server rejected %s (%s); sending requests without structured output "
                                       "from now on", self.config.schema_field, _describe_error(exc))
                    body = {k: v for k, v in body.items() if k not in ("response_format", "extra_body")}
                    response = await self._complete(body)
            except openai.APIError as exc:
                return PolicyResponse(step=None, error=f"server: {_describe_error(exc)}", prompt=prompt_info)
        if not response.choices:
            return PolicyResponse(step=None, error="server: Expect one choice, actually: none", prompt=prompt_info,
                                  usage=_usage(response))
        choice = response.choices[0]
        raw = choice.message.content or ""
        parsed = parse_step(raw)
        if isinstance(parsed, ParseError):
            error = str(parsed)
            if choice.finish_reason == "length":
                error += f" (hit max_tokens={self.config.max_tokens})"
            return PolicyResponse(step=None, raw=raw, error=error, prompt=prompt_info, usage=_usage(response))
        return PolicyResponse(step=parsed, raw=raw, prompt=prompt_info, usage=_usage(response))

    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        if self._closed:
            raise RuntimeError("Expect an open OpenAIPolicy, actually: act() after close()")
        return list(await asyncio.gather(*(self._one(r) for r in requests)))

    async def close(self) -> None:
        """Close the HTTP clients; calling it twice is harmless."""
        if self._closed:
            return
        self._closed = True
        for replica in self._replicas:
            await replica.client.close()


def _mentions_structured(exc: openai.APIStatusError) -> bool:
    text = f"{exc.message} {exc.body}".lower()
    return any(hint in text for hint in _STRUCTURED_HINTS)


def _describe_error(exc: openai.APIError) -> str:
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code} {type(exc).__name__}: {exc.message}"
    return f"{type(exc).__name__}: {exc.message}"


def _usage(response: Any) -> dict[str, int]:
    usage = getattr(response, "usage", None)
    if usage is None:
        return {}
    keys = ("prompt_tokens", "completion_tokens", "total_tokens")
    return {k: int(getattr(usage, k)) for k in keys if isinstance(getattr(usage, k, None), int)}
