"""training.modeling: random-init Qwen2 presets with a BPE trained on our data."""

from __future__ import annotations

import doctest
import json
import unicodedata
from pathlib import Path

import pytest
import torch
from datafix import cached_data_dir, cached_data_micro_model
from typer.testing import CliRunner

from agent.policy.engines import encode_plain, load_model, load_tokenizer
from training.data import SPLITS, DataConfig, build_datasets, load_split
from training.modeling import CHATML_TEMPLATE, PRESETS, ModelPreset, init_model, model_config, train_tokenizer


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory, store_db: Path, store_url: str) -> Path:
    return cached_data_dir(tmp_path_factory, store_db, store_url)


@pytest.fixture(scope="session")
def micro_dir(tmp_path_factory: pytest.TempPathFactory, store_db: Path, store_url: str) -> Path:
    return cached_data_micro_model(tmp_path_factory, store_db, store_url)


TEXTS = [
    '{"rationale": "I\'ll buy 12 boots!", "action": {"type": "click", "name": "search_results.acme_boots.title"}}',
    "<a name=\"nav_bar.homepage\">Home</a>\n\n  <p>héllo ünï — “quotes” 日本 🙂</p>\t\r\n",
    "Cafe\u0301 au lait",  # not NFC: Qwen2 normalises it, and so do we
    "   leading spaces, 3.14159 and 1,000,000",
]


def test_ids_round_trip_after_save_and_load(micro_dir: Path) -> None:
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    loaded = load_tokenizer(micro_dir)
    raw = Tokenizer.from_file(str(micro_dir / "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(str(micro_dir))  # rebuilds a Qwen2Tokenizer: the same pipeline, same ids
    for text in TEXTS:
        ids = encode_plain(loaded, text)
        assert ids == raw.encode(text, add_special_tokens=False).ids
        assert ids == loaded.encode(text, add_special_tokens=False) == auto.encode(text, add_special_tokens=False)
        assert loaded.decode(ids) == unicodedata.normalize("NFC", text)
    for special, expected in (("<|endoftext|>", 0), ("<|im_start|>", 1), ("<|im_end|>", 2)):
        assert loaded.convert_tokens_to_ids(special) == expected
        assert loaded.encode(special, add_special_tokens=False) == [expected]
    assert (loaded.eos_token, loaded.pad_token, loaded.padding_side) == ("<|im_end|>", "<|endoftext|>", "left")
    config = json.loads((micro_dir / "tokenizer_config.json").read_text())
    assert config["chat_template"] == CHATML_TEMPLATE


def test_the_same_corpus_gives_the_same_tokenizer() -> None:
    a, b = train_tokenizer(TEXTS * 20, 300), train_tokenizer(TEXTS * 20, 300)
    assert a.get_vocab() == b.get_vocab() and len(a) <= 300


def test_chat_template_renders_chatml(micro_dir: Path) -> None:
    tok = load_tokenizer(micro_dir)
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"},
                {"role": "assistant", "content": "A"}, {"role": "user", "content": "V"}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nA"
                    "<|im_end|>\n<|im_start|>user\nV<|im_end|>\n<|im_start|>assistant\n")
    full = tok.apply_chat_template(messages[:3], tokenize=False)
    assert full.startswith(text[: text.index("<|im_start|>user\nV")]) and full.endswith("A<|im_end|>\n")


def test_assistant_tokens_mask_covers_exactly_the_assistant_turns(micro_dir: Path, data_dir: Path) -> None:
    tok = load_tokenizer(micro_dir)
    messages = load_split(data_dir, "sft", "train")[0]["messages"]
    out = tok.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    assert len(ids) == len(mask) and 0 < sum(mask) < len(ids)
    masked = tok.decode([i for i, m in zip(ids, mask, strict=True) if m], skip_special_tokens=False)
    assert masked == "".join(m["content"] + "<|im_end|>" for m in messages if m["role"] == "assistant")
    assert ids == encode_plain(tok, tok.apply_chat_template(messages, tokenize=False))


def test_the_model_loads_and_runs_a_forward_pass(micro_dir: Path) -> None:
    tok = load_tokenizer(micro_dir)
    model = load_model(micro_dir, device="cpu")
    config = model.config
    assert (config.model_type, config.hidden_size, config.num_hidden_layers) == ("qwen2", 64, 2)
    assert config.eos_token_id == tok.eos_token_id == 2 and config.pad_token_id == tok.pad_token_id == 0
    assert config.vocab_size == len(tok) == 1000 and config.tie_word_embeddings
    assert 2 in model.generation_config.eos_token_id
    ids = torch.tensor([encode_plain(tok, TEXTS[0])])
    with torch.no_grad():
        out = model(input_ids=ids, labels=ids)
    assert out.logits.shape == (1, ids.shape[1], len(tok)) and torch.isfinite(out.loss)
    assert abs(out.loss.item() - torch.log(torch.tensor(len(tok))).item()) < 1.0  # random init: near uniform
    info = json.loads((micro_dir / "init.json").read_text())
    assert info["preset"] == "micro" and info["parameters"] == sum(p.numel() for p in model.parameters())
    assert 100_000 < info["parameters"] < 250_000


def test_tiny_has_about_four_million_parameters() -> None:
    from transformers import Qwen2ForCausalLM

    model = Qwen2ForCausalLM(model_config("tiny", 4000, 2, 0))
    assert 3.5e6 < sum(p.numel() for p in model.parameters()) < 4.5e6
    assert (model.config.hidden_size, model.config.num_hidden_layers, model.config.num_attention_heads,
            model.config.num_key_value_heads, model.config.intermediate_size,
            model.config.max_position_embeddings) == (256, 4, 4, 2, 688, 8192)


def test_presets_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="preset"):
        init_model("huge", None, tmp_path, texts=["x"])
    with pytest.raises(ValueError, match="corpus"):
        init_model("micro", None, tmp_path)
    with pytest.raises(ValueError, match="divisible"):
        ModelPreset(hidden_size=65, num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
                    intermediate_size=8)
    assert set(PRESETS) == {"tiny", "micro"}


