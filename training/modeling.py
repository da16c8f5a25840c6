"""Small random-init chat models to train from scratch: a Qwen2 architecture and a byte-level BPE trained on our data.

`init_model(preset, corpus_dir, out_dir)` writes a `save_pretrained` directory (model, `tokenizer.json`,
`tokenizer_config.json` with the chat template) that `agent.policy.engines.load_tokenizer` / `load_model`, TRL's
trainers and vLLM load as they would a Qwen2.5 checkpoint.

The tokenizer:

- byte-level BPE trained with `tokenizers` on the SFT dataset's text (system prompt, personas, pages, steps);
- Qwen2's pipeline: NFC, Qwen2's split regex, then `ByteLevel(use_regex=False)`. `agent.policy.engines.load_tokenizer`
  loads `tokenizer.json` as is, so ids round-trip; and since the pipeline is Qwen2's own, even transformers'
  `AutoTokenizer` (which rebuilds a `Qwen2Tokenizer` from `config.json`'s model type, the trap that changes the ids
  of a BPE trained with another split rule) gives the same ids;
- special tokens `<|endoftext|>` (pad), `<|im_start|>`, `<|im_end|>` (eos), ids 0, 1, 2;
- a ChatML template whose assistant content (and its `<|im_end|>`) sits in `{% generation %}` markers, for TRL's
  `assistant_only_loss` (`return_assistant_tokens_mask=True`); it renders exactly like Qwen2.5's for our messages.

Presets (`PRESETS`): `tiny` (hidden 256, 4 layers, ~4M parameters with a 4000-token vocabulary: trainable on a
CPU) and `micro` (hidden 64, 2 layers: for tests).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.policy.base_models import CHATML_TEMPLATE
from agent.policy.prompt import system_prompt

from .data import load_split

log = logging.getLogger(__name__)

__all__ = [
    "CHATML_TEMPLATE",
    "PRESETS",
    "QWEN2_SPLIT",
    "SPECIAL_TOKENS",
    "ModelPreset",
    "corpus_texts",
    "init_model",
    "model_config",
    "train_tokenizer",
]

QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
"""Qwen2's pre-tokenizer split rule (its `tokenizer.json`): single digits, letters with one leading non-letter."""

SPECIAL_TOKENS: tuple[str, ...] = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
PAD_TOKEN, EOS_TOKEN = "<|endoftext|>", "<|im_end|>"



@dataclass(frozen=True)
class ModelPreset:
    """A Qwen2 architecture and the tokenizer's vocabulary size."""

    hidden_size: int = field(metadata={"help": "Model width."})
    num_hidden_layers: int = field(metadata={"help": "Decoder layers."})
    num_attention_heads: int = field(metadata={"help": "Query heads (head size = hidden_size / heads)."})
    num_key_value_heads: int = field(metadata={"help": "Key/value heads (grouped-query attention, as Qwen2.5)."})
    intermediate_size: int = field(metadata={"help": "MLP width (Qwen2.5 uses ~5.4x hidden; we use ~2.7x)."})
    vocab_size: int = field(default=4000, metadata={"help": "Target BPE vocabulary, special tokens included."})
    max_position_embeddings: int = field(
        default=8192, metadata={"help": "Longest sequence (RoPE has no learned positions, so this costs nothing)."}
    )
    tie_word_embeddings: bool = field(default=True, metadata={"help": "Share input and output embeddings."})
    rope_theta: float = field(default=10000.0, metadata={"help": "RoPE base."})

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"Expect hidden_size divisible by num_attention_heads, actually: "
                             f"{self.hidden_size} / {self.num_attention_heads}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"Expect num_attention_heads divisible by num_key_value_heads, actually: "
                             f"{self.num_attention_heads} / {self.num_key_value_heads}")
        if self.vocab_size < 256 + len(SPECIAL_TOKENS):
            raise ValueError(f"Expect vocab_size >= {256 + len(SPECIAL_TOKENS)} (bytes + specials), actually: "
                             f"{self.vocab_size}")


PRESETS: dict[str, ModelPreset] = {
    "tiny": ModelPreset(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                        intermediate_size=688, vocab_size=4000),
    "micro": ModelPreset(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         intermediate_size=172, vocab_size=1000),
}


