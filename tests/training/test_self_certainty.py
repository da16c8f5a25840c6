"""Self-certainty: the formula against brute force, the alignment on a tiny random Qwen2, the temperature, and the
rationale's token span on unicode and escaped quotes."""

from __future__ import annotations

import doctest
import json
import math

import pytest
import torch

import training.self_certainty
from training.self_certainty import (
    policy_self_certainty,
    rationale_span,
    rationale_token_mask,
    rationale_token_masks,
    self_certainty,
    token_self_certainty,
)

QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
RATIONALES = [
    "These boots look waterproof, I'll open them.",
    'The reviews say "runs small", so I\'ll pick the next size.',
    "Ça coûte 49 €, c'est trop cher — je pars. 😀",
    "Path C:\\boots\\new is odd; tab\there and a newline\nthen more.",
    "I want the navy one.",
]
ACTIONS = [
    {"type": "click", "name": "search_results.acme_trail_runner.title"},
    {"type": "type_and_submit", "name": "search_input", "text": "waterproof hiking boots"},
    {"type": "terminate"},
]
PROMPT = "<|im_start|>user\n<input name='search_input'/> <a name='nav_bar.homepage'>Home</a><|im_end|>\n" \
         "<|im_start|>assistant\n"


def step_json(rationale: str, action: dict, *, ascii_only: bool = False) -> str:
    return json.dumps({"rationale": rationale, "action": action}, ensure_ascii=ascii_only)


def build_tokenizer():
    """A byte-level BPE (Qwen2's pre-tokenizer split) trained on shopper steps, with ChatML special tokens."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    corpus = [step_json(r, a, ascii_only=flag) for r in RATIONALES for a in ACTIONS for flag in (False, True)]
    tok.train_from_iterator(corpus * 3 + [PROMPT], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")


def build_model(tokenizer):
    """A random-init 2-layer Qwen2ForCausalLM with hidden size 32."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         intermediate_size=64, vocab_size=len(tokenizer), max_position_embeddings=1024,
                         tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id)
    return Qwen2ForCausalLM(config).eval()


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="module")
def model(tokenizer):
    return build_model(tokenizer)


def brute_kl_uniform(z: torch.Tensor, temperature: float) -> float:
    """KL(U || softmax(z / T)) = sum_j (1/V) * log((1/V) / p_j), with an explicit loop over the vocabulary."""
    probs = torch.softmax(z.double() / temperature, dim=-1)
    vocab = z.shape[-1]
    return sum((1 / vocab) * math.log((1 / vocab) / probs[j].item()) for j in range(vocab))


def test_doctests() -> None:
    assert doctest.testmod(training.self_certainty).failed == 0


class TestTokenSelfCertainty:
    @pytest.mark.parametrize("temperature", [1.0, 0.6, 2.5])
    def test_matches_brute_force_and_torch_distributions(self, temperature: float) -> None:
        torch.manual_seed(1)
        logits = torch.randn(2, 3, 17) * 3
        got = token_self_certainty(logits, temperature)
        assert got.shape == (2, 3)
        for b in range(2):
            for i in range(3):
                assert got[b, i].item() == pytest.approx(brute_kl_uniform(logits[b, i], temperature), rel=1e-5)
        uniform = torch.distributions.Categorical(probs=torch.full((17,), 1 / 17))
        policy = torch.distributions.Categorical(logits=logits / temperature)
        expected = torch.distributions.kl_divergence(uniform, policy)
        assert torch.allclose(got, expected.float(), atol=1e-5)

    def test_formula_in_log_probs(self) -> None:
        # -log|V| - (1/|V|) sum_j log p_j
        logits = torch.randn(5, 11, dtype=torch.float64)
        logp = torch.log_softmax(logits, dim=-1)
        expected = -math.log(11) - logp.mean(dim=-1)
        assert torch.allclose(token_self_certainty(logits), expected)

    def test_temperature_divides_logits(self) -> None:
        logits = torch.randn(4, 9)
        assert torch.allclose(token_self_certainty(logits, 0.6), token_self_certainty(logits / 0.6, 1.0))
        # a lower temperature sharpens p: more certain
        assert (token_self_certainty(logits, 0.5) > token_self_certainty(logits, 1.0)).all()

    def test_non_negative_and_zero_when_uniform(self) -> None:
        assert (token_self_certainty(torch.randn(100, 7) * 10) >= 0).all()
        assert token_self_certainty(torch.full((3, 8), 4.2)).abs().max() == 0

    def test_half_precision_is_upcast(self) -> None:
        logits = torch.randn(3, 50)
        got = token_self_certainty(logits.bfloat16())
        assert got.dtype == torch.float32
        assert torch.allclose(got, token_self_certainty(logits.bfloat16().float()))

    @pytest.mark.parametrize("temperature", [0, -1.0, float("nan"), float("inf")])
    def test_bad_temperature(self, temperature: float) -> None:
        with pytest.raises(ValueError, match="Expect"):
            token_self_certainty(torch.zeros(1, 3), temperature)


