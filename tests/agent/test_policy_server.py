"""The OpenAI-compatible policy server, driven by the real `openai` client and by raw HTTP for bad bodies."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import typer
from openai import AsyncOpenAI
from tiny_model import cached_tiny_model
from typer.testing import CliRunner

from agent.cli import serve as server_module
from agent.cli.serve import serve_policy_command, vllm_command
from agent.policy.engines import LocalEngine
from agent.policy.schema import ShopperStep, parse_step, response_format
from agent.wiring import PolicyServer

MESSAGES = [{"role": "system", "content": "You shop."}, {"role": "user", "content": "<a name='x.y'>Boots</a>"}]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_tiny_model(tmp_path_factory)


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path) -> Iterator[PolicyServer]:
    with PolicyServer(tiny_model_dir, device="cpu", max_batch=8, batch_wait_ms=10) as srv:
        yield srv


@pytest.fixture
async def client(server: PolicyServer) -> AsyncOpenAI:
    async with AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0) as c:
        yield c


async def test_models_lists_the_served_model(server: PolicyServer, client: AsyncOpenAI,
                                             tiny_model_dir: Path) -> None:
    models = await client.models.list()
    assert [m.id for m in models.data] == [tiny_model_dir.name] == [server.model_name]


async def test_chat_completion_returns_text_usage_and_finish_reason(server: PolicyServer,
                                                                    client: AsyncOpenAI) -> None:
    resp = await client.chat.completions.create(model=server.model_name, messages=MESSAGES, max_tokens=12,
                                                temperature=0.6, seed=7)
    choice = resp.choices[0]
    assert isinstance(choice.message.content, str) and choice.message.role == "assistant"
    assert choice.finish_reason in ("stop", "length")
    engine = server.engine
    assert resp.usage.prompt_tokens == len(engine.encode(engine.chat_prompt(MESSAGES)))
    assert 0 < resp.usage.completion_tokens <= 12
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    again = await client.chat.completions.create(model=server.model_name, messages=MESSAGES, max_tokens=12,
                                                 temperature=0.6, seed=7)
    assert again.choices[0].message.content == choice.message.content  # seeded, alone in its batch both times


async def test_concurrent_requests_are_batched(server: PolicyServer, client: AsyncOpenAI) -> None:
    start = len(server.stats.batch_sizes)
    results = await asyncio.gather(*(
        client.chat.completions.create(model=server.model_name, messages=MESSAGES, max_tokens=16, seed=i)
        for i in range(8)
    ))
    assert len(results) == 8
    sizes = list(server.stats.batch_sizes)[start:]
    assert sum(sizes) == 8 and max(sizes) > 1
    assert max(r.model_extra["shop_r1"]["batch_size"] for r in results) > 1
    stats = httpx.get(server.url + "/stats").json()
    assert stats["server"]["max_batch_size"] > 1 and stats["engine"]["generate_calls"] >= len(sizes)


async def test_response_format_is_accepted_and_the_output_checked(server: PolicyServer, client: AsyncOpenAI) -> None:
    before = server.stats.response_formats["json_schema:shopper_step"]
    resp = await client.chat.completions.create(model=server.model_name, messages=MESSAGES, max_tokens=120,
                                                response_format=response_format(), seed=3)
    verdict = resp.model_extra["shop_r1"]["structured"]
    assert verdict["constrained"] is True and verdict["checked"] == "shopper_step"
    # a random model, held inside the step grammar while decoding, writes a valid step
    assert verdict["valid"] is True and verdict["error"] is None
    assert isinstance(parse_step(resp.choices[0].message.content), ShopperStep)
    assert server.stats.response_formats["json_schema:shopper_step"] == before + 1
    free = await client.chat.completions.create(model=server.model_name, messages=MESSAGES, max_tokens=8, seed=3)
    assert free.model_extra["shop_r1"]["structured"] is None
    json_object = await client.chat.completions.create(model=server.model_name, messages=MESSAGES, max_tokens=4,
                                                       response_format={"type": "json_object"})
    assert json_object.model_extra["shop_r1"]["structured"]["checked"] == "json"


async def test_stop_and_greedy(server: PolicyServer, client: AsyncOpenAI) -> None:
    greedy = await client.chat.completions.create(model=server.model_name, messages=MESSAGES, max_tokens=16,
                                                  temperature=0)
    text = greedy.choices[0].message.content
    assert len(text) > 8
    stop = text[5:8]
    cut = await client.chat.completions.create(model=server.model_name, messages=MESSAGES, max_tokens=16,
                                               temperature=0, stop=[stop])
    assert cut.choices[0].message.content == text[: text.find(stop)]
    assert cut.choices[0].finish_reason == "stop"


BAD_BODIES = [
    ("not json", 400, None),
    ({"messages": []}, 400, "messages"),
    ({"messages": [{"role": "tool", "content": "x"}]}, 400, "messages.0.role"),
    ({"messages": [{"role": "user"}]}, 400, "messages.0.content"),
    ({"messages": MESSAGES, "temperature": 5}, 400, "temperature"),
    ({"messages": MESSAGES, "n": 2}, 400, "n"),
    ({"messages": MESSAGES, "stream": True}, 400, "stream"),
    ({"messages": MESSAGES, "max_tokens": 0}, 400, "max_tokens"),
    ({"messages": MESSAGES, "response_format": {"type": "xml"}}, 400, "response_format.type"),
    ({"messages": MESSAGES, "response_format": {"type": "json_schema"}}, 400, "response_format.json_schema"),
    ({"messages": MESSAGES, "max_tokens": 100_000}, 400, "max_tokens"),  # over the server's max_tokens_cap
    ({"messages": MESSAGES, "model": "gpt-4"}, 404, "model"),
    ([1, 2, 3], 400, None),
]


@pytest.mark.parametrize(("body", "status", "param"), BAD_BODIES)
def test_bad_bodies_get_openai_shaped_4xx(server: PolicyServer, body: object, status: int, param: str | None) -> None:
    kwargs = {"content": body} if isinstance(body, str) else {"json": body}
    resp = httpx.post(server.base_url + "/chat/completions", headers={"content-type": "application/json"},
                      **kwargs)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert error["type"] in ("invalid_request_error", "not_found_error")
    if param is not None:
        assert error["param"] == param


def test_unknown_routes_and_methods_are_openai_shaped(server: PolicyServer) -> None:
    assert httpx.get(server.base_url + "/nothing").json()["error"]["type"] == "not_found_error"
    resp = httpx.get(server.base_url + "/chat/completions")
    assert resp.status_code == 405 and "error" in resp.json()


async def test_openai_client_raises_bad_request_for_n(server: PolicyServer, client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="n=1"):
        await client.chat.completions.create(model=server.model_name, messages=MESSAGES, n=2)


def test_an_engine_can_be_shared(tiny_model_dir: Path) -> None:
    engine = LocalEngine.from_pretrained(tiny_model_dir, device="cpu")
    with PolicyServer(engine=engine, served_model_name="shared") as srv:
        resp = httpx.post(srv.base_url + "/chat/completions",
                          json={"model": "shared", "messages": MESSAGES, "max_tokens": 4})
        assert resp.status_code == 200 and resp.json()["model"] == "shared"
    assert engine.stats.generate_calls == 1


# --------------------------------------------------------------------------------------------------------------------
# The command


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(serve_policy_command)
    return app


def test_vllm_engine_without_vllm_fails_cleanly(cli: typer.Typer, tiny_model_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    result = CliRunner().invoke(cli, ["--model", str(tiny_model_dir), "--engine", "vllm"])
    assert result.exit_code == 2
    assert "vLLM is not installed" in result.output and "Traceback" not in result.output


def test_vllm_dry_run_prints_the_command(cli: typer.Typer, tiny_model_dir: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "_vllm_launcher", lambda: ["vllm"])
    result = CliRunner().invoke(cli, ["--model", str(tiny_model_dir), "--engine", "vllm", "--dry-run",
                                      "--served-model-name", "shopper", "--tensor-parallel-size", "2"])
    assert result.exit_code == 0, result.output
    line = result.output.strip()
    assert line.startswith(f"vllm serve {tiny_model_dir} --served-model-name shopper")
    assert "--structured-outputs-config.backend auto" in line and "--tensor-parallel-size 2" in line


def test_bad_options_are_usage_errors(cli: typer.Typer, tiny_model_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["--model", str(tmp_path / "missing")]).exit_code == 2
    result = runner.invoke(cli, ["--model", str(tiny_model_dir), "--device", "tpu", "--dry-run"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert runner.invoke(cli, ["--model", str(tiny_model_dir), "--engine", "tgi"]).exit_code == 2


def test_vllm_command_single_gpu_has_no_tensor_parallel_flag() -> None:
    argv = vllm_command("m", served_model_name="s", launcher=["vllm"])
    assert "--tensor-parallel-size" not in argv and argv[argv.index("--generation-config") + 1] == "vllm"


def test_vllm_serves_a_lora_adapter_as_a_lora_module_on_its_base(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    adapter = tmp_path / "shopper"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(base), "r": 12}))
    (adapter / "chat_template.jinja").write_text("{{ messages }}")
    argv = vllm_command(adapter, served_model_name="shopper", launcher=["vllm"])
    assert argv[2] == str(base), f"Expect the base as vLLM's model, actually: {argv}"
    assert argv[argv.index("--served-model-name") + 1] == "shopper-base"
    assert argv[argv.index("--lora-modules") + 1] == f"shopper={adapter}" and "--enable-lora" in argv
    assert argv[argv.index("--max-lora-rank") + 1] == "16", "Expect the smallest rank vLLM accepts that fits r 12"
    assert argv[argv.index("--chat-template") + 1] == str(adapter / "chat_template.jinja")


def test_vllm_dry_run_of_the_shipped_default_shopper_names_its_adapter(cli: typer.Typer,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.checkpoints import default_policy_dir

    monkeypatch.setattr(server_module, "_vllm_launcher", lambda: ["vllm"])
    shipped = default_policy_dir()
    result = CliRunner().invoke(cli, ["--model", str(shipped), "--engine", "vllm", "--served-model-name", "shopper",
                                      "--dry-run"])
    assert result.exit_code == 0, result.output
    assert f"--lora-modules shopper={shipped}" in result.output and "--enable-lora" in result.output


def test_vllm_refuses_an_adapter_with_an_unreadable_config(cli: typer.Typer, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "_vllm_launcher", lambda: ["vllm"])
    (tmp_path / "adapter_config.json").write_text("{not json")
    result = CliRunner().invoke(cli, ["--model", str(tmp_path), "--engine", "vllm", "--dry-run"])
    assert result.exit_code == 2 and "Expect a PEFT adapter config" in result.output
    assert "Traceback" not in result.output
