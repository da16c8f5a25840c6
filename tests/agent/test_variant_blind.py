"""Shoppers are blind to store variants: nothing in `agent/` or `envs/` branches on a variant's name.

A shopper that knew it was on `slow` or `price-shock` could "react" without reading the page, and a UX test built on
it would measure nothing. The variants' names live in `sites.store.variants`; the agent and env code may pass a
name through (the CLI's typed choice, the embedded store) but never write one down or compare against one.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest

from sites.store.variants import VARIANT_NAMES

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("agent", "envs")


def _sources() -> list[Path]:
    files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    assert len(files) > 20, "the agent and envs sources were found"
    return files


def _literals(tree: ast.AST) -> list[ast.Constant]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _mentions_variant(node: ast.AST) -> bool:
    return "variant" in ast.unparse(node).lower()


def branches_on_variant(source: str) -> list[str]:
    """Where `source` names a variant: any string literal equal to a multi-letter variant name, and any comparison,
    membership test or subscript that puts a variant-ish expression next to a one-letter variant name ("a", "b")."""
    tree = ast.parse(source)
    found = [f"line {c.lineno}: {c.value!r}" for c in _literals(tree) if c.value in VARIANT_NAMES and len(c.value) > 1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_mentions_variant(s) for s in sides):
                names = [c.value for s in sides for c in _literals(s) if c.value in VARIANT_NAMES]
                found += [f"line {node.lineno}: compares a variant with {n!r}" for n in names]
        elif isinstance(node, ast.Subscript) and _mentions_variant(node.value):
            names = [c.value for c in _literals(node.slice) if c.value in VARIANT_NAMES]
            found += [f"line {node.lineno}: looks up variant {n!r}" for n in names]
        elif isinstance(node, ast.match_case) and isinstance(node.pattern, ast.MatchValue):
            value = node.pattern.value
            if isinstance(value, ast.Constant) and value.value in VARIANT_NAMES:
                found.append(f"line {node.pattern.lineno}: matches variant {value.value!r}")
    return found


def test_the_check_catches_a_shopper_that_peeks():
    assert branches_on_variant('if variant == "slow":\n    leave()\n')
    assert branches_on_variant('x = "price-shock"\n')
    assert branches_on_variant('if cfg.variant in ("a", "b"):\n    pass\n')
    assert branches_on_variant('spec = VARIANTS["hidden-search"]\n')
    assert branches_on_variant('match variant:\n    case "b":\n        pass\n')
    assert not branches_on_variant('arm = "a"\nfor name in ("a", "b"):\n    pass\n')  # A/B arms are not variants


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_agent_or_env_code_branches_on_a_variant_name(path: Path):
    source = path.read_text(encoding="utf-8")
    assert branches_on_variant(source) == [], path


def test_no_agent_or_env_string_token_is_a_variant_name():
    """The same, token by token (f-strings and docstrings included): a variant's name never appears quoted."""
    quoted = {f'"{n}"' for n in VARIANT_NAMES if len(n) > 1} | {f"'{n}'" for n in VARIANT_NAMES if len(n) > 1}
    for path in _sources():
        for tok in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline):
            if tok.type == tokenize.STRING or getattr(tokenize, "FSTRING_MIDDLE", -1) == tok.type:
                assert not any(q in tok.string or q.strip("\"'") == tok.string for q in quoted), (path, tok.start)