def test_exact_token_budget_with_the_model_tokenizer(micro_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    from training.data import load_meta

    run = Path(load_meta(data_dir)["sources"][0]["path"])
    budget = 3000
    meta = build_datasets([run], tmp_path / "exact",
                          DataConfig(max_context_tokens=budget, tokenizer_dir=str(micro_dir)))
    approx = build_datasets([run], tmp_path / "approx", DataConfig(max_context_tokens=budget))
    assert meta["prompt_budget"]["rl_prompt"]["over_budget"] == 0
    assert meta["prompt_budget"]["token_counter"] == str(micro_dir)
    tok = load_tokenizer(micro_dir)
    for split in SPLITS:
        for row in load_split(tmp_path / "exact", "rl", split):
            assert sum(len(encode_plain(tok, m["content"])) for m in row["prompt"]) <= budget
    # A 1000-token byte-level BPE needs more tokens than 3.5 characters each: exact counting drops more pages.
    assert meta["prompt_budget"]["rl_prompt"]["pages_dropped"] > approx["prompt_budget"]["rl_prompt"]["pages_dropped"]


def test_cli_model_init(data_dir: Path, tmp_path: Path) -> None:
    from agent.cli.root import app

    result = CliRunner().invoke(app, ["model", "init", "--preset", "micro", "--corpus", str(data_dir), "--out",
                                      str(tmp_path / "m"), "--vocab-size", "600"])
    assert result.exit_code == 0, result.output
    assert "preset micro, vocab 600" in result.output and len(load_tokenizer(tmp_path / "m")) == 600
    bad = ((["--preset", "big"], "Invalid value for '--preset'"), (["--corpus", str(tmp_path)], "no meta.json"))
    for args, message in bad:
        base = {"--preset": "micro", "--corpus": str(data_dir)}
        base.update(dict(zip(args[::2], args[1::2], strict=True)))
        argv = ["model", "init", "--out", str(tmp_path / "x"), *[x for kv in base.items() for x in kv]]
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 2 and message in result.output, result.output


def test_doctests() -> None:
    import training.modeling

    assert doctest.testmod(training.modeling).failed == 0
