"""Who shops: personas with intents, drawn from a list of products or read from a JSONL file.

Nothing here opens a catalog: the products come in as arguments (any records with a title, brand, department,
lowest price, options and id), so any site's product export will do (`agent.runtime.products.load_products` reads one
from a JSONL file or a `/api/products` URL; `sample_from_products` draws from it). `agent.wiring.sample_from_catalog`
draws them from the local store's catalog.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from agent.policy.persona import Intent, PersonaIntent, load_persona_intents, sample_personas

__all__ = ["FREE_TEXT_SHARE", "ProductRecord", "featured_population", "load_population", "sample_from_products",
           "sample_population"]

FREE_TEXT_SHARE = 0.5
"""The default share of sampled intents written as free text (`Intent.from_product(free_text=True)`): training data
holds both the tidy one-sentence intents and requests phrased the way people type them."""


class ProductRecord(Protocol):
    """What an intent is written from: the fields of one product of a site's catalog."""

    @property
    def asin(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def brand(self) -> str: ...
    @property
    def department(self) -> str: ...
    @property
    def price_min(self) -> float: ...
    @property
    def options(self) -> Mapping[str, Sequence[str]]: ...


def sample_population(n: int, seed: int = 0, *, total: int, product_at: Callable[[int], ProductRecord],
                      brands: Sequence[str] = (), free_text_share: float = FREE_TEXT_SHARE) -> list[PersonaIntent]:
    """`n` persona/intent pairs: each intent is inspired by one of `total` products (`product_at(i)` is the i-th),
    phrased as a shopper would say it; `brands` (every brand of the catalog) feed the personas' brand tastes.

    Deterministic for a given product list and seed. Products are drawn without replacement while they last. A share
    `free_text_share` (0 to 1) of the intents is written as free text; which ones is drawn from its own stream, so
    `free_text_share=0` gives exactly the intents of the tidy style alone, and the hidden fields (`target_asin`,
    `keywords`, `max_price`, `options`) of every intent are the same whatever the share.
    """
    if not 0.0 <= free_text_share <= 1.0:
        raise ValueError(f"Expect free_text_share in [0, 1], actually: {free_text_share}")
    if total <= 0:
        raise ValueError("Expect products to draw intents from, actually: none")
    rng = random.Random(seed)
    style_rng = random.Random(f"free-text:{seed}")
    personas = sample_personas(n, seed, brands=list(brands)) if brands else sample_personas(n, seed)
    picks = rng.sample(range(total), n) if n <= total else [rng.randrange(total) for _ in range(n)]
    out = []
    for persona, idx in zip(personas, picks, strict=True):
        product = product_at(idx)
        options = {g: rng.choice(vals) for g, vals in product.options.items() if vals and rng.random() < 0.5}
        intent = Intent.from_product(title=product.title, brand=product.brand, department=product.department,
                                     price=product.price_min, options=options, asin=product.asin,
                                     seed=random.Random(rng.getrandbits(64)),
                                     free_text=style_rng.random() < free_text_share)
        out.append(PersonaIntent(persona=persona, intent=intent))
    return out


def sample_from_products(products: Sequence[ProductRecord], n: int, seed: int = 0, *,
                         free_text_share: float = FREE_TEXT_SHARE) -> list[PersonaIntent]:
    """`n` persona/intent pairs drawn from `products` (a site's product export, in its order) by `sample_population`,
    with every brand of the products, sorted, for the personas' tastes. For a catalog's products in catalog order,
    the same pairs as `agent.wiring.sample_from_catalog` draws from that catalog with the same seed."""
    return sample_population(n, seed, total=len(products), product_at=products.__getitem__,
                             brands=sorted({p.brand for p in products}), free_text_share=free_text_share)


def featured_population(products: Sequence[ProductRecord], n: int, seed: int) -> list[PersonaIntent]:
    """`n` sampled personas, each with an intent written from one of `products` in turn (the first option of each
    option group)."""
    if not products:
        raise ValueError("the catalog has no products to write intents from")
    items = []
    for i, persona in enumerate(sample_personas(n, seed)):
        p = products[i % len(products)]
        intent = Intent.from_product(title=p.title, brand=p.brand, department=p.department, price=p.price_min,
                                     options={k: v[0] for k, v in p.options.items() if v}, asin=p.asin,
                                     seed=seed * 100_003 + i)
        items.append(PersonaIntent(persona=persona, intent=intent))
    return items


def load_population(path: str | Path) -> list[PersonaIntent]:
    """Persona/intent pairs from a JSONL file of `{"persona": {...}, "intent": {...}}` lines."""
    return load_persona_intents(path)
