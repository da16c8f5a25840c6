"""Who shops: personas with intents, sampled from a catalog or read from a JSONL file."""

from __future__ import annotations

import random
from pathlib import Path

from .persona import Intent, PersonaIntent, load_persona_intents, sample_personas

FREE_TEXT_SHARE = 0.5
"""The default share of sampled intents written as free text (`Intent.from_product(free_text=True)`): training data
holds both the tidy one-sentence intents and requests phrased the way people type them."""


def sample_from_catalog(catalog_path: str | Path, n: int, seed: int = 0, *,
                        free_text_share: float = FREE_TEXT_SHARE) -> list[PersonaIntent]:
    """`n` persona/intent pairs: each intent is inspired by a catalog product, phrased as a shopper would say it.

    Deterministic for a given catalog and seed. Products are drawn without replacement while they last. A share
    `free_text_share` (0 to 1) of the intents is written as free text; which ones is drawn from its own stream, so
    `free_text_share=0` gives exactly the intents of the tidy style alone, and the hidden fields (`target_asin`,
    `keywords`, `max_price`, `options`) of every intent are the same whatever the share.
    """
    if not 0.0 <= free_text_share <= 1.0:
        raise ValueError(f"Expect free_text_share in [0, 1], actually: {free_text_share}")
    from sites.store.catalog import Catalog

    catalog = Catalog(catalog_path)
    rng = random.Random(seed)
    style_rng = random.Random(f"free-text:{seed}")
    total = len(catalog)
    if total == 0:
        raise ValueError(f"{catalog_path} has no products to draw intents from")
    brands = catalog.brands()
    personas = sample_personas(n, seed, brands=brands) if brands else sample_personas(n, seed)
    picks = rng.sample(range(total), n) if n <= total else [rng.randrange(total) for _ in range(n)]
    out = []
    for persona, idx in zip(personas, picks, strict=True):
        product = catalog.product_at(idx)
        options = {g: rng.choice(vals) for g, vals in product.options.items() if vals and rng.random() < 0.5}
        intent = Intent.from_product(title=product.title, brand=product.brand, department=product.department,
                                     price=product.price_min, options=options, asin=product.asin,
                                     seed=random.Random(rng.getrandbits(64)),
                                     free_text=style_rng.random() < free_text_share)
        out.append(PersonaIntent(persona=persona, intent=intent))
    return out


def load_population(path: str | Path) -> list[PersonaIntent]:
    """Persona/intent pairs from a JSONL file of `{"persona": {...}, "intent": {...}}` lines."""
    return load_persona_intents(path)
