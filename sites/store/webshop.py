"""Import WebShop's scraped product JSON (`items_shuffle*.json`) into a catalog database.

WebShop (Yao et al., 2022) ships products as a JSON list of objects with `asin`, `name`, `full_description`,
`small_description` (bullets: a list, or one string), `category`, `query`, `product_category` ("a › b › c"),
`pricing` ("$x" or "$x - $y"; a list of numbers in some dumps), `customization_options` ({group: [{"value", "image"}]}
or null), `images`, and sometimes `average_rating` and `Reviews`/`reviews`. Its own loader draws a random price for
products without one on every start; here such products are skipped with a warning, and everything that is derived
(a missing rating or review count) comes from a hash of the ASIN, so an import is the same every time.

>>> parse_price("$1,299.00 - $1,499.99")
(1299.0, 1499.99)
>>> parse_price("call for price") is None
True
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .db import create_catalog_db, finalize_catalog, insert_rows, product_row
from .models import Product, Review

log = logging.getLogger(__name__)

# WebShop's `category` values and Amazon's top-level product categories, mapped onto the store's departments.
DEPARTMENTS = {
    "beauty": "beauty", "beauty & personal care": "beauty", "health & household": "beauty",
    "premium beauty": "beauty", "luxury beauty": "beauty",
    "electronics": "electronics", "cell phones & accessories": "electronics", "computers": "electronics",
    "computers & accessories": "electronics", "camera & photo": "electronics",
    "fashion": "fashion", "clothing, shoes & jewelry": "fashion", "clothing": "fashion", "shoes": "fashion",
    "food": "grocery", "grocery": "grocery", "grocery & gourmet food": "grocery",
    "furniture": "home & furniture", "home & kitchen": "home & furniture", "home": "home & furniture",
    "home & furniture": "home & furniture", "tools & home improvement": "home & furniture",
    "sports & outdoors": "sports & outdoors", "sports": "sports & outdoors",
}
MAX_BULLETS = 10
MAX_REVIEWS = 20
MAX_OPTION_VALUES = 60
MAX_WARNINGS_PER_REASON = 20  # then one summary line per reason: a full dump skips thousands
_NUMBER = r"\$?\s*(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
_PRICE_TEXT = re.compile(rf"{_NUMBER}(?:\s*(?:-|–|to)\s*{_NUMBER})?", re.IGNORECASE)
_RATING = re.compile(r"(\d+(?:\.\d+)?)")
_BRAND_PREFIX = re.compile(r"^\s*brand\s*[:：]\s*(.+)$", re.IGNORECASE)
_WORD = re.compile(r"[\w&'.-]+", re.UNICODE)
_EPOCH = dt.date(2019, 1, 1).toordinal()


# ------------------------------------------------------------------------------------------------------------- parsing
def parse_price(value: Any) -> tuple[float, float] | None:
    """`"$x"`, `"$x - $y"` (commas allowed), a number, or a list of numbers -> (low, high); None when unusable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        numbers = [float(value)]
    elif isinstance(value, list | tuple):
        numbers = []
        for v in value:
            got = parse_price(v)
            if got is None:
                return None
            numbers.extend(got)
    elif isinstance(value, str):
        # The whole text must be one price or a range: "$5 or best offer" is malformed, not $5.
        m = _PRICE_TEXT.fullmatch(value.strip())
        if m is None:
            return None
        numbers = [float(g.replace(",", "")) for g in m.groups() if g is not None]
    else:
        return None
    if not numbers or any(not math.isfinite(n) or n < 0 for n in numbers):
        return None
    return min(numbers), max(numbers)


