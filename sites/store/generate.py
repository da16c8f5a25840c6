"""A deterministic synthetic catalog in WebShop's spirit: departments, brands, options, prices, ratings and reviews.

Product `i` of seed `s` is drawn from its own `random.Random` seeded by a hash of `(s, i)`, so a product never
depends on the ones before it: the first 5,000 products of a 100k catalog are the 5,000-product catalog, and the same
seed always gives the same database (bytes included, on the same SQLite version). Nothing reads the clock or global
random state.

>>> from sites.store.generate import generate_product
>>> p, reviews = generate_product(seed=0, index=0)
>>> p.asin.startswith("B0") and len(p.asin) == 10 and 1 <= len(reviews) <= 6
True
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from . import vocab as V
from .db import create_catalog_db, finalize_catalog, insert_rows
from .models import Product, Review

GENERATOR_VERSION = 1
log = logging.getLogger(__name__)

_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_EPOCH = date(2021, 1, 1).toordinal()
_REVIEW_DAYS = 1600  # reviews are dated 2021-01-01 .. mid 2025
_KEEP_CASE = frozenset({"Bluetooth", "Dolby", "Vision", "Italian", "Authentic"})
_SMALL_WORDS = frozenset({"a", "an", "and", "the", "for", "of", "with", "to", "in", "on", "or"})
_CHUNK = 2000

_KINDS_BY_DEPT: dict[str, tuple[V.Kind, ...]] = {
    d: tuple(k for k in V.KINDS if k.department == d) for d in V.DEPARTMENTS
}


def _kind_brands(kind: V.Kind) -> tuple[str, ...]:
    """Each kind is made by a fixed handful of brands, as in a real shop: its specialists and a few generalists."""
    specialists = [b for b in V.BRANDS[kind.department] if kind.key in V.SPECIALISTS.get(b, ())]
    generalists = [b for b in V.BRANDS[kind.department] if b not in V.SPECIALISTS]
    return (*specialists, *random.Random(f"brands/{kind.key}").sample(generalists, 8 - min(len(specialists), 3)))


_BRANDS_BY_KIND = {k.key: _kind_brands(k) for k in V.KINDS}


# ------------------------------------------------------------------------------------------------------------- helpers
def _hash(seed: int, index: int, salt: int = 0) -> bytes:
    return hashlib.blake2b(f"shop-r1/{seed}/{index}/{salt}".encode(), digest_size=16).digest()


def asin_for(seed: int, index: int, salt: int = 0) -> str:
    """A stable WebShop-style ASIN: "B0" and 8 base-36 characters derived from `(seed, index, salt)`."""
    n = int.from_bytes(_hash(seed, index, salt)[8:], "big")
    chars = []
    for _ in range(8):
        n, r = divmod(n, 36)
        chars.append(_BASE36[r])
    return "B0" + "".join(chars)


def _lower_adj(adj: str) -> str:
    """'Non-Slip' -> 'non-slip', 'BPA-Free' -> 'BPA-free'; acronyms and names stay: 'UV400', 'HDR', 'Bluetooth'."""
    words = []
    for word in adj.split(" "):
        if word in _KEEP_CASE:
            words.append(word)
            continue
        parts = [p.lower() if p[:1].isupper() and (p[1:].islower() or not p[1:]) else p for p in word.split("-")]
        words.append("-".join(parts))
    return " ".join(words)


def _article(word: str) -> str:
    first = word[:1]
    if word[:2].isupper() and word[:2].isalpha():  # an acronym: read by its letters ("an HDR", "a UV400")
        return "an" if first in "AEFHILMNORSX" else "a"
    if word.split(" ")[0].split("-")[0].isdigit():
        return "an" if first == "8" or word.startswith(("11", "18")) else "a"
    return "an" if first.lower() in "aeiou" and not word.lower().startswith(("uni", "use", "usb", "one")) else "a"


def _title_case(text: str, first: bool = True) -> str:
    """'gas and induction stoves' -> 'Gas and Induction Stoves'; mid-title (`first=False`) 'the office' -> 'the Office'

    Small words stay lower case, hyphenated parts are capitalised ('post-workout' -> 'Post-Workout').
    """
    out = []
    for i, word in enumerate(text.split(" ")):
        if word in _SMALL_WORDS and (i or not first):
            out.append(word)
        else:
            out.append("-".join(p[:1].upper() + p[1:] if p[:1].islower() else p for p in word.split("-")))
    return " ".join(out)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _uncap(text: str) -> str:
    """Lower-case the first letter of a sentence to continue it after a comma, except 'I' and acronyms."""
    head = text.split(" ", 1)[0]
    if head in ("I", "I'm", "I've", "I'd") or head[1:2].isupper():
        return text
    return text[:1].lower() + text[1:]


def _charm(x: float, rng: random.Random) -> float:
    """A believable shelf price near `x`: $7.49, $24.99, $349.00 ..."""
    whole = max(1, int(x))
    if whole >= 200:
        whole = whole // 10 * 10 + rng.choice((9, 9, 4))
        return float(whole) + rng.choice((0.99, 0.99, 0.0))
    return whole + rng.choice((0.99, 0.99, 0.99, 0.95, 0.49, 0.0 if whole > 20 else 0.99))


def _rating(rng: random.Random) -> float:
    """Average star rating, skewed toward 4 as on real shops, with a tail of poorly rated products."""
    r = rng.gauss(3.1, 0.7) if rng.random() < 0.1 else rng.gauss(4.35, 0.38)
    return round(min(5.0, max(1.0, r)), 1)


# ------------------------------------------------------------------------------------------------------------ products
def _options(kind: V.Kind, rng: random.Random) -> tuple[dict[str, list[str]], bool]:
    """Pick option groups and values; also say whether a price-varying group with several values was chosen."""
    if not kind.options or rng.random() >= kind.p_options:
        return {}, False
    out: dict[str, list[str]] = {}
    varies = False
    for j, spec in enumerate(kind.options):
        if j and rng.random() < 0.25:
            continue
        n = len(spec.values)
        k = min(n, rng.randint(*spec.k))
        if spec.contiguous:
            start = rng.randrange(n - k + 1)
            values = list(spec.values[start:start + k])
        else:
            values = [spec.values[x] for x in sorted(rng.sample(range(n), k))]
        out[spec.group] = values
        varies = varies or (spec.varies_price and k > 1)
    return out, varies


def _prices(kind: V.Kind, options: dict[str, list[str]], varies: bool, rng: random.Random) -> tuple[float, float]:
    lo, hi = kind.price
    base = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    price_min = _charm(base, rng)
    if varies:
        steps = max(len(v) for spec in kind.options if spec.varies_price for v in [options.get(spec.group, [])])
        price_max = _charm(base * (1 + rng.uniform(0.15, 0.45) * (steps - 1)), rng)
    elif options and rng.random() < 0.1:
        price_max = _charm(base * rng.uniform(1.1, 1.6), rng)
    else:
        return price_min, price_min
    return price_min, max(price_max, price_min + 1.0)


def _is_plural(noun: str) -> bool:
    """'Running Shoes', 'Dumbbells' are plural; 'Dumbbell Set', 'Maxi Dress', 'Trail Mix' are not."""
    last = noun.rsplit(" ", 1)[-1]
    return last.endswith("s") and not last.endswith("ss")


def _fields(kind: V.Kind, brand: str, noun: str, adj: str, attrs: dict[str, str], use: str) -> dict[str, str]:
    """The `str.format` fields shared by a product's description, bullets and reviews."""
    adj_l = _lower_adj(adj)
    a_adj = f"{_article(adj_l)} {adj_l}"
    plural = _is_plural(noun)
    noun_l = noun.lower()
    f = {
        "brand": brand, "noun": noun_l, "Noun": noun, "adj": adj_l, "Adj": adj, "a_adj": a_adj,
        "A_adj": _cap(a_adj), "a_noun": noun_l if plural else f"{_article(noun_l)} {noun_l}", "use": use,
        "Use": _title_case(use, first=False),
        "this": "these" if plural else "this", "it": "they" if plural else "it", "It": "They" if plural else "It",
        "is": "are" if plural else "is", "was": "were" if plural else "was", "them": "them" if plural else "it",
        "s": "" if plural else "s",
    }
    for key, value in attrs.items():
        f[key] = value
        f[_cap(key)] = _cap(value)
    return f


