"""Test helpers for the trainers: a micro Qwen2 whose chat template has `{% generation %}` markers, and tiny SFT/RL
DatasetDicts in the shape `training.data` writes (see the data contract in `training.sft` / `training.grpo`).

The tokenizer is `tests/agent/tiny_model.build_tokenizer` (a byte-level BPE trained on shopper text); the model is a
random-init Qwen2 (hidden 64, 2 layers by default): garbage out, quickly.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

_AGENT_TESTS = Path(__file__).resolve().parents[1] / "agent"
if str(_AGENT_TESTS) not in sys.path:
    sys.path.insert(0, str(_AGENT_TESTS))

from tiny_model import build_tokenizer  # noqa: E402

GENERATION_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{ '\\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""ChatML (Qwen's layout) with the assistant content and its <|im_end|> inside the generation markers."""

_TOKENIZER_CACHE: dict[int, object] = {}


def build_micro_model(out_dir: str | Path, *, hidden_size: int = 64, num_layers: int = 2, num_heads: int = 4,
                      seed: int = 0) -> Path:
    """Write a random Qwen2 + the tiny tokenizer (with `GENERATION_TEMPLATE`) to `out_dir`."""
    import copy

    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    if seed not in _TOKENIZER_CACHE:
        _TOKENIZER_CACHE[seed] = build_tokenizer(seed=seed)
    tokenizer = copy.deepcopy(_TOKENIZER_CACHE[seed])
    tokenizer.chat_template = GENERATION_TEMPLATE
    torch.manual_seed(seed)
    config = Qwen2Config(
        hidden_size=hidden_size, num_hidden_layers=num_layers, num_attention_heads=num_heads,
        num_key_value_heads=max(1, num_heads // 2), intermediate_size=2 * hidden_size,
        vocab_size=len(tokenizer), max_position_embeddings=8192, tie_word_embeddings=True,
        bos_token_id=None, eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen2ForCausalLM(config)
    out = Path(out_dir)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


_WORDS = ("boots", "tent", "jacket", "kettle", "lamp", "socks", "coffee", "backpack")


def _page(kind: str, rng: random.Random) -> tuple[str, str, dict]:
    """(url, html, gold action) of a small fake page."""
    w = rng.choice(_WORDS)
    if kind == "home":
        html = ("<nav><a name='nav_bar.homepage'>Home</a></nav>"
                "<form role='search'><input name='search_input' type='search'/></form>")
        return "http://shop/", html, {"type": "type_and_submit", "name": "search_input", "text": f"green {w}"}
    if kind == "results":
        slug = f"acme_{w}"
        html = (f"<input name='search_input' type='search'/><ul><li><a name='search_results.{slug}.product_title'>"
                f"Acme {w.title()}</a> <span>$19.99</span></li></ul>")
        return f"http://shop/search?q={w}", html, {"type": "click", "name": f"search_results.{slug}.product_title"}
    html = f"<h1>Acme {w.title()}</h1><p>$19.99</p><button name='add_to_cart.buy_now'>Buy now</button>"
    action = {"type": "click", "name": "add_to_cart.buy_now"} if rng.random() < 0.5 else {"type": "terminate"}
    return f"http://shop/product/{w}", html, action


def build_datasets(data_dir: str | Path, *, sessions: int = 6, seed: int = 0) -> Path:
    """`data_dir/sft` and `data_dir/rl` DatasetDicts (train/validation/test) in `training.data`'s layout."""
    from datasets import Dataset, DatasetDict

    from agent.policy.persona import Intent, PersonaIntent, sample_personas
    from agent.policy.prompt import HistoryItem, PromptConfig, build_messages, build_session_chat
    from agent.policy.schema import format_action

    rng = random.Random(seed)
    personas = sample_personas(sessions, seed=seed)
    sft_rows: list[dict] = []
    rl_rows: list[dict] = []
    rationales = {"type_and_submit": "Let me search for it.", "click": "This looks right, I'll open it.",
                  "terminate": "Nothing here fits, so I'm done."}
    for i, persona in enumerate(personas):
        intent = Intent(text=f"I need {rng.choice(_WORDS)} under $40.", max_price=40.0)
        pi = PersonaIntent(persona=persona, intent=intent)
        steps = []
        for kind in ("home", "results", "product"):
            url, html, action = _page(kind, rng)
            steps.append(HistoryItem(url, html, action, rationales[action["type"]]))
        session_id = f"s{i:03d}"
        chat = build_session_chat(pi, steps)
        sft_rows.append({"messages": chat.messages, "session_id": session_id})
        for t, step in enumerate(steps):
            full = build_messages(pi, steps[:t], step.url, step.observation, PromptConfig(include_rationales=False))
            latest = build_messages(pi, steps[:t], step.url, step.observation,
                                    PromptConfig(include_rationales=False, history_pages="latest"))
            rl_rows.append({
                "prompt": full.messages, "prompt_latest": latest.messages,
                "gold_action": format_action(step.action), "gold_type": step.action.type,
                "gold_rationale": step.rationale, "session_id": session_id, "step": t, "url": step.url,
                "persona": persona.model_dump_json(), "intent": intent.model_dump_json(), "site": "http://shop/",
            })
    out = Path(data_dir)

    # sessions split by session: the first 2/3 of sessions train
    n_train_sessions = max(1, sessions * 2 // 3)
    train_ids = {f"s{i:03d}" for i in range(n_train_sessions)}
    sft = DatasetDict(
        train=Dataset.from_list([r for r in sft_rows if r["session_id"] in train_ids]),
        validation=Dataset.from_list([r for r in sft_rows if r["session_id"] not in train_ids] or sft_rows[:1]),
        test=Dataset.from_list([r for r in sft_rows if r["session_id"] not in train_ids] or sft_rows[:1]),
    )
    rl = DatasetDict(
        train=Dataset.from_list([r for r in rl_rows if r["session_id"] in train_ids]),
        validation=Dataset.from_list([r for r in rl_rows if r["session_id"] not in train_ids] or rl_rows[:1]),
        test=Dataset.from_list([r for r in rl_rows if r["session_id"] not in train_ids] or rl_rows[:1]),
    )
    sft.save_to_disk(str(out / "sft"))
    rl.save_to_disk(str(out / "rl"))
    (out / "meta.json").write_text(json.dumps({"sessions": sessions, "seed": seed}))
    return out


def params_snapshot(model) -> dict[str, object]:
    """A copy of every parameter, to assert training changed them."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def changed_params(before: dict[str, object], model) -> list[str]:
    """Names of the parameters that differ from `before`."""
    import torch

    return [name for name, p in model.named_parameters() if not torch.equal(before[name], p.detach().cpu())]


_BUILT: dict[str, Path] = {}


def cached_micro_model(tmp_path_factory, **kwargs) -> Path:
    """`build_micro_model` once per test session (per distinct kwargs)."""
    key = "model" + repr(sorted(kwargs.items()))
    if key not in _BUILT:
        _BUILT[key] = build_micro_model(tmp_path_factory.mktemp("micro-qwen2"), **kwargs)
    return _BUILT[key]


def cached_datasets(tmp_path_factory, **kwargs) -> Path:
    """`build_datasets` once per test session (per distinct kwargs)."""
    key = "data" + repr(sorted(kwargs.items()))
    if key not in _BUILT:
        _BUILT[key] = build_datasets(tmp_path_factory.mktemp("train-data"), **kwargs)
    return _BUILT[key]


CANNED_STEPS = (
    '{"rationale": "Nothing here fits, so I\'m done.", "action": {"type": "terminate"}}',
    '{"rationale": "These boots look good, I\'ll open them.", "action": {"type": "click", '
    '"name": "search_results.acme_boots.product_title"}}',
    '{"rationale": "Let me search for green boots.", "action": {"type": "type_and_submit", "name": "search_input", '
    '"text": "green boots"}}',
    'not json {"rationale": "oops',
)
"""Completions a `CannedRollout` returns in turn: three valid steps of different types and one broken output."""


def chat_prompt_ids(tokenizer, messages) -> list[int]:
    """Token ids of the chat template applied to `messages` with the generation prompt."""
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return [int(i) for i in ids]


def canned_ids(tokenizer, text: str) -> list[int]:
    """`text` + <|im_end|> as completion ids."""
    return list(tokenizer.encode(text, add_special_tokens=False)) + [tokenizer.convert_tokens_to_ids("<|im_end|>")]


class CannedRollout:
    """A TRL `rollout_func` that returns fixed completions instead of sampling (deterministic reward tests)."""

    def __init__(self, texts=CANNED_STEPS) -> None:
        self.texts = tuple(texts)
        self.calls = 0

    def __call__(self, prompts, trainer):
        tokenizer = trainer.processing_class
        self.calls += 1
        return {
            "prompt_ids": [chat_prompt_ids(tokenizer, p) for p in prompts],
            "completion_ids": [canned_ids(tokenizer, self.texts[i % len(self.texts)]) for i in range(len(prompts))],
            "logprobs": None,
        }


def varied_reward(prompts, completions, completion_ids=None, **kwargs):
    """A reward that almost surely differs between two different completions (so advantages are not all 0 even when
    a random model's outputs all score 0 on the Shop-R1 reward)."""
    return [(sum((k + 1) * int(t) for k, t in enumerate(ids)) % 97) / 97.0 for ids in completion_ids]