def _unit(asin: str, salt: str) -> float:
    """A number in [0, 1) derived from the ASIN alone: the same on every import."""
    digest = hashlib.sha256(f"{salt}:{asin}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def derived_rating(asin: str) -> float:
    """A stand-in average rating for a product that has none, skewed toward 4 stars like real shops."""
    return round(min(5.0, 3.0 + 2.0 * math.sqrt(_unit(asin, "rating"))), 1)


def derived_review_count(asin: str) -> int:
    return int(10 ** (0.5 + 3.5 * _unit(asin, "reviews")))


def _rating(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        r = float(value)
    elif isinstance(value, str) and (m := _RATING.search(value)):  # "4.5 out of 5 stars"
        r = float(m.group(1))
    else:
        return None
    return r if 0 <= r <= 5 else None


def _count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    if isinstance(value, str):
        digits = value.replace(",", "").strip().split(" ")[0]
        return int(digits) if digits.isdigit() else None
    return None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, list):
        return " ".join(_text(v) for v in value if v)
    return ""


def _bullets(value: Any) -> list[str]:
    items = value.splitlines() if isinstance(value, str) else value if isinstance(value, list) else []
    out = []
    for item in items:
        text = _text(item).lstrip("•-*· ").strip()
        if text and text not in out:
            out.append(text)
    return out[:MAX_BULLETS]


def _options(value: Any) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        return {}
    out: dict[str, list[str]] = {}
    for group, entries in value.items():
        name = _text(group).lower()
        if not name or not isinstance(entries, list):
            continue
        values: list[str] = []
        for entry in entries:
            raw = entry.get("value") if isinstance(entry, dict) else entry
            text = _text(raw) if isinstance(raw, str) else str(raw) if isinstance(raw, int | float) else ""
            if text and text not in values:
                values.append(text)
        if values:
            out[name] = values[:MAX_OPTION_VALUES]
    return out


def _attributes(item: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key in ("attributes", "product_information", "details"):
        block = item.get(key)
        if isinstance(block, dict):
            for k, v in block.items():
                if isinstance(k, str) and isinstance(v, str | int | float) and _text(k) and _text(str(v)):
                    out.setdefault(_text(k), _text(str(v)))
    return out


def _brand(item: dict[str, Any], attributes: dict[str, str], bullets: list[str], name: str) -> str:
    for key in ("brand", "Brand"):
        if isinstance(item.get(key), str) and item[key].strip():
            return _text(item[key])
    for key, value in attributes.items():
        if key.lower() == "brand":
            return value
    for bullet in bullets:
        if m := _BRAND_PREFIX.match(bullet):
            return m.group(1).strip()
    word = _WORD.search(name)
    return word.group(0).strip("-.'") or "Generic" if word else "Generic"


def _department(item: dict[str, Any], category: str) -> str:
    for raw in (item.get("category"), category.split("›")[0] if category else None):
        if isinstance(raw, str) and raw.strip():
            key = " ".join(raw.lower().split())
            return DEPARTMENTS.get(key, key)
    return "other"


def _reviews(value: Any, asin: str) -> list[Review]:
    """Reviews given as objects with a score and a text; a missing date is derived from the ASIN (ISO, 2019-2023)."""
    if not isinstance(value, list):
        return []
    out = []
    for n, entry in enumerate(value[:MAX_REVIEWS]):
        if not isinstance(entry, dict):
            continue
        stars = _rating(entry.get("score", entry.get("rating", entry.get("stars"))))
        body = _text(entry.get("body", entry.get("text", entry.get("review", ""))))
        if stars is None or not body:
            continue
        date = entry.get("date")
        if not (isinstance(date, str) and re.fullmatch(r"\d{4}-\d\d-\d\d", date)):
            day = _EPOCH + int(_unit(asin, f"review-date-{n}") * 5 * 365)
            date = dt.date.fromordinal(day).isoformat()
        try:
            out.append(Review(author=_text(entry.get("author", entry.get("user", ""))) or "Verified Buyer",
                              rating=min(5, max(1, round(stars))), title=_text(entry.get("title", "")) or body[:60],
                              body=body, date=date))
        except ValidationError:
            continue
    return out


def webshop_product(item: Any) -> tuple[Product, list[Review]] | str:
    """One WebShop item as a product and its reviews, or the reason it is skipped."""
    if not isinstance(item, dict):
        return "not an object"
    asin = _text(item.get("asin"))
    name = _text(item.get("name", item.get("title")))
    if not asin:
        return "no asin"
    if not name:
        return "no name"
    price = parse_price(item.get("pricing", item.get("price")))
    if price is None:
        return "no price" if item.get("pricing", item.get("price")) in (None, "", []) else "malformed price"
    bullets = _bullets(item.get("small_description"))
    category = _text(item.get("product_category")) or _text(item.get("category"))
    attributes = _attributes(item)
    reviews = _reviews(item.get("Reviews", item.get("reviews")), asin)
    rating = _rating(item.get("average_rating", item.get("rating")))
    if rating is None:
        rating = round(sum(r.rating for r in reviews) / len(reviews), 1) if reviews else derived_rating(asin)
    count = _count(item.get("total_reviews", item.get("review_count")))
    description = _text(item.get("full_description")) or " ".join(bullets) or name
    try:
        product = Product(
            asin=asin, title=name, brand=_brand(item, attributes, bullets, name),
            department=_department(item, category), category=category or "other", price_min=price[0],
            price_max=price[1], rating=rating,
            review_count=max(len(reviews), count if count is not None else derived_review_count(asin)),
            description=description, bullets=bullets, options=_options(item.get("customization_options")),
            attributes=attributes, image=None,  # WebShop's images are remote URLs: the store draws placeholders
        )
    except ValidationError as e:
        return f"invalid ({e.error_count()} errors)"
    return product, reviews


def load_items(path: str | Path) -> Iterator[Any]:
    """Items from a JSON list, or from JSON Lines (one object per line)."""
    path = Path(path)
    with path.open(encoding="utf-8") as f:
        head = f.read(1024).lstrip()
        f.seek(0)
        if head.startswith("["):
            yield from json.load(f)
            return
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as e:
                    log.warning("%s:%d: not JSON (%s); skipped", path, n, e.msg)
                    yield None


# -------------------------------------------------------------------------------------------------------------- import
def import_webshop(items_path: str | Path, out: str | Path, progress: bool = False) -> str:
    """Import WebShop's items into a fresh catalog at `out`; return a short summary. Bad items are skipped, logged."""
    t0 = time.perf_counter()
    items: Iterable[Any] = load_items(items_path)
    if progress:
        from tqdm import tqdm

        items = tqdm(items, unit="item", desc="importing WebShop items")
    conn = create_catalog_db(out)
    seen: set[str] = set()
    skipped: Counter[str] = Counter()
    products: list[tuple] = []
    reviews: list[tuple] = []
    n_reviews = 0
    for index, item in enumerate(items):
        got = webshop_product(item)
        if isinstance(got, str) or got[0].asin in seen:
            reason = got if isinstance(got, str) else "duplicate asin"
            skipped[reason] += 1
            if skipped[reason] <= MAX_WARNINGS_PER_REASON:
                log.warning("item %d (%s): %s; skipped", index, _asin_of(item), reason)
            continue
        product, revs = got
        seen.add(product.asin)
        pid = len(seen)
        products.append((pid, *product_row(product)))
        reviews.extend((pid, r.author, r.rating, r.title, r.body, r.date) for r in revs)
        if len(products) >= 5000:
            insert_rows(conn, products, reviews)
            n_reviews += len(reviews)
            products, reviews = [], []
    insert_rows(conn, products, reviews)
    n_reviews += len(reviews)
    for reason, n in sorted(skipped.items()):
        if n > MAX_WARNINGS_PER_REASON:
            log.warning("%d items skipped in all for %r (the first %d are logged above)", n, reason,
                        MAX_WARNINGS_PER_REASON)
    finalize_catalog(conn, {"source": "webshop", "items": Path(items_path).name, "n_products": str(len(seen))})
    detail = ", ".join(f"{reason}: {n}" for reason, n in sorted(skipped.items()))
    return (f"{len(seen):,} products, {n_reviews:,} reviews, {sum(skipped.values()):,} skipped"
            f"{' (' + detail + ')' if detail else ''}, {time.perf_counter() - t0:.1f}s")


def _asin_of(item: Any) -> str:
    return str(item.get("asin", "?"))[:20] if isinstance(item, dict) else "?"