def _title(kind: V.Kind, brand: str, noun: str, adj: str, adj2: str, attrs: dict[str, str], use: str,
           rng: random.Random) -> str:
    keys = [k for k in (kind.title_attr, *kind.attrs) if k in V.TITLE_ATTRS or k and k == kind.title_attr]
    key = (kind.title_attr if kind.title_attr and rng.random() < 0.7 else rng.choice(keys)) if keys else None
    attr = _title_case(attrs[key].removeprefix("a ").removeprefix("an ")) if key else ""
    if set(attr.lower().replace("-", " ").split()) & set(f"{adj} {adj2}".lower().replace("-", " ").split()):
        attr = ""  # no "Rubber-Coated Rubber-Coated Steel"
    templates = [t for t in V.TITLES if "{attr}" not in t or
                 (attr and ("with {attr}" not in t or key in V.TITLE_WITH_ATTRS))]
    aud = f"{kind.audience} " if kind.audience else ""
    return rng.choice(templates).format(brand=brand, aud=aud, Adj=adj, Adj2=adj2, Noun=noun,
                                        Use=_title_case(use, first=False), attr=attr)


def _description(kind: V.Kind, f: dict[str, str], options: dict[str, list[str]], rng: random.Random) -> str:
    sentences = [rng.choice(V.DESC_OPENERS).format_map(f)]
    n_blurbs = rng.randint(1, min(2, len(kind.blurbs)))
    sentences += [b.format_map(f) for b in sorted(rng.sample(kind.blurbs, n_blurbs), key=kind.blurbs.index)]
    groups = [g for g in options if g in V.OPTION_SENTENCES and len(options[g]) > 1]
    if groups and len(sentences) < 4 and rng.random() < 0.6:
        values = options[groups[0]]
        sentences.append(V.OPTION_SENTENCES[groups[0]].format(
            n=len(values), first=values[0], last=values[-1], list=", ".join(values)))
    if len(sentences) < 4 and (len(sentences) < 2 or rng.random() < 0.5):
        sentences.append(rng.choice(V.DESC_CLOSERS))
    return " ".join(sentences)


