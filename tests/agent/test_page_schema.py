"""Page-exact structured outputs on the served path: the `openai` policy sends the page's names as `enum`s and
`shop-r1 serve-policy` decodes inside them, so a served shopper on the real store only names elements that exist."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai import AsyncOpenAI
from tiny_model import cached_tiny_model

from agent.policy.base import PolicyRequest
from agent.policy.openai_policy import OpenAIPolicy, OpenAIPolicyConfig
from agent.policy.persona import Intent, Persona
from agent.policy.prompt import PromptConfig
from agent.policy.schema import page_names, page_names_from_schema, response_format, shopper_step_json_schema
from agent.wiring import PolicyServer
from envs import ElementRef, EnvConfig, Observation, ShopEnv

MESSAGES = [{"role": "system", "content": "You shop."}, {"role": "user", "content": "<a name='x.y'>Boots</a>"}]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_tiny_model(tmp_path_factory)


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path) -> Iterator[PolicyServer]:
    with PolicyServer(tiny_model_dir, device="cpu", served_model_name="tiny", max_batch=8, batch_wait_ms=20) as srv:
        yield srv


def _policy(server: PolicyServer, tiny_model_dir: Path, **kwargs) -> OpenAIPolicy:
    # A random model, sampled hot, so it would wander anywhere the schema lets it.
    return OpenAIPolicy(OpenAIPolicyConfig(
        base_urls=(server.base_url,), model="tiny", temperature=1.0, max_tokens=160, seed=11, max_retries=0,
        tokenizer=str(tiny_model_dir), prompt=PromptConfig(max_context_tokens=2500, history_pages="latest"),
        **kwargs))


def _request(i: int, obs: Observation, step: int) -> PolicyRequest:
    persona = Persona(persona_id=f"p{i}", name="Dana", description="Likes boots.")
    return PolicyRequest(session_id=f"s{i}", persona=persona,
                         intent=Intent(text="I need hiking boots under $100.", max_price=100), history=(),
                         observation=obs, step=step, seed=i)


def test_the_page_schema_lists_the_page_names_and_reads_back():
    elements = (ElementRef("search.q", "input"), ElementRef("cart", "clickable"), ElementRef("home", "clickable"),
                ElementRef("cart", "clickable"), ElementRef(" ", "clickable"))
    clickable, inputs = page_names(elements)
    assert (clickable, inputs) == (("cart", "home"), ("search.q",))
    fmt = response_format(clickable=clickable, inputs=inputs)
    schema = fmt["json_schema"]["schema"]
    click, typed, terminate = schema["properties"]["action"]["anyOf"]
    assert click["properties"]["name"]["enum"] == ["cart", "home"]
    assert typed["properties"]["name"]["enum"] == ["search.q"] and "enum" not in typed["properties"]["text"]
    assert terminate["properties"] == {"type": {"type": "string", "enum": ["terminate"]}}
    for branch in (click, typed, terminate):  # OpenAI strict mode and vLLM: all required, nothing else
        assert branch["required"] == list(branch["properties"]) and branch["additionalProperties"] is False
    assert page_names_from_schema(schema) == (("cart", "home"), ("search.q",))
    # A page without inputs has no type_and_submit branch (an enum may not be empty).
    no_inputs = shopper_step_json_schema(clickable=("cart",), inputs=())
    assert [b["properties"]["type"]["enum"] for b in no_inputs["properties"]["action"]["anyOf"]] == [
        ["click"], ["terminate"]]
    assert page_names_from_schema(no_inputs) == (("cart",), ())
    assert page_names_from_schema(shopper_step_json_schema()) == (None, None)


async def test_serve_policy_decodes_inside_the_enum(server: PolicyServer) -> None:
    fmt = response_format(clickable=("x.y",), inputs=())
    async with AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0) as client:
        for seed in range(4):
            resp = await client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=120,
                                                        temperature=1.0, seed=seed, response_format=fmt)
            step = json.loads(resp.choices[0].message.content)
            assert step["action"] in ({"type": "click", "name": "x.y"}, {"type": "terminate"})
            verdict = resp.model_extra["shop_r1"]["structured"]
            assert verdict["constrained"] and verdict["valid"] and verdict["error"] is None
    assert server.stats.page_schemas >= 4


async def test_serve_policy_honours_vllms_structured_outputs_field(server: PolicyServer) -> None:
    schema = response_format(clickable=("x.y",), inputs=())["json_schema"]["schema"]
    before = server.stats.page_schemas
    async with AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0) as client:
        for seed in range(3):
            resp = await client.chat.completions.create(
                model="tiny", messages=MESSAGES, max_tokens=120, temperature=1.0, seed=seed,
                extra_body={"structured_outputs": {"json": schema}})
            step = json.loads(resp.choices[0].message.content)
            assert step["action"] in ({"type": "click", "name": "x.y"}, {"type": "terminate"})
            assert resp.model_extra["shop_r1"]["structured"]["constrained"]
    assert server.stats.page_schemas == before + 3


async def test_the_policy_sends_the_page_schema_in_vllms_field(server: PolicyServer, tiny_model_dir: Path,
                                                               store_url: str) -> None:
    policy = _policy(server, tiny_model_dir, schema_field="structured_outputs")
    body = policy._body([{"role": "user", "content": "x"}], _request(0, Observation(
        url="http://s/", title="t", html="", elements=(ElementRef("cart", "clickable"),)), 0))
    assert "response_format" not in body
    assert page_names_from_schema(body["extra_body"]["structured_outputs"]["json"]) == (("cart",), ())
    with ShopEnv(store_url, backend="http") as env:
        obs, _ = env.reset()
        responses = await policy.act([_request(i, obs, 0) for i in range(6)])
    await policy.close()
    assert all(r.step is not None for r in responses), [r.error for r in responses]
    names = [r.step.action.name for r in responses if r.step.action.type != "terminate"]
    assert set(names) <= set(obs.names)


@pytest.mark.parametrize(("schema", "message"), [
    ({"type": "object"}, "Expect a shopper_step schema with properties.action.anyOf"),
    ({"properties": {"action": {"anyOf": [{"properties": {"type": {"enum": ["jump"]}}}]}}},
     "Expect each of click, type_and_submit, terminate at most once, actually: 'jump'"),
    ({"properties": {"action": {"anyOf": [{"properties": {"type": {"enum": ["click"]}, "name": {"enum": []}}}]}}},
     "Expect the click name enum to be a non-empty list of non-blank strings, actually: []"),
])
async def test_serve_policy_rejects_a_malformed_shopper_schema(server: PolicyServer, schema: dict,
                                                               message: str) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "shopper_step", "schema": schema}}
    async with AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=8, response_format=fmt)
    assert message in caught.value.message
    assert caught.value.body["param"] == "response_format.json_schema.schema"


@pytest.mark.slow
async def test_served_shoppers_are_page_valid_over_50_store_steps(server: PolicyServer, tiny_model_dir: Path,
                                                                 store_url: str) -> None:
    """Five shoppers in lockstep on the real store (http backend), each batch one round of requests with five
    different page schemas: 50 steps, all schema-valid, all naming an element of their page, all valid in the env."""
    policy = _policy(server, tiny_model_dir)
    envs = [ShopEnv(store_url, backend="http", config=EnvConfig(max_steps=10)) for _ in range(5)]
    try:
        observations = [env.reset(seed=i)[0] for i, env in enumerate(envs)]
        steps = [0] * len(envs)
        results = []
        while len(results) < 50:
            responses = await policy.act([_request(i, obs, steps[i]) for i, obs in enumerate(observations)])
            for i, (env, resp) in enumerate(zip(envs, responses, strict=True)):
                assert resp.step is not None, resp.error
                action = resp.step.action
                clickable, inputs = page_names(observations[i].elements)
                on_page = action.type == "terminate" or action.name in (clickable if action.type == "click"
                                                                       else inputs)
                obs, _, terminated, truncated, info = env.step(action)
                results.append((action.type, on_page, info["valid"]))
                steps[i] += 1
                if terminated or truncated:
                    obs, _ = env.reset()
                    steps[i] = 0
                observations[i] = obs
    finally:
        for env in envs:
            env.close()
        await policy.close()
    assert len(results) == 50
    assert [r for r in results if not (r[1] and r[2])] == []  # 100% page-valid and env-valid
    assert {"click", "type_and_submit"} <= {r[0] for r in results}  # it really chose elements, not only terminate


async def test_the_fixed_schema_lets_a_served_shopper_name_what_is_not_there(server: PolicyServer,
                                                                            tiny_model_dir: Path,
                                                                            store_url: str) -> None:
    """The contrast: the same model with free-string names (page_schema=False) names elements the page lacks."""
    policy = _policy(server, tiny_model_dir, page_schema=False)
    with ShopEnv(store_url, backend="http") as env:
        obs, _ = env.reset()
        responses = await policy.act([_request(i, obs, 0) for i in range(6)])
    await policy.close()
    names = [r.step.action.name for r in responses if r.step is not None and r.step.action.type != "terminate"]
    assert names and not set(names) <= set(obs.names)


def test_the_page_schema_leaves_out_a_click_that_changed_nothing(server: PolicyServer, tiny_model_dir: Path) -> None:
    """As the local grammar does (`tried_clicks`): an element already clicked on this very page is not offered again."""
    from dataclasses import replace

    from agent.policy.prompt import HistoryItem
    from envs.actions import Click

    page = Observation(url="http://s/buy-now", title="t", html="<p>Please choose a size</p>",
                       elements=(ElementRef("p.buy_now", "clickable"), ElementRef("p.size.m", "clickable")))
    request = replace(_request(0, page, 1), history=(HistoryItem(page.url, page.html, Click(name="p.buy_now")),))
    for kwargs, names in (({}, ("p.size.m",)), ({"skip_tried_clicks": False}, ("p.buy_now", "p.size.m"))):
        body = _policy(server, tiny_model_dir, **kwargs)._body([{"role": "user", "content": "x"}], request)
        assert page_names_from_schema(body["response_format"]["json_schema"]["schema"])[0] == names