# --------------------------------------------------------------------------------------------------------------------
# Tokenizer


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4000, *, split: str = "qwen2",
                    model_max_length: int = 8192) -> Any:
    """A byte-level BPE trained on `texts`, as a `PreTrainedTokenizerFast` with the ChatML specials and template.

    `split="qwen2"` (the default) is Qwen2's pipeline: NFC, the `QWEN2_SPLIT` regex, `ByteLevel(use_regex=False)`;
    even transformers' `Qwen2Tokenizer` rebuild then gives the same ids. `split="gpt2"` uses ByteLevel's own GPT-2
    regex, which `Qwen2Tokenizer` would silently replace (kept for the tokenizer-trap test).
    Deterministic for the same texts and settings.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    if split == "qwen2":
        tok.normalizer = normalizers.NFC()  # as Qwen2's tokenizer.json (and Qwen2Tokenizer's rebuild)
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    elif split == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        raise ValueError(f"Expect split 'qwen2' or 'gpt2', actually: {split!r}")
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN,
                                        chat_template=CHATML_TEMPLATE, model_max_length=model_max_length)
    tokenizer.padding_side = "left"
    return tokenizer


def corpus_texts(corpus_dir: str | Path, splits: Sequence[str] = ("train",)) -> Iterator[str]:
    """The distinct message contents of a data directory's SFT dataset (`splits`), then its RL prompts' contents.

    Pages and prompts repeat across sessions and steps; each distinct text is yielded once.
    """
    seen: set[int] = set()
    for kind, columns in (("sft", ("messages", "prompt", "completion")), ("rl", ("prompt",))):
        for split in splits:
            dataset = load_split(corpus_dir, kind, split)  # type: ignore[arg-type]
            for messages in (m for c in columns if c in dataset.column_names for m in dataset[c]):
                for message in messages:
                    key = hash(message["content"])
                    if key not in seen:
                        seen.add(key)
                        yield message["content"]


# --------------------------------------------------------------------------------------------------------------------
# Model


def _resolve_preset(preset: str | ModelPreset) -> ModelPreset:
    if isinstance(preset, ModelPreset):
        return preset
    if preset not in PRESETS:
        raise ValueError(f"Expect a preset in {', '.join(PRESETS)}, actually: {preset!r}")
    return PRESETS[preset]


def model_config(preset: str | ModelPreset, vocab_size: int, eos_token_id: int, pad_token_id: int) -> Any:
    """The `Qwen2Config` of a preset for a tokenizer of `vocab_size` tokens (no BOS token, as Qwen2.5)."""
    from transformers import Qwen2Config

    spec = _resolve_preset(preset)
    return Qwen2Config(
        vocab_size=vocab_size, hidden_size=spec.hidden_size, num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads, num_key_value_heads=spec.num_key_value_heads,
        intermediate_size=spec.intermediate_size, max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=spec.tie_word_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": spec.rope_theta}, bos_token_id=None,
        eos_token_id=eos_token_id, pad_token_id=pad_token_id,
    )


def init_model(
    preset: str | ModelPreset,
    corpus_dir: str | Path | None,
    out_dir: str | Path,
    seed: int = 0,
    *,
    texts: Iterable[str] | None = None,
    vocab_size: int | None = None,
) -> dict[str, Any]:
    """Train a tokenizer on the corpus and write a random-init Qwen2 model with it to `out_dir`.

    `corpus_dir` is a data directory (`training.data.build_datasets`); its SFT and RL train splits are the corpus
    (the system prompt is always added). Pass `texts` instead (or as well) for another corpus. Returns a summary:
    preset, vocabulary size, parameter count, corpus size, timings; also written to `out_dir/init.json`.
    """
    import torch
    from transformers import GenerationConfig, Qwen2ForCausalLM

    spec = _resolve_preset(preset)
    if vocab_size is not None:
        spec = dataclasses.replace(spec, vocab_size=vocab_size)
    if corpus_dir is None and texts is None:
        raise ValueError("Expect a corpus: a data directory or texts, actually: neither")
    started = time.perf_counter()
    corpus: list[str] = [system_prompt()]
    if corpus_dir is not None:
        corpus.extend(corpus_texts(corpus_dir))
    if texts is not None:
        corpus.extend(texts)
    chars = sum(len(t) for t in corpus)
    if chars < 1000:
        log.warning("a tiny tokenizer corpus (%d characters): the vocabulary will be mostly bytes", chars)
    tokenizer = train_tokenizer(corpus, spec.vocab_size, model_max_length=spec.max_position_embeddings)
    tokenizer_s = time.perf_counter() - started

    torch.manual_seed(seed)
    eos_id = tokenizer.convert_tokens_to_ids(EOS_TOKEN)
    pad_id = tokenizer.convert_tokens_to_ids(PAD_TOKEN)
    config = model_config(spec, len(tokenizer), eos_id, pad_id)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=[eos_id, pad_id], pad_token_id=pad_id)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out, save_jinja_files=False)  # the template in tokenizer_config.json
    params = sum(p.numel() for p in model.parameters())
    sample = corpus[:500]
    sample_tokens = sum(len(e.ids) for e in tokenizer.backend_tokenizer.encode_batch(sample, add_special_tokens=False))
    info = {
        "preset": preset if isinstance(preset, str) else "custom",
        "architecture": dataclasses.asdict(spec),
        "seed": seed,
        "vocab_size": len(tokenizer),
        "parameters": params,
        "corpus": {"dir": str(Path(corpus_dir).resolve()) if corpus_dir is not None else None,
                   "texts": len(corpus), "characters": chars,
                   "characters_per_token": round(sum(map(len, sample)) / max(1, sample_tokens), 2)},
        "seconds": {"tokenizer": round(tokenizer_s, 2), "total": round(time.perf_counter() - started, 2)},
    }
    (out / "init.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    log.info("wrote %s: %s preset, vocab %d, %.2fM parameters", out, info["preset"], len(tokenizer), params / 1e6)
    return info