def _bullets(kind: V.Kind, f: dict[str, str], rng: random.Random) -> list[str]:
    k = rng.randint(3, 5)
    generic = V.GENERIC_BULLETS[kind.department]
    n_kind = min(len(kind.bullets), k - (1 if rng.random() < 0.4 else 0))
    picked = sorted(rng.sample(range(len(kind.bullets)), n_kind))
    out = [kind.bullets[j].format_map(f) for j in picked]
    out += [b.format_map(f) for b in rng.sample(generic, min(len(generic), k - len(out)))]
    return out


def _review(kind: V.Kind, f: dict[str, str], options: dict[str, list[str]], stars: int,
            rng: random.Random) -> tuple[str, int, str, str, str]:
    """One review: (author, rating, title, body, date). Its text is tied to the kind's aspects and its star rating."""
    ctx = {**f, "time": rng.choice(V.TIMES), "who": rng.choice(V.WHO)}
    aspects = list(kind.aspects)
    if "value" not in aspects and rng.random() < 0.3:
        aspects.append("value")
    main, other = rng.sample(aspects, 2) if len(aspects) > 1 else (aspects[0], aspects[0])
    pos = lambda a: rng.choice(V.ASPECTS[a][0]).format_map(ctx)  # noqa: E731
    neg = lambda a: rng.choice(V.ASPECTS[a][1]).format_map(ctx)  # noqa: E731
    parts = [rng.choice(V.OPENERS[stars]).format_map(ctx)]
    if stars >= 4:
        parts.append(pos(main))
        if stars == 5 and rng.random() < 0.6:
            parts.append(pos(other))
        elif stars == 4 and rng.random() < 0.6:
            parts.append(rng.choice(("My only complaint: ", "One small gripe: ", "Minor issue: ")) + _uncap(neg(other)))
    elif stars == 3:
        parts.append(pos(main))
        parts.append(rng.choice(("On the other hand, ", "However, ", "But ")) + _uncap(neg(other)))
    else:
        parts.append(neg(main))
        if rng.random() < 0.5:
            parts.append(neg(other) if stars == 1 or rng.random() < 0.5 else "To be fair, " + _uncap(pos(other)))
    if options and rng.random() < 0.4:
        group = rng.choice(list(options))
        size_like = group != "size" or kind.department == "fashion"  # "size 10.5", but not "size 14 oz"
        tpl = rng.choice(V.OPTION_MENTIONS.get(group, V.OPTION_MENTION_DEFAULT) if size_like
                         else V.OPTION_MENTION_DEFAULT)
        parts.insert(1 + rng.randrange(len(parts)), tpl.format(v=rng.choice(options[group])))
    parts.append(rng.choice(V.CLOSERS[stars]).format_map(ctx))
    body = " ".join(p for p in parts if p)
    titles = V.ASPECT_TITLES.get(main)
    if titles and rng.random() < 0.4:
        title = titles[0] if stars >= 4 else titles[1] if stars <= 2 else rng.choice(V.REVIEW_TITLES[3])
    else:
        title = rng.choice(V.REVIEW_TITLES[stars])
    if rng.random() < 0.85:
        author = f"{rng.choice(V.FIRST_NAMES)} {rng.choice(V.LAST_INITIALS)}."
    else:
        author = rng.choice(V.HANDLES)
    day = date.fromordinal(_EPOCH + rng.randrange(_REVIEW_DAYS)).isoformat()
    return author, stars, title, body, day