class TestSelfCertaintyOnTinyModel:
    TEMPERATURE = 0.6

    def encode(self, tokenizer, text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    def test_alignment_matches_brute_force(self, tokenizer, model) -> None:
        completion = step_json(RATIONALES[1], ACTIONS[0]) + "<|im_end|>"
        prompt_ids, completion_ids = self.encode(tokenizer, PROMPT), self.encode(tokenizer, completion)
        mask = rationale_token_mask(completion, completion_ids, tokenizer)
        assert 0 < mask.sum() < len(completion_ids)
        input_ids = torch.tensor([prompt_ids + completion_ids])
        with torch.no_grad():
            logits = model(input_ids=input_ids).logits  # [1, P + C, V]
        P = len(prompt_ids)

        # brute force: completion token k is predicted by the logits at position P + k - 1
        positions = [k for k in range(len(completion_ids)) if mask[k]]
        brute = [brute_kl_uniform(logits[0, P + k - 1], self.TEMPERATURE) for k in positions]
        expected = sum(brute) / len(brute)

        ids = torch.tensor([completion_ids])
        got = self_certainty(logits, ids, mask[None], self.TEMPERATURE)
        assert got.shape == (1,)
        assert got.item() == pytest.approx(expected, rel=1e-5)

        # the same from already-aligned logits, and from the last C + 1 positions only
        aligned = logits[:, P - 1 : P + len(completion_ids) - 1]
        assert self_certainty(aligned, ids, mask[None], self.TEMPERATURE, shifted=True).item() == pytest.approx(
            expected, rel=1e-5)
        tail = logits[:, -(len(completion_ids) + 1) :]
        assert self_certainty(tail, ids, mask[None], self.TEMPERATURE).item() == pytest.approx(expected, rel=1e-5)

        # off by one (position P + k: the logits *at* the token) is a different number
        wrong = logits[:, P : P + len(completion_ids)]
        off = self_certainty(wrong, ids, mask[None], self.TEMPERATURE, shifted=True).item()
        assert off != pytest.approx(expected, rel=1e-3)
        brute_off = [brute_kl_uniform(logits[0, P + k], self.TEMPERATURE) for k in positions]
        assert off == pytest.approx(sum(brute_off) / len(brute_off), rel=1e-5)

        # the temperature matters and is applied to the logits
        at_one = self_certainty(logits, ids, mask[None], 1.0).item()
        assert at_one != pytest.approx(expected, rel=1e-3)
        assert self_certainty(logits / self.TEMPERATURE, ids, mask[None], 1.0).item() == pytest.approx(expected,
                                                                                                        rel=1e-5)

        # the policy helper (logits_to_keep = C + 1, no gradients) agrees
        helper = policy_self_certainty(model, input_ids, torch.ones_like(input_ids), mask[None], self.TEMPERATURE)
        assert helper.item() == pytest.approx(expected, rel=1e-4)

    def test_padded_batch(self, tokenizer, model) -> None:
        """Left-padded prompts, right-padded completions (TRL's layout): each row equals its unpadded score."""
        prompts = [PROMPT, "<|im_start|>assistant\n"]
        completions = [step_json(RATIONALES[0], ACTIONS[1]), step_json(RATIONALES[2], ACTIONS[2]) + "<|im_end|>"]
        p_ids = [self.encode(tokenizer, p) for p in prompts]
        c_ids = [self.encode(tokenizer, c) for c in completions]
        P, C = max(map(len, p_ids)), max(map(len, c_ids))
        pad = tokenizer.pad_token_id
        rows, attn = [], []
        for p, c in zip(p_ids, c_ids, strict=True):
            rows.append([pad] * (P - len(p)) + p + c + [pad] * (C - len(c)))
            attn.append([0] * (P - len(p)) + [1] * (len(p) + len(c)) + [0] * (C - len(c)))
        input_ids, attention_mask = torch.tensor(rows), torch.tensor(attn)
        masks = rationale_token_masks(completions, c_ids, tokenizer, length=C)
        assert masks.shape == (2, C)
        batched = policy_self_certainty(model, input_ids, attention_mask, masks, self.TEMPERATURE, batch_size=1)
        for row, (p, c) in enumerate(zip(p_ids, c_ids, strict=True)):
            single_ids = torch.tensor([p + c])
            single = policy_self_certainty(model, single_ids, torch.ones_like(single_ids),
                                           masks[row : row + 1, : len(c)], self.TEMPERATURE)
            assert batched[row].item() == pytest.approx(single.item(), rel=1e-4)

    def test_empty_mask_gives_zero(self, tokenizer, model) -> None:
        logits = torch.randn(2, 6, 10)
        ids = torch.zeros(2, 4, dtype=torch.long)
        mask = torch.tensor([[False] * 4, [False, True, True, False]])
        got = self_certainty(logits, ids, mask, 1.0)
        assert got[0].item() == 0.0
        expected = token_self_certainty(logits[1, 2:4]).mean()  # positions 1+1, 2+1 predict tokens 1, 2
        assert got[1].item() == pytest.approx(expected.item(), rel=1e-6)

    def test_shape_errors(self) -> None:
        ids = torch.zeros(1, 4, dtype=torch.long)
        mask = torch.ones(1, 4, dtype=torch.bool)
        with pytest.raises(ValueError, match=r"at least 5 positions\), actually: 4; pass shifted=True"):
            self_certainty(torch.zeros(1, 4, 3), ids, mask, 1.0)
        with pytest.raises(ValueError, match="Expect shifted logits with 4 positions"):
            self_certainty(torch.zeros(1, 5, 3), ids, mask, 1.0, shifted=True)
        with pytest.raises(ValueError, match="Expect mask of shape"):
            self_certainty(torch.zeros(1, 5, 3), ids, mask[:, :3], 1.0)


def selected_text(tokenizer, ids: list[int], mask: torch.Tensor) -> str:
    chosen = [i for i, m in zip(ids, mask.tolist(), strict=True) if m]
    return tokenizer.decode(chosen, clean_up_tokenization_spaces=False)


def brute_mask(tokenizer, text: str, ids: list[int], literal: str) -> list[bool]:
    """Reference: each token's character range from decoding growing prefixes; a token is in when it overlaps
    the literal's contents (the first occurrence of the JSON string literal after the key)."""
    key = text.index('"rationale"')
    start = text.index(literal, key) + 1
    end = start + len(literal) - 2
    out, previous = [], 0
    for k in range(1, len(ids) + 1):
        length = len(tokenizer.decode(ids[:k], clean_up_tokenization_spaces=False).rstrip("\ufffd"))
        length = max(length, previous)
        lo, hi = previous, length
        out.append((lo < end and hi > start) if hi > lo else (start <= lo < end))
        previous = length
    return out


class TestRationaleMask:
    @pytest.mark.parametrize("rationale", RATIONALES)
    @pytest.mark.parametrize("ascii_only", [False, True])
    def test_selects_exactly_the_rationale_tokens(self, tokenizer, rationale: str, ascii_only: bool) -> None:
        text = step_json(rationale, ACTIONS[1], ascii_only=ascii_only) + "<|im_end|>"
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        mask = rationale_token_mask(text, ids, tokenizer)
        literal = json.dumps(rationale, ensure_ascii=ascii_only)  # the string literal as written, quotes included
        inner = literal[1:-1]
        assert mask.tolist() == brute_mask(tokenizer, text, ids, literal)
        chosen = selected_text(tokenizer, ids, mask)
        # the selected tokens cover the literal's contents and nothing beyond its quotes
        assert inner in chosen
        assert chosen.startswith(inner) or chosen.startswith('"' + inner[:1])
        assert chosen.endswith(inner) or chosen.endswith(inner[-1:] + '"') or chosen.endswith(inner[-1:] + '",')
        # contiguous
        where = mask.nonzero().flatten().tolist()
        assert where == list(range(where[0], where[-1] + 1))
        # dropping either end token loses part of the rationale
        first, last = where[0], where[-1]
        assert inner not in selected_text(tokenizer, ids, mask & (torch.arange(len(ids)) != first))
        assert inner not in selected_text(tokenizer, ids, mask & (torch.arange(len(ids)) != last))

    def test_escaped_quotes_stay_inside(self, tokenizer) -> None:
        text = step_json('He said "cheap" and \\"left\\"', ACTIONS[2])
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        chosen = selected_text(tokenizer, ids, rationale_token_mask(text, ids, tokenizer))
        assert 'He said \\"cheap\\" and \\\\\\"left\\\\\\"' in chosen
        assert "action" not in chosen and "rationale" not in chosen

    def test_non_canonical_ids_use_prefix_decoding(self, tokenizer) -> None:
        """Sampled ids need not be the tokenizer's own split: here every character is its own token(s)."""
        text = step_json(RATIONALES[2], ACTIONS[0])
        ids = [i for ch in text for i in tokenizer(ch, add_special_tokens=False)["input_ids"]]
        assert ids != tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == text
        mask = rationale_token_mask(text, ids, tokenizer)
        assert mask.tolist() == brute_mask(tokenizer, text, ids, json.dumps(RATIONALES[2], ensure_ascii=False))
        assert selected_text(tokenizer, ids, mask) == RATIONALES[2]  # one token per character: exactly the contents

    def test_key_order_and_chatter(self, tokenizer) -> None:
        rationale = "I'll search."
        text = 'Sure {ok}! ```json\n' + json.dumps({"action": ACTIONS[1], "rationale": rationale}) + "\n```"
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert rationale in selected_text(tokenizer, ids, rationale_token_mask(text, ids, tokenizer))

    def test_picks_the_object_the_format_check_read(self, tokenizer) -> None:
        bad = json.dumps({"rationale": "first draft", "action": {"type": "buy"}})
        good = step_json("final answer", ACTIONS[2])
        text = bad + "\n" + good
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        chosen = selected_text(tokenizer, ids, rationale_token_mask(text, ids, tokenizer))
        assert "final answer" in chosen and "first draft" not in chosen
        # without the completion text, the first rationale wins
        chosen = selected_text(tokenizer, ids, rationale_token_mask(None, ids, tokenizer))
        assert "first draft" in chosen

    @pytest.mark.parametrize(
        "text",
        [
            json.dumps({"action": ACTIONS[2]}),  # no rationale
            '{"rationale": "I want to se',  # truncated: unterminated string
            json.dumps({"action": {"type": "terminate", "rationale": "nested"}}),  # not top-level
            json.dumps({"rationale": "", "action": ACTIONS[2]}),  # empty
            json.dumps({"rationale": ["a list"], "action": ACTIONS[2]}),  # not a string
            "no json at all",
        ],
    )
    def test_no_rationale_selects_nothing(self, tokenizer, text: str) -> None:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert not rationale_token_mask(text, ids, tokenizer).any()

    def test_empty_and_tensor_ids(self, tokenizer) -> None:
        assert rationale_token_mask("", [], tokenizer).shape == (0,)
        text = step_json("Fine.", ACTIONS[2])
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert torch.equal(rationale_token_mask(text, torch.tensor(ids), tokenizer),
                           rationale_token_mask(text, ids, tokenizer))

    def test_batch_masks_are_right_padded(self, tokenizer) -> None:
        texts = [step_json("Short.", ACTIONS[2]), step_json(RATIONALES[0], ACTIONS[0])]
        ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        masks = rationale_token_masks(texts, ids, tokenizer)
        assert masks.shape == (2, max(map(len, ids)))
        assert not masks[0, len(ids[0]) :].any()
        with pytest.raises(ValueError, match="Expect completions of at most 3 tokens"):
            rationale_token_masks(texts, ids, tokenizer, length=3)

    def test_span_helper(self) -> None:
        text = '{"rationale": "a\\"b", "action": {"type": "terminate"}}'
        start, end = rationale_span(text)
        assert text[start:end] == 'a\\"b'
        assert rationale_span(text, expected="other") is None
