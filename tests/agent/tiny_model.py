"""A tiny random-init Qwen2 chat model with a byte-level BPE tokenizer trained here, for policy and server tests.

The tokenizer is trained with the `tokenizers` library on shopper-step JSON, simplified HTML and the system prompt,
with Qwen2's pre-tokenizer split rule, the ChatML special tokens and a Qwen-style chat template. The model is a
2-layer `Qwen2ForCausalLM` with hidden size 64: it outputs garbage, quickly.

`cached_tiny_model` builds it once per test session for any number of test modules.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

# One definition of the tokenizer recipe, shared with `shop-r1 model init`; the names stay importable from here.
from training.modeling import CHATML_TEMPLATE, QWEN2_SPLIT, SPECIAL_TOKENS, train_tokenizer

__all__ = ["CHATML_TEMPLATE", "QWEN2_SPLIT", "SPECIAL_TOKENS", "build_tiny_model", "build_tokenizer",
           "cached_tiny_model", "training_corpus"]

_WORDS = ("boots", "tent", "jacket", "shoes", "coffee", "lamp", "backpack", "socks", "kettle", "headphones",
          "waterproof", "hiking", "trail", "running", "green", "tea", "large", "navy", "cotton", "wireless", "Acme",
          "Northwind")
_RATIONALES = ("I want to find {w} quickly.", "These {w} look good, I'll open them.", "Too expensive, I'll leave.",
               "Let me search for {w}.", "I'll pick the {w} option.", "Nothing here fits, so I'm done.")


def training_corpus(n: int = 400, seed: int = 0) -> list[str]:
    """Shopper steps, simplified HTML and prompt text: what the tokenizer will mostly see in tests."""
    import agent.policy.persona
    import agent.policy.prompt
    import agent.policy.schema
    import envs.actions
    from agent.policy.persona import Intent, PersonaIntent, sample_personas
    from agent.policy.prompt import render_persona_intent, system_prompt

    rng = random.Random(seed)
    texts = [system_prompt(), system_prompt("Acme Outfitters")]
    texts += [module.__doc__ or "" for module in (agent.policy.persona, agent.policy.prompt, agent.policy.schema,
                                                   envs.actions)]
    for persona in sample_personas(40, seed=seed):
        title = " ".join(rng.sample(_WORDS, 4))
        intent = Intent.from_product(title=title, brand="Acme", department="Outdoor", price=rng.uniform(5, 300),
                                     seed=rng.randint(0, 10**6))
        texts.append(render_persona_intent(PersonaIntent(persona=persona, intent=intent)))
    for _ in range(n):
        w = rng.choice(_WORDS)
        slug = f"{rng.choice(_WORDS).lower()}_{w.lower()}"
        action = rng.choice([
            {"type": "click", "name": f"search_results.{slug}.product_title"},
            {"type": "type_and_submit", "name": "search_input", "text": f"{w} {rng.choice(_WORDS)}"},
            {"type": "terminate"},
        ])
        texts.append(json.dumps({"rationale": rng.choice(_RATIONALES).format(w=w), "action": action}))
        price = f"{rng.randint(5, 300)}.{rng.randint(0, 99):02d}"
        texts.append(
            f"<nav><a name='nav_bar.homepage'>Home</a></nav><input name='search_input' placeholder='Search'/>\n"
            f"<ul><li><a name='search_results.{slug}.product_title'>{w.title()} {rng.choice(_WORDS)}</a>"
            f" <span>${price}</span> <button name='add_to_cart.buy_now'>Buy now</button></li></ul>"
        )
    return texts


def build_tokenizer(vocab_size: int = 2000, *, split: str = "qwen2", seed: int = 0):
    """A trained byte-level BPE as a `PreTrainedTokenizerFast` with ChatML specials and chat template.

    `split="qwen2"` pre-splits with Qwen2's regex (then `ByteLevel(use_regex=False)`); `split="gpt2"` uses ByteLevel's
    own GPT-2 regex, which differs from what `Qwen2Tokenizer` would rebuild. See `training.modeling.train_tokenizer`.
    """
    return train_tokenizer(training_corpus(seed=seed), vocab_size, split=split, model_max_length=4096)


def build_tiny_model(out_dir: str | Path, *, seed: int = 0, split: str = "qwen2", hidden_size: int = 64,
                     num_attention_heads: int = 4) -> Path:
    """Write a tokenizer and a random-init 2-layer Qwen2 to `out_dir` with `save_pretrained`.

    The default head size is 16; vLLM's attention kernels want 64 or more (`hidden_size=256` with 4 heads).
    """
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    tokenizer = build_tokenizer(split=split, seed=seed)
    torch.manual_seed(seed)
    config = Qwen2Config(
        hidden_size=hidden_size, num_hidden_layers=2, num_attention_heads=num_attention_heads,
        num_key_value_heads=max(1, num_attention_heads // 2), intermediate_size=2 * hidden_size,
        vocab_size=len(tokenizer), max_position_embeddings=4096, tie_word_embeddings=True,
        bos_token_id=None, eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


_BUILT: dict[str, Path] = {}


def cached_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model's directory, built once per test session however many modules ask for it.

    Wrap it in a session fixture in each test module:
    `tiny_model_dir = pytest.fixture(scope="session")(lambda tmp_path_factory: cached_tiny_model(tmp_path_factory))`
    """
    if "qwen2" not in _BUILT:
        _BUILT["qwen2"] = build_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"))
    return _BUILT["qwen2"]