def _product_rows(seed: int, index: int, asin: str) -> tuple[tuple, list[tuple]]:
    """Product `index` as a row tuple for `db.PRODUCT_COLUMNS` (without the id) and its review tuples."""
    rng = random.Random(int.from_bytes(_hash(seed, index)[:8], "big"))
    dept = V.DEPARTMENTS[rng.randrange(len(V.DEPARTMENTS))]
    kind = rng.choice(_KINDS_BY_DEPT[dept])
    brand = rng.choice(_BRANDS_BY_KIND[kind.key])
    noun = rng.choice(kind.nouns)
    noun_words = set(noun.lower().replace("-", " ").split())
    adjs = [a for a in kind.adjs if not noun_words & set(a.lower().replace("-", " ").split())]  # no "Cooling Cooling"
    adj, adj2 = rng.sample(adjs if len(adjs) >= 2 else kind.adjs, 2)
    attrs = {key: rng.choice(values) for key, values in kind.attrs.items()}
    use = rng.choice([u for u in kind.uses if u.split(" ")[0] not in noun.lower()] or kind.uses)
    options, varies = _options(kind, rng)
    price_min, price_max = _prices(kind, options, varies, rng)
    rating = _rating(rng)
    f = _fields(kind, brand, noun, adj, attrs, use)
    title = _title(kind, brand, noun, adj, adj2, attrs, use, rng)
    description = _description(kind, f, options, rng)
    bullets = _bullets(kind, f, rng)
    n_reviews = rng.choice((1, 2, 2, 3, 3, 3, 4, 4, 5, 6))
    review_count = max(n_reviews, min(48_000, int(rng.lognormvariate(3.6, 1.5))))
    reviews = []
    for _ in range(n_reviews):
        stars = min(5, max(1, round(rng.gauss(rating, 1.0))))
        reviews.append(_review(kind, f, options, stars, rng))
    category = " › ".join((dept, *kind.path))
    attributes = {key.replace("_", " "): value for key, value in sorted(attrs.items())}
    row = (asin, title, brand, dept, category, price_min, price_max, rating, review_count, description,
           json.dumps(bullets, ensure_ascii=False), json.dumps(options, ensure_ascii=False),
           json.dumps(attributes, ensure_ascii=False, sort_keys=True), None)
    return row, reviews


def generate_product(seed: int, index: int) -> tuple[Product, list[Review]]:
    """Product `index` of the catalog with `seed`, as typed records (slow path: for tests and tools).

    Its ASIN is the one it gets in a built catalog unless an earlier product's ASIN collided with it (vanishingly rare).
    """
    row, reviews = _product_rows(seed, index, asin_for(seed, index))
    (asin, title, brand, dept, category, pmin, pmax, rating, count, desc, bullets, options, attributes, image) = row
    product = Product(asin=asin, title=title, brand=brand, department=dept, category=category, price_min=pmin,
                      price_max=pmax, rating=rating, review_count=count, description=desc,
                      bullets=json.loads(bullets), options=json.loads(options), attributes=json.loads(attributes),
                      image=image)
    return product, [Review(author=a, rating=r, title=t, body=b, date=d) for a, r, t, b, d in reviews]


def _chunks(n_products: int, seed: int) -> Iterator[tuple[list[tuple], list[tuple]]]:
    """Rows in batches: ([(id, *product_row)], [(product_id, *review)]). ASINs are deduplicated in order."""
    seen: set[str] = set()
    products: list[tuple] = []
    reviews: list[tuple] = []
    for i in range(n_products):
        salt = 0
        asin = asin_for(seed, i)
        while asin in seen:  # ~1 in 500 catalogs of 100k has a collision: re-derive deterministically
            salt += 1
            asin = asin_for(seed, i, salt)
        seen.add(asin)
        row, revs = _product_rows(seed, i, asin)
        pid = i + 1
        products.append((pid, *row))
        reviews.extend((pid, *r) for r in revs)
        if len(products) >= _CHUNK:
            yield products, reviews
            products, reviews = [], []
    if products:
        yield products, reviews


def build_catalog(out: str | Path, n_products: int, seed: int, progress: bool = False) -> str:
    """Generate `n_products` products with `seed` into a fresh catalog database at `out`; return a short summary."""
    if n_products < 1:
        raise ValueError(f"Expect n_products >= 1, actually: {n_products}")
    t0 = time.perf_counter()
    conn = create_catalog_db(out)
    n_reviews = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_products, unit="product", desc="generating catalog")
    try:
        for products, reviews in _chunks(n_products, seed):
            insert_rows(conn, products, reviews)
            n_reviews += len(reviews)
            if bar is not None:
                bar.update(len(products))
        t1 = time.perf_counter()
        if bar is not None:
            bar.set_description("indexing catalog")
        finalize_catalog(conn, {"source": "synthetic", "generator_version": str(GENERATOR_VERSION),
                                "seed": str(seed), "n_products": str(n_products)})
    finally:
        if bar is not None:
            bar.close()
    t2 = time.perf_counter()
    log.info("generated %d products in %.1fs, indexed in %.1fs", n_products, t1 - t0, t2 - t1)
    return (f"{n_products:,} products, {n_reviews:,} reviews, {len(V.DEPARTMENTS)} departments, seed {seed},"
            f" {t2 - t0:.1f}s")
