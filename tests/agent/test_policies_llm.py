"""LLM-backed policies: the tokenizer loader, `LocalPolicy` on a tiny model, and `OpenAIPolicy` against real servers.

The tiny model is random: its outputs are garbage, so these tests check plumbing (one generate per batch, errors as
values, retries, balancing), never the quality of a step.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from tiny_model import build_tiny_model, build_tokenizer, cached_tiny_model

from agent.policy.base import Batcher, PolicyRequest, PolicyResponse
from agent.policy.engines import GenerationRequest, LocalEngine, load_tokenizer
from agent.policy.local import LocalPolicy, LocalPolicyConfig
from agent.policy.openai_policy import OpenAIPolicy, OpenAIPolicyConfig
from agent.policy.persona import Intent, Persona, PersonaIntent
from agent.policy.prompt import HistoryItem, PromptConfig, build_messages
from agent.policy.schema import ShopperStep
from agent.wiring import PolicyServer
from envs.actions import Click
from envs.observation import ElementRef, Observation
from sites.serving import bind as _bind

PAGE = ("<nav><a name='nav_bar.homepage'>Home</a></nav><input name='search_input'/>"
        "<ul><li><a name='search_results.acme_boots.product_title'>Acme boots</a> $89.00</li></ul>")
VALID_STEP = json.dumps({"rationale": "I'll leave.", "action": {"type": "terminate"}})


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_tiny_model(tmp_path_factory)


def make_request(i: int = 0, *, html: str = PAGE, steps: int = 1, seed: int = 0) -> PolicyRequest:
    history = tuple(
        HistoryItem(f"http://shop/p{k}", PAGE, Click(name="nav_bar.homepage"), f"Step {k}, going home.")
        for k in range(steps)
    )
    return PolicyRequest(
        session_id=f"s{i}",
        persona=Persona(persona_id=f"p{i}", name="Dana", description="Dana likes boots."),
        intent=Intent(text="I need hiking boots under $100.", max_price=100),
        history=history,
        observation=Observation(url=f"http://shop/search?q={i}", title="Search", html=html,
                                elements=(ElementRef("search_input", "input"),)),
        step=len(history),
        seed=seed + i,
    )


def check_response(resp: PolicyResponse) -> None:
    assert isinstance(resp.raw, str)
    assert set(resp.prompt or {}) == {"dropped", "truncated_current", "tokens"}
    if resp.step is None:
        assert isinstance(resp.error, str) and resp.error
    else:
        assert isinstance(resp.step, ShopperStep)


# --------------------------------------------------------------------------------------------------------------------
# Tokenizer


def test_tokenizer_ids_round_trip_after_save_and_load(tiny_model_dir: Path) -> None:
    trained = build_tokenizer()  # same corpus and settings: the same merges
    loaded = load_tokenizer(tiny_model_dir)
    text = '{"rationale": "I\'ll buy 12 boots!", "action": {"type": "click", "name": "a.b_c"}}\n\n  <p>héllo ünï</p>'
    ids = loaded.encode(text, add_special_tokens=False)
    assert ids == trained.encode(text, add_special_tokens=False)
    assert loaded.decode(ids) == text
    assert 1000 < len(loaded) <= 2000
    for special in ("<|im_start|>", "<|im_end|>", "<|endoftext|>"):
        assert len(loaded.encode(special, add_special_tokens=False)) == 1
    assert loaded.padding_side == "left" and loaded.pad_token == "<|endoftext|>"
    chat = loaded.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    assert chat == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_load_tokenizer_keeps_ids_of_a_non_qwen_split(tmp_path: Path) -> None:
    """A GPT-2-split BPE next to a qwen2 config.json: AutoTokenizer may rebuild it as Qwen2Tokenizer; we must not."""
    model_dir = build_tiny_model(tmp_path / "gpt2split", split="gpt2")
    trained = build_tokenizer(split="gpt2")
    text = "Acme boots 12345, it's   fine\n\n<a name='x.y'>ok</a>"
    assert load_tokenizer(model_dir).encode(text, add_special_tokens=False) == trained.encode(
        text, add_special_tokens=False)


# --------------------------------------------------------------------------------------------------------------------
# LocalPolicy


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> LocalEngine:
    return LocalEngine.from_pretrained(tiny_model_dir, device="cpu")


def count_generate(engine: LocalEngine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Wrap `model.generate`; the returned list gets the batch size of each call."""
    calls: list[int] = []
    original = engine.model.generate

    def generate(*args: Any, **kwargs: Any) -> Any:
        calls.append(int(kwargs["input_ids"].shape[0]))
        return original(*args, **kwargs)

    monkeypatch.setattr(engine.model, "generate", generate)
    return calls


