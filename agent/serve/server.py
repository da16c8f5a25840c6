"""An OpenAI-compatible Chat Completions server over a local transformers model, batching concurrent requests.

`POST /v1/chat/completions` requests go into an asyncio queue; a batching loop gathers up to `max_batch` of them
(waiting at most `batch_wait_ms` for more once one arrives) and runs them as one `generate` in a worker thread. While
a batch generates, new requests queue up and form the next batch.

Supported: `messages` (text content), `temperature` (default 1.0, as OpenAI), `top_p`, `max_tokens` /
`max_completion_tokens`, `n=1`, `seed`, `stop`, `response_format`. `response_format` is accepted (`text`,
`json_object`, `json_schema`); the shopper-step schema (`agent.policy.schema.response_format`, name `shopper_step`) is
enforced while decoding with `agent.policy.grammar.ActionGrammar`: names are the `enum`s the schema lists (a page-exact
schema, as the `openai` policy sends), or any non-blank name where it lists none. vLLM's own field,
`structured_outputs: {"json": schema}`, is honoured the same way. Other formats are only checked
after generation. The verdict (constrained or not, valid or not, checked
with `parse_step` or as JSON) is returned in the extra response field `shop_r1.structured`. Streaming, tools,
logprobs and `n > 1` are not supported. Bad request bodies get a 400 in OpenAI's error shape
(`{"error": {"message", "type", "param", "code"}}`), never a 500.

Also `GET /v1/models`, `GET /health` and `GET /stats` (batch sizes, response formats seen).

`create_policy_app` builds the ASGI app; `agent.wiring.PolicyServer` serves it in a thread and `shop-r1
serve-policy` in the foreground.

>>> from agent.wiring import PolicyServer
>>> with PolicyServer("runs/sft/final") as server:  # doctest: +SKIP
...     client = AsyncOpenAI(base_url=server.base_url, api_key="x")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent.policy.engines import Completion, GenerationRequest, LocalEngine
from agent.policy.grammar import ActionGrammar
from agent.policy.schema import ParseError, page_names_from_schema, parse_step

logger = logging.getLogger(__name__)

__all__ = ["ChatCompletionRequest", "ServerStats", "create_policy_app"]

SHOPPER_SCHEMA_NAME = "shopper_step"


# --------------------------------------------------------------------------------------------------------------------
# Request bodies


class _TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """One message; `content` is a string or a list of text parts (images are not supported)."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[_TextPart]

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class JsonSchemaSpec(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: str = Field(min_length=1, max_length=64)
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None
    description: str | None = None


class ResponseFormat(BaseModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None

    def label(self) -> str:
        if self.type == "json_schema" and self.json_schema is not None:
            return f"json_schema:{self.json_schema.name}"
        return self.type


class StructuredOutputs(BaseModel):
    """vLLM's request field (`{"structured_outputs": {"json": schema}}`); only `json` is honoured."""

    model_config = ConfigDict(extra="allow")

    json_: dict[str, Any] | None = Field(default=None, alias="json")


class ChatCompletionRequest(BaseModel):
    """The subset of OpenAI's chat completion request that this server honours; unknown fields are ignored."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool | None = None
    response_format: ResponseFormat | None = None
    structured_outputs: StructuredOutputs | None = None

    @field_validator("n")
    @classmethod
    def _one(cls, value: int | None) -> int | None:
        if value is not None and value != 1:
            raise ValueError(f"Expect n=1 (one completion per request), actually: {value}")
        return value

    @field_validator("stream")
    @classmethod
    def _no_stream(cls, value: bool | None) -> bool | None:
        if value:
            raise ValueError("Expect stream=false (streaming is not supported), actually: true")
        return value

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 16:
            raise ValueError(f"Expect at most 16 stop strings, actually: {len(value)}")
        return value

    def stop_strings(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        stops = [self.stop] if isinstance(self.stop, str) else self.stop
        return tuple(s for s in stops if s)


# --------------------------------------------------------------------------------------------------------------------
# Errors in OpenAI's shape


class APIError(Exception):
    """An error answered as `{"error": {...}}` with `status`."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code


def _error_response(status: int, message: str, type: str = "invalid_request_error", param: str | None = None,
                    code: str | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return _error_response(exc.status, exc.message, exc.type, exc.param, exc.code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        param = ".".join(loc) or None
        if first.get("type") == "json_invalid":
            message = f"Expect a JSON request body, actually: invalid JSON ({first.get('msg', '')})"
            param = None
        else:
            parts = [f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg', '')}"
                     for e in errors[:3]]
            message = "; ".join(parts)
        return _error_response(400, message, param=param, code="invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return _error_response(exc.status_code, str(exc.detail), kind)

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("internal error")
        return _error_response(500, f"internal error: {type(exc).__name__}: {exc}", "server_error")


# --------------------------------------------------------------------------------------------------------------------
# Batching


@dataclass
class ServerStats:
    """What the server saw. `batch_sizes` and `latencies_s` keep the most recent `RECENT`; the counts are totals."""

    RECENT = 4096

    requests: int = 0
    batches: int = 0
    max_batch_size: int = 0
    batch_sizes: deque[int] = field(default_factory=lambda: deque(maxlen=ServerStats.RECENT))
    latencies_s: deque[float] = field(default_factory=lambda: deque(maxlen=ServerStats.RECENT))
    response_formats: Counter[str] = field(default_factory=Counter)
    structured_valid: int = 0
    structured_invalid: int = 0
    page_schemas: int = 0

    def record_batch(self, size: int) -> None:
        self.batches += 1
        self.max_batch_size = max(self.max_batch_size, size)
        self.batch_sizes.append(size)

    def as_dict(self) -> dict[str, Any]:
        lat = sorted(self.latencies_s)
        recent = list(self.batch_sizes)
        return {
            "requests": self.requests,
            "batches": self.batches,
            "max_batch_size": self.max_batch_size,
            "mean_batch_size_recent": round(sum(recent) / len(recent), 2) if recent else 0.0,
            "response_formats": dict(self.response_formats),
            "structured_valid": self.structured_valid,
            "structured_invalid": self.structured_invalid,
            "page_schemas": self.page_schemas,
            "latency_p50_s_recent": round(lat[len(lat) // 2], 4) if lat else None,
            "latency_p90_s_recent": round(lat[int(len(lat) * 0.9)], 4) if lat else None,
        }


@dataclass
class _Pending:
    request: GenerationRequest
    future: asyncio.Future[tuple[Completion, int]]


LENGTH_SPREAD = 2  # a batch holds requests whose max_new_tokens are within this factor of its shortest one
MAX_PASSED_OVER = 4  # a request left out of this many batches goes into the next one whatever its length


class _BatchLoop:
    """Gathers queued generation requests into batches of at most `max_batch`, one `generate` at a time.

    A batch runs until its longest request is done, so a 16-token request batched with an 8,000-token one waits for
    the 8,000. Batches are therefore grouped by requested length: the shortest waiting request picks the batch, and
    only requests asking for at most LENGTH_SPREAD times as many tokens join it; the rest wait (at most
    MAX_PASSED_OVER batches, so long requests are not starved).
    """

    def __init__(self, engine: LocalEngine, max_batch: int, wait_s: float, stats: ServerStats) -> None:
        self.engine, self.max_batch, self.wait_s, self.stats = engine, max_batch, wait_s, stats
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self._waiting: list[_Pending] = []  # gathered but left out of a batch, oldest first
        self._passed: dict[int, int] = {}  # id(pending) -> batches it was left out of

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="policy-batch-loop")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        while not self.queue.empty():
            pending = self.queue.get_nowait()
            if not pending.future.done():
                pending.future.set_exception(APIError(503, "the server is shutting down", "server_error"))

    async def submit(self, request: GenerationRequest) -> tuple[Completion, int]:
        future: asyncio.Future[tuple[Completion, int]] = asyncio.get_running_loop().create_future()
        await self.queue.put(_Pending(request, future))
        return await future

    async def _gather(self) -> list[_Pending]:
        pool = self._waiting or [await self.queue.get()]
        self._waiting = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        while len(pool) < 4 * self.max_batch:
            remaining = deadline - loop.time()
            try:
                item = self.queue.get_nowait() if remaining <= 0 else await asyncio.wait_for(self.queue.get(),
                                                                                             remaining)
            except (asyncio.QueueEmpty, TimeoutError):
                break
            pool.append(item)
        pool = [p for p in pool if not p.future.done()]  # a client that went away needs no generate
        batch, self._waiting = self._pick(pool)
        return batch

    def _pick(self, pool: list[_Pending]) -> tuple[list[_Pending], list[_Pending]]:
        """Split `pool` (oldest first) into this batch and those that wait for a later one."""
        due = [p for p in pool if self._passed.get(id(p), 0) >= MAX_PASSED_OVER]
        rest = sorted((p for p in pool if p not in due), key=lambda p: p.request.max_new_tokens)
        if rest:
            ceiling = max(LENGTH_SPREAD * rest[0].request.max_new_tokens,
                          max((p.request.max_new_tokens for p in due), default=0))
            rest = [p for p in rest if p.request.max_new_tokens <= ceiling]
        batch = (due + rest)[: self.max_batch]
        chosen = {id(p) for p in batch}
        left = [p for p in pool if id(p) not in chosen]
        for p in batch:
            self._passed.pop(id(p), None)
        for p in left:
            self._passed[id(p)] = self._passed.get(id(p), 0) + 1
        return batch, left

    async def _run(self) -> None:
        while True:
            batch = await self._gather()
            if not batch:
                continue
            self.stats.record_batch(len(batch))
            try:
                completions = await asyncio.to_thread(self.engine.generate, [p.request for p in batch])
            except Exception as exc:  # a failed generate fails its batch, not the server
                logger.exception("generate failed for a batch of %d", len(batch))
                error = APIError(500, f"generation failed: {type(exc).__name__}: {exc}", "server_error")
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(error)
                continue
            for p, completion in zip(batch, completions, strict=True):
                if not p.future.done():
                    p.future.set_result((completion, len(batch)))


# --------------------------------------------------------------------------------------------------------------------
# The app


def _from_structured_outputs(schema: dict[str, Any]) -> ResponseFormat:
    """vLLM's `structured_outputs.json` as the `response_format` it means: the shopper-step schema when it has that
    shape (enforced with the page's names, as `response_format` is), any other JSON schema otherwise."""
    try:
        page_names_from_schema(schema)
        name = SHOPPER_SCHEMA_NAME
    except ValueError:
        name = "structured_outputs"
    return ResponseFormat(type="json_schema", json_schema=JsonSchemaSpec(name=name, schema=schema))


def _is_shopper_schema(fmt: ResponseFormat | None) -> bool:
    return (fmt is not None and fmt.type == "json_schema" and fmt.json_schema is not None
            and fmt.json_schema.name == SHOPPER_SCHEMA_NAME)


def _shopper_grammar(fmt: ResponseFormat | None) -> ActionGrammar | None:
    """The grammar that enforces a shopper-step `response_format`: the names its schema lists as `enum`s (None for
    other formats). A shopper_step schema of another shape is a 400."""
    if not _is_shopper_schema(fmt):
        return None
    assert fmt is not None and fmt.json_schema is not None
    if fmt.json_schema.json_schema is None:
        return ActionGrammar()
    try:
        clickable, inputs = page_names_from_schema(fmt.json_schema.json_schema)
    except ValueError as exc:
        raise APIError(400, str(exc), param="response_format.json_schema.schema") from None
    return ActionGrammar(clickable=clickable, inputs=inputs)


def _name_error(step: Any, grammar: ActionGrammar | None) -> str | None:
    """Why a parsed step's name is not one the schema allows (None when it is, or when names are free)."""
    action = step.action
    if grammar is None or action.type == "terminate":
        return None
    allowed = grammar.clickable if action.type == "click" else grammar.inputs
    if allowed is None or action.name in allowed:
        return None
    return f"Expect a {action.type} name from the schema's enum, actually: {action.name!r}"


def _structured_verdict(fmt: ResponseFormat | None, text: str, grammar: ActionGrammar | None = None
                        ) -> dict[str, Any] | None:
    """The output checked against the requested format (`constrained`: whether decoding enforced it)."""
    if fmt is None or fmt.type == "text":
        return None
    verdict: dict[str, Any] = {"response_format": fmt.label(), "constrained": grammar is not None}
    if _is_shopper_schema(fmt):
        parsed = parse_step(text)
        error = str(parsed) if isinstance(parsed, ParseError) else _name_error(parsed, grammar)
        verdict.update(valid=error is None, error=error, checked=SHOPPER_SCHEMA_NAME)
        return verdict
    try:
        json.loads(text)
        verdict.update(valid=True, error=None, checked="json")
    except ValueError as exc:
        verdict.update(valid=False, error=f"invalid JSON: {exc}", checked="json")
    return verdict


def create_policy_app(
    model_dir: str | Path | None = None,
    *,
    engine: LocalEngine | None = None,
    served_model_name: str | None = None,
    max_batch: int = 8,
    batch_wait_ms: float = 5.0,
    device: str = "auto",
    dtype: str = "auto",
    default_max_tokens: int = 512,
    max_tokens_cap: int = 2048,
    max_prompt_bytes: int = 1_000_000,
) -> FastAPI:
    """The FastAPI app. Pass a loaded `engine` to share a model; otherwise it is loaded from `model_dir` at start-up.

    `default_max_tokens` caps completions of requests that give no `max_tokens` (OpenAI would run to the context
    limit, which a shopper step never needs). `max_tokens_cap` is the most any request may ask for (more is a 400), and
    `max_prompt_bytes` the most UTF-8 bytes of message text a request may send (more is a 413, before any tokenizing).
    """
    if min(default_max_tokens, max_tokens_cap, max_prompt_bytes) < 1:
        raise ValueError(f"Expect default_max_tokens, max_tokens_cap and max_prompt_bytes >= 1, actually: "
                         f"{default_max_tokens}, {max_tokens_cap}, {max_prompt_bytes}")
    default_max_tokens = min(default_max_tokens, max_tokens_cap)
    if engine is None and model_dir is None:
        raise ValueError("Expect model_dir or engine, actually: neither")
    if max_batch < 1:
        raise ValueError(f"Expect max_batch >= 1, actually: {max_batch}")
    name = served_model_name or (engine.name if engine is not None else Path(str(model_dir)).resolve().name)
    stats = ServerStats()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal engine
        if engine is None:
            engine = await asyncio.to_thread(LocalEngine.from_pretrained, str(model_dir), device, dtype, name)
        app.state.engine = engine
        app.state.batcher = _BatchLoop(engine, max_batch, batch_wait_ms / 1000, stats)
        app.state.batcher.start()
        logger.info("serving %s as %r (max batch %d)", model_dir or engine.name, name, max_batch)
        try:
            yield
        finally:
            await app.state.batcher.stop()

    app = FastAPI(title="shop-r1 policy server", lifespan=lifespan)
    app.state.stats = stats
    app.state.model_name = name
    _install_error_handlers(app)
    created = int(time.time())

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/stats")
    async def get_stats(request: Request) -> dict[str, Any]:
        return {"server": stats.as_dict(), "engine": request.app.state.engine.stats.as_dict()}

    @app.get("/v1/models")
    async def list_models(request: Request) -> dict[str, Any]:
        eng: LocalEngine = request.app.state.engine
        return {"object": "list", "data": [{"id": name, "object": "model", "created": created,
                                            "owned_by": "shop-r1", "max_model_len": eng.max_length}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> dict[str, Any]:
        started = time.perf_counter()
        eng: LocalEngine = request.app.state.engine
        if body.model is not None and body.model not in (name, str(model_dir)):
            raise APIError(404, f"The model `{body.model}` does not exist; this server serves `{name}`.",
                           "not_found_error", "model", "model_not_found")
        if body.response_format is None and body.structured_outputs is not None and body.structured_outputs.json_:
            body.response_format = _from_structured_outputs(body.structured_outputs.json_)
        if body.response_format is not None:
            if body.response_format.type == "json_schema" and body.response_format.json_schema is None:
                raise APIError(400, "Expect response_format.json_schema with type json_schema, actually: missing",
                               param="response_format.json_schema")
            stats.response_formats[body.response_format.label()] += 1
        grammar = _shopper_grammar(body.response_format)
        if grammar is not None and (grammar.clickable is not None or grammar.inputs is not None):
            stats.page_schemas += 1
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                    for m in body.messages]
        size = sum(len(m["content"].encode("utf-8", "replace")) for m in messages)
        if size > max_prompt_bytes:
            raise APIError(413, f"Expect at most {max_prompt_bytes:,} bytes of message text, actually: {size:,}",
                           param="messages", code="prompt_too_large")
        requested = body.max_completion_tokens or body.max_tokens
        if requested is not None and requested > max_tokens_cap:
            raise APIError(400, f"Expect max_tokens at most {max_tokens_cap} on this server, actually: {requested}",
                           param="max_tokens")
        try:
            prompt = await asyncio.to_thread(eng.chat_prompt, messages)
            ids = await asyncio.to_thread(eng.encode, prompt)
        except Exception as exc:  # a template that rejects the conversation (roles out of order, ...)
            raise APIError(400, f"Expect messages the chat template accepts, actually: {exc}", param="messages")\
                from None
        limit = eng.max_length
        if limit is not None and len(ids) + (requested or 1) > limit:
            raise APIError(400, f"This model's maximum context length is {limit} tokens. However, you requested "
                                f"{len(ids) + (requested or 0)} tokens ({len(ids)} in the messages, {requested or 0} "
                                "in the completion).", param="messages", code="context_length_exceeded")
        max_new = requested or default_max_tokens
        if limit is not None:
            max_new = min(max_new, limit - len(ids))
        temperature = 1.0 if body.temperature is None else body.temperature
        gen = GenerationRequest(prompt_ids=tuple(ids), max_new_tokens=max_new, temperature=temperature,
                                top_p=1.0 if body.top_p is None else body.top_p, seed=body.seed,
                                stop=body.stop_strings(), grammar=grammar)
        stats.requests += 1
        completion, batch_size = await request.app.state.batcher.submit(gen)
        verdict = _structured_verdict(body.response_format, completion.text, grammar)
        if verdict is not None and verdict["checked"] == SHOPPER_SCHEMA_NAME:
            if verdict["valid"]:
                stats.structured_valid += 1
            else:
                stats.structured_invalid += 1
        stats.latencies_s.append(time.perf_counter() - started)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": completion.text},
                         "finish_reason": completion.finish_reason, "logprobs": None}],
            "usage": {"prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens,
                      "total_tokens": completion.prompt_tokens + completion.completion_tokens},
            "system_fingerprint": None,
            "shop_r1": {"batch_size": batch_size, "structured": verdict},
        }

    return app