async def test_local_policy_answers_a_batch_with_one_generate(engine: LocalEngine,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_generate(engine, monkeypatch)
    policy = LocalPolicy(LocalPolicyConfig(model_dir="unused", max_new_tokens=24, structured=False), engine=engine)
    requests = [make_request(0, steps=0), make_request(1, steps=1), make_request(2, steps=3)]
    responses = await policy.act(requests)
    assert calls == [3]
    assert len(responses) == 3
    for resp in responses:
        check_response(resp)
        assert 0 < resp.usage["completion_tokens"] <= 24
        assert resp.usage["total_tokens"] == resp.usage["prompt_tokens"] + resp.usage["completion_tokens"]
    # A random model writes garbage: the failures are values with a reason, not exceptions.
    assert any(r.error and r.error.split(":")[0] in ("no_json", "invalid_json", "schema", "empty") for r in responses)
    # Longer histories make longer prompts, so the rows really were padded together.
    assert responses[0].usage["prompt_tokens"] < responses[2].usage["prompt_tokens"]
    await policy.close()
    await policy.close()


async def test_local_policy_decodes_inside_the_page_grammar_by_default(engine: LocalEngine) -> None:
    policy = LocalPolicy(LocalPolicyConfig(model_dir="unused", temperature=1.0, seed=0), engine=engine)
    assert policy.config.structured
    requests = [make_request(i, steps=i % 3) for i in range(8)]
    responses = await policy.act(requests)
    for request, resp in zip(requests, responses, strict=True):
        assert resp.step is not None, resp.error  # a random model, yet every step parses
        action = resp.step.action
        assert action.type in ("type_and_submit", "terminate")  # the page has one input and no clickable
        if action.type == "type_and_submit":
            assert action.name in request.observation.names


async def test_local_policy_prompts_the_way_the_model_was_trained(engine: LocalEngine, tmp_path: Path) -> None:
    from agent.policy.prompt import save_prompt_config

    trained = PromptConfig(max_context_tokens=300, include_rationales=False, history_pages="latest")
    save_prompt_config(trained, tmp_path)
    policy = LocalPolicy(LocalPolicyConfig(model_dir=str(tmp_path), max_new_tokens=8), engine=engine)
    assert policy.prompt == trained and policy.describe()["prompt"]["max_context_tokens"] == 300
    explicit = PromptConfig(max_context_tokens=999)
    assert LocalPolicy(LocalPolicyConfig(model_dir=str(tmp_path), prompt=explicit), engine=engine).prompt == explicit
    assert LocalPolicy(LocalPolicyConfig(model_dir="unused"), engine=engine).prompt == PromptConfig()
    (tmp_path / "shop_r1_prompt.json").write_text('["not", "an", "object"]')
    with pytest.raises(ValueError, match="shop_r1_prompt.json"):
        LocalPolicy(LocalPolicyConfig(model_dir=str(tmp_path)), engine=engine)


async def test_local_policy_is_seeded_and_greedy_is_deterministic(engine: LocalEngine) -> None:
    sampled = LocalPolicy(LocalPolicyConfig(model_dir="unused", max_new_tokens=16, seed=3), engine=engine)
    requests = [make_request(i) for i in range(2)]
    first, second = await sampled.act(requests), await sampled.act(requests)
    assert [r.raw for r in first] == [r.raw for r in second]
    other = await sampled.act([make_request(i, seed=100) for i in range(2)])
    assert [r.raw for r in other] != [r.raw for r in first]

    greedy = LocalPolicy(LocalPolicyConfig(model_dir="unused", max_new_tokens=16, temperature=0), engine=engine)
    alone = await greedy.act([make_request(0)])
    batched = await greedy.act([make_request(0), make_request(1, steps=2)])
    assert alone[0].raw == batched[0].raw  # left padding does not change a greedy row


async def test_local_policy_truncates_with_real_token_counts_and_keeps_the_loop_running(engine: LocalEngine) -> None:
    config = LocalPolicyConfig(model_dir="unused", max_new_tokens=16, prompt=PromptConfig(max_context_tokens=1200))
    policy = LocalPolicy(config, engine=engine)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    [resp] = await policy.act([make_request(0, html=PAGE * 40, steps=2)])
    task.cancel()
    assert ticks > 5  # generate ran in a worker thread
    assert resp.prompt == {**resp.prompt, "truncated_current": True, "dropped": [0, 1]}
    assert resp.prompt["tokens"] <= 1200
    assert resp.usage["prompt_tokens"] >= resp.prompt["tokens"]  # plus the chat template's tokens


async def test_local_policy_reports_a_prompt_over_the_model_context(tiny_model_dir: Path) -> None:
    small = LocalEngine.from_pretrained(tiny_model_dir, device="cpu")
    small.max_length = 1000
    policy = LocalPolicy(LocalPolicyConfig(model_dir="unused", max_new_tokens=16), engine=small)
    responses = await policy.act([make_request(0, html=PAGE * 20), make_request(1)])
    assert responses[0].step is None and responses[0].error.startswith("prompt: Expect at most 984 prompt tokens")
    assert responses[1].raw and list(small.stats.batch_sizes) == [1]


async def test_local_policy_loads_itself_with_auto_device_and_dtype(tiny_model_dir: Path) -> None:
    policy = LocalPolicy(LocalPolicyConfig(model_dir=str(tiny_model_dir), max_new_tokens=8))
    expected = ("cuda", torch.bfloat16) if torch.cuda.is_available() else ("cpu", torch.float32)
    assert (policy.engine.device.type, next(policy.engine.model.parameters()).dtype) == expected
    responses = await policy.act([make_request(i) for i in range(2)])
    assert len(responses) == 2 and policy.describe()["resolved_device"].startswith(expected[0])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
async def test_local_policy_on_gpu_batches_in_bf16(tiny_model_dir: Path) -> None:
    policy = LocalPolicy(LocalPolicyConfig(model_dir=str(tiny_model_dir), device="cuda", max_new_tokens=32))
    responses = await policy.act([make_request(i, steps=i) for i in range(8)])
    assert len(responses) == 8 and list(policy.engine.stats.batch_sizes) == [8]
    for resp in responses:
        check_response(resp)


async def test_batcher_gathers_concurrent_sessions_into_one_generate(engine: LocalEngine,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_generate(engine, monkeypatch)
    policy = LocalPolicy(LocalPolicyConfig(model_dir="unused", max_new_tokens=8, max_batch=4), engine=engine)
    batcher = Batcher(policy, wait_ms=20)
    responses = await asyncio.gather(*(batcher.submit(make_request(i)) for i in range(6)))
    assert len(responses) == 6 and sorted(calls) == [2, 4]


def test_engine_stop_strings_cut_the_text(engine: LocalEngine) -> None:
    ids = tuple(engine.encode(engine.chat_prompt([{"role": "user", "content": "hello"}])))
    [full] = engine.generate([GenerationRequest(ids, max_new_tokens=16, temperature=0)])
    stop = full.text[6:9]
    [cut] = engine.generate([GenerationRequest(ids, max_new_tokens=16, temperature=0, stop=(stop,))])
    assert cut.text == full.text[: full.text.find(stop)] and cut.finish_reason == "stop"
    assert cut.completion_tokens <= full.completion_tokens


def test_a_batch_with_invalid_scores_is_generated_again_one_request_at_a_time(tiny_model_dir: Path, monkeypatch,
                                                                              caplog) -> None:
    # bf16 on CPU with left padding over very different prompt lengths once gave NaN scores: sampling then failed
    # for the whole batch and took every session in it down
    engine = LocalEngine.from_pretrained(tiny_model_dir, "cpu")
    forward = engine.model.forward

    def nan_when_batched(*args, **kwargs):
        out = forward(*args, **kwargs)
        if out.logits.shape[0] > 1:
            out.logits = torch.full_like(out.logits, float("nan"))
        return out

    monkeypatch.setattr(engine.model, "forward", nan_when_batched)
    short = tuple(engine.encode(engine.chat_prompt([{"role": "user", "content": "hi"}])))
    long = tuple(engine.encode(engine.chat_prompt([{"role": "user", "content": "hello there " * 40}])))
    with caplog.at_level("WARNING"):
        done = engine.generate([GenerationRequest(short, max_new_tokens=8, temperature=1.0, seed=1),
                                GenerationRequest(long, max_new_tokens=8, temperature=1.0, seed=2)])
    assert [c.completion_tokens > 0 for c in done] == [True, True]
    assert "generating each request alone" in caplog.text


# --------------------------------------------------------------------------------------------------------------------
# OpenAIPolicy against the real policy server


@pytest.fixture(scope="module")
def policy_server(engine: LocalEngine) -> Iterator[PolicyServer]:
    with PolicyServer(engine=engine, served_model_name="tiny", max_batch=8, batch_wait_ms=10) as server:
        yield server


async def test_openai_policy_end_to_end_sends_response_format(policy_server: PolicyServer) -> None:
    before = policy_server.stats.response_formats["json_schema:shopper_step"]
    config = OpenAIPolicyConfig(base_urls=(policy_server.base_url,), model="tiny", max_tokens=16, seed=1)
    policy = OpenAIPolicy(config)
    responses = await policy.act([make_request(i) for i in range(3)])
    assert len(responses) == 3
    for resp in responses:
        check_response(resp)
        assert not (resp.error or "").startswith("server:")  # garbage output, but the server answered
        assert resp.usage["prompt_tokens"] > 0 and 0 < resp.usage["completion_tokens"] <= 16
    assert policy_server.stats.response_formats["json_schema:shopper_step"] == before + 3
    assert policy.structured and "api_key" not in policy.describe()
    await policy.close()
    await policy.close()


async def test_openai_policy_counts_prompt_tokens_with_a_local_tokenizer(policy_server: PolicyServer,
                                                                        tiny_model_dir: Path) -> None:
    config = OpenAIPolicyConfig(base_urls=(policy_server.base_url,), model="tiny", max_tokens=4,
                                tokenizer=str(tiny_model_dir))
    policy = OpenAIPolicy(config)
    request = make_request(0, steps=1)
    [resp] = await policy.act([request])
    messages = build_messages(PersonaIntent(persona=request.persona, intent=request.intent), request.history,
                              request.observation.url, request.observation.html).messages
    engine = policy_server.engine
    assert resp.prompt["tokens"] == sum(engine.count_tokens(m["content"]) for m in messages)
    # The server also counts the chat template's tokens; the prompt budget counts message contents only.
    assert resp.prompt["tokens"] < resp.usage["prompt_tokens"] < resp.prompt["tokens"] + 40
    await policy.close()


async def test_openai_policy_reports_a_wrong_model_as_a_server_error(policy_server: PolicyServer) -> None:
    policy = OpenAIPolicy(OpenAIPolicyConfig(base_urls=(policy_server.base_url,), model="nope", max_tokens=8))
    [resp] = await policy.act([make_request()])
    assert resp.step is None and resp.error.startswith("server: HTTP 404 NotFoundError")
    await policy.close()


# --------------------------------------------------------------------------------------------------------------------
# OpenAIPolicy against a stub with faults


class Stub:
    """A fake OpenAI server. Each path prefix is one behaviour; `hits` counts requests per prefix."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.bodies: list[tuple[str, dict[str, Any]]] = []
        self.app = FastAPI()

        @self.app.post("/{mode}/v1/chat/completions")
        async def complete(mode: str, request: Request) -> JSONResponse:
            body = await request.json()
            self.hits[mode] += 1
            self.bodies.append((mode, body))
            if mode == "fail":
                return JSONResponse({"error": {"message": "boom", "type": "server_error"}}, status_code=500)
            if mode == "flaky" and self.hits[mode] == 1:
                return JSONResponse({"error": {"message": "warming up", "type": "server_error"}}, status_code=503)
            if mode == "stall":
                await asyncio.sleep(1.5)
            if mode == "nostructured" and "response_format" in body:
                return JSONResponse({"error": {"message": "response_format json_schema is not supported",
                                               "type": "invalid_request_error", "param": "response_format"}},
                                    status_code=400)
            if mode.startswith("rr"):
                await asyncio.sleep(0.05)
            return JSONResponse({
                "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": VALID_STEP},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            })


@pytest.fixture(scope="module")
def stub() -> Iterator[tuple[Stub, str]]:
    stub = Stub()
    sock = _bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(stub.app, log_level="warning", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield stub, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)
    sock.close()


def stub_policy(*urls: str, **kwargs: Any) -> OpenAIPolicy:
    return OpenAIPolicy(OpenAIPolicyConfig(base_urls=urls, model="m", **kwargs))


async def test_openai_policy_retries_then_reports_a_server_error(stub: tuple[Stub, str]) -> None:
    fake, url = stub
    policy = stub_policy(f"{url}/fail/v1", max_retries=1)
    [resp] = await policy.act([make_request()])
    assert resp.step is None and resp.error.startswith("server: HTTP 500 InternalServerError")
    assert fake.hits["fail"] == 2  # one try, one retry

    policy = stub_policy(f"{url}/flaky/v1", max_retries=2)
    [resp] = await policy.act([make_request()])
    assert resp.step is not None and resp.step.action.type == "terminate" and fake.hits["flaky"] == 2
    assert resp.usage == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


async def test_openai_policy_times_out_a_stalled_server(stub: tuple[Stub, str]) -> None:
    fake, url = stub
    policy = stub_policy(f"{url}/stall/v1", timeout_s=0.2, max_retries=1)
    start = time.monotonic()
    [resp] = await policy.act([make_request()])
    assert resp.step is None and resp.error.startswith("server: APITimeoutError")
    assert time.monotonic() - start < 1.5 and fake.hits["stall"] == 2


async def test_openai_policy_falls_back_when_response_format_is_rejected(stub: tuple[Stub, str],
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    fake, url = stub
    policy = stub_policy(f"{url}/nostructured/v1", max_retries=0)
    responses = await policy.act([make_request(0), make_request(1)])
    assert all(r.step is not None for r in responses)
    assert not policy.structured and "rejected response_format" in caplog.text
    await policy.act([make_request(2)])
    sent = [("response_format" in body) for mode, body in fake.bodies if mode == "nostructured"]
    assert sent.count(True) <= 2 and sent[-1] is False and sent.count(False) == 3


async def test_openai_policy_balances_over_replicas(stub: tuple[Stub, str]) -> None:
    fake, url = stub
    policy = stub_policy(f"{url}/rr1/v1", f"{url}/rr2/v1", concurrency=8)
    for i in range(4):  # one at a time: strict alternation
        await policy.act([make_request(i)])
    assert fake.hits["rr1"] == fake.hits["rr2"] == 2
    await policy.act([make_request(i) for i in range(8)])  # concurrent: least in flight spreads them evenly
    assert fake.hits["rr1"] == fake.hits["rr2"] == 6
    await policy.close()


async def test_openai_policy_skips_an_unreachable_replica(stub: tuple[Stub, str]) -> None:
    fake, url = stub
    with contextlib.closing(_bind("127.0.0.1", 0)) as sock:
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    policy = stub_policy(dead, f"{url}/alive/v1", max_retries=0)
    responses = await policy.act([make_request(i) for i in range(4)])
    assert all(r.step is not None for r in responses) and fake.hits["alive"] == 4
    assert policy.describe()["replicas"][dead]["failures"] >= 1


def test_local_policy_serves_one_event_loop_after_another(engine: LocalEngine) -> None:
    policy = LocalPolicy(LocalPolicyConfig(model_dir="unused", max_new_tokens=8, max_batch=1), engine=engine)
    async def two_sessions() -> list[list[PolicyResponse]]:  # two concurrent acts contend for the generate lock
        return list(await asyncio.gather(policy.act([make_request(0)]), policy.act([make_request(1)])))

    for _ in range(2):  # e.g. a validity check, then a realism run, each with its own asyncio.run
        assert [len(r) for r in asyncio.run(two_sessions())] == [1, 1]


async def test_local_policy_does_not_go_round_in_circles(engine: LocalEngine) -> None:
    """Elements already clicked on this very page (same URL and HTML) are left out of the grammar on it: the default
    shopper pressed "Buy Now", "Add to Cart", "Buy Now"... on the "Please choose a size" notice, and went back to the
    results to open the same product again, until its steps ran out."""
    notice = Observation(url="http://shop/buy-now", title="Notice", html="<p>Please choose a size</p>",
                         elements=(ElementRef("p.buy_now", "clickable"), ElementRef("p.add_to_cart", "clickable"),
                                   ElementRef("p.size.m", "clickable")))
    product = dataclasses.replace(notice, url="http://shop/product/1", html="<p>A shirt</p>")
    cart_notice = dataclasses.replace(notice, url="http://shop/cart/add")

    def clicked(name: str, on: Observation) -> HistoryItem:
        return HistoryItem(on.url, on.html, Click(name=name), "Buy it.")

    # product -> notice; on the notice Buy Now (back to the notice), then Add to Cart (to the cart notice), whose
    # Buy Now led back here
    history = (clicked("p.buy_now", product), clicked("p.buy_now", notice), clicked("p.add_to_cart", notice),
               clicked("p.buy_now", cart_notice))
    request = PolicyRequest(session_id="s", persona=Persona(persona_id="p", name="P"), intent=Intent(text="a shirt"),
                            history=history, observation=notice, step=len(history))

    def clickable(policy: LocalPolicy, req: PolicyRequest) -> tuple[str, ...] | None:
        _, [(_, gen, _)] = policy._prepare([req])
        return gen.grammar.clickable

    guarded = LocalPolicy(LocalPolicyConfig(model_dir="unused"), engine=engine)
    assert clickable(guarded, request) == ("p.size.m",)
    # Only clicks made on this very page count: the first Buy Now was pressed on the product page.
    first = dataclasses.replace(request, history=history[:1], step=1)
    assert clickable(guarded, first) == ("p.buy_now", "p.add_to_cart", "p.size.m")
    plain = LocalPolicy(LocalPolicyConfig(model_dir="unused", skip_tried_clicks=False), engine=engine)
    assert clickable(plain, request) == ("p.buy_now", "p.add_to_cart", "p.size.m")
    responses = await guarded.act([dataclasses.replace(request, seed=k) for k in range(6)])
    for resp in responses:  # a random model, inside the grammar: never a tried click again
        assert resp.step is not None, resp
        assert getattr(resp.step.action, "name", None) not in ("p.buy_now", "p.add_to_cart"), resp
