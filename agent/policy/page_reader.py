"""Reading a simplified page the way a shopper's eyes would: what kind of page it is, and what is on it.

Used by :mod:`agent.policy.scripted`. Everything is read from the simplified HTML's structure and text
(landmarks, headings, legends, button labels, prices, ratings) and the element names it carries; name patterns such
as ``refinements.brand.*`` are only a fallback, so small renames in the store or the simplifier do not break it.

>>> page = read_page(
...     "http://shop/search?q=tent",
...     '<form role="search"><input name="search.q_input" type="search"></form>'
...     '<section aria-label="Search results"><article><h2><a name="search_results.acme_tent.title">Acme Tent</a></h2>'
...     '<p>by Acme</p> ★★★★☆ 4.2 (1,234 ratings) <p>$89.99</p></article></section>',
...     {"search.q_input": "input", "search_results.acme_tent.title": "clickable"},
... )
>>> page.kind, page.search_input, page.cards[0].price_min, page.cards[0].rating, page.cards[0].reviews
('results', 'search.q_input', 89.99, 4.2, 1234)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import urlsplit

import lxml.html
from lxml import etree

__all__ = [
    "Card",
    "Choice",
    "OptionGroup",
    "PageKind",
    "PageView",
    "ProductView",
    "kinds_from_html",
    "match_choice",
    "norm_label",
    "option_choice",
    "option_group",
    "parse_price",
    "price_band",
    "read_page",
    "same_label",
]

log = logging.getLogger(__name__)

PageKind = Literal["home", "results", "product", "cart", "checkout", "order", "error", "other"]

_PRICE = re.compile(r"\$\s?(\d[\d,]*(?:\.\d+)?)(?:\s*[-–]\s*\$\s?(\d[\d,]*(?:\.\d+)?))?")
_RATING = re.compile(r"(\d(?:\.\d)?)\s*(?:out of 5(?: stars)?)?\s*\(\s*([\d,]+)\s*(?:ratings?|reviews?)?\s*\)")
_STARS = re.compile(r"[★☆]{5}")
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_SELECTED_ATTRS = ("aria-current", "aria-pressed", "aria-checked", "aria-selected")
_CART_COUNT = re.compile(r"\b(?:cart|basket|bag)\b\D{0,3}(\d+)", re.I)
_NAME_ATTR = re.compile(r"<(\w+)\b[^>]*?\bname=\"([^\"]+)\"[^>]*>")
_TYPE_ATTR = re.compile(r"\btype=\"([^\"]*)\"")
_CLICK_INPUT_TYPES = frozenset(("submit", "button", "image", "reset", "checkbox", "radio"))
_ERROR_TEXT = re.compile(r"\b(?:error\s*[45]\d\d|page not found|not found|something went wrong|server error)\b", re.I)


# --------------------------------------------------------------------------------------------------------------------
# What a page holds


@dataclass(frozen=True)
class Choice:
    """A clickable the shopper might use: its `name`, visible text, and whether it is the current/selected one."""

    name: str
    text: str
    selected: bool = False


@dataclass(frozen=True)
class Card:
    """A product tile in a result list (or the home page's featured products)."""

    name: str
    title: str
    brand: str | None = None
    price_min: float | None = None
    price_max: float | None = None
    rating: float | None = None
    reviews: int | None = None


@dataclass(frozen=True)
class OptionGroup:
    """One option fieldset of a product page, e.g. "Size" with its values."""

    label: str
    choices: tuple[Choice, ...]

    @property
    def selected(self) -> Choice | None:
        return next((c for c in self.choices if c.selected), None)


@dataclass(frozen=True)
class ProductView:
    """A product page's facts and controls."""

    title: str
    brand: str | None
    price_min: float | None
    price_max: float | None
    rating: float | None
    reviews: int | None
    options: tuple[OptionGroup, ...]
    review_stars: tuple[int, ...]
    review_titles: tuple[str, ...]
    add_to_cart: str | None
    buy_now: str | None
    back: str | None
    reviews_link: str | None
    notices: tuple[str, ...]
    unnamed: tuple[str, ...] = ()
    """Buttons beside the product with no text and no label (icons): nobody can tell what they do. Only read when
    the page has no labelled "Add to Cart" or "Buy Now"."""


@dataclass(frozen=True)
class PageView:
    """Everything the scripted shopper reads off one page. Names here are always names of the observation."""

    kind: PageKind
    url: str
    title: str
    heading: str
    search_input: str | None = None
    search_value: str = ""
    home_link: str | None = None
    cart_link: str | None = None
    cart_count: int | None = None
    departments: tuple[Choice, ...] = ()
    cards: tuple[Card, ...] = ()
    no_results: bool = False
    facets: Mapping[str, tuple[Choice, ...]] = field(default_factory=dict)
    price_max_input: str | None = None
    sorts: Mapping[str, Choice] = field(default_factory=dict)
    current_sort: str | None = None
    active_filters: tuple[str, ...] = ()
    next_page: str | None = None
    product: ProductView | None = None
    cart_items: tuple[str, ...] = ()
    cart_total: float | None = None
    checkout_link: str | None = None
    continue_link: str | None = None
    place_order: str | None = None
    order_total: float | None = None
    items_total: float | None = None
    """At checkout: what the items cost, before anything the order total adds on top."""
    search_link: str | None = None
    """A link that leads to search ("Search") on a page without a search box."""
    links: tuple[Choice, ...] = ()
    """Every named clickable, in document order (for recovery on unfamiliar pages)."""

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"


# --------------------------------------------------------------------------------------------------------------------
# Small text helpers


def _norm(text: str | None) -> str:
    return " ".join(text.split()) if text else ""


def _text(el: Any) -> str:
    return _norm(el.text_content())


def parse_price(text: str) -> tuple[float | None, float | None]:
    """The first price or price range in `text`.

    >>> parse_price("$1,299.00 - $1,499.50"), parse_price("no price")
    ((1299.0, 1499.5), (None, None))
    """
    m = _PRICE.search(text)
    if not m:
        return None, None
    lo = float(m.group(1).replace(",", ""))
    hi = float(m.group(2).replace(",", "")) if m.group(2) else lo
    return lo, hi


def _rating(text: str) -> tuple[float | None, int | None]:
    m = _RATING.search(text)
    if not m:
        return None, None
    value = float(m.group(1))
    if value > 5:
        return None, None
    return value, int(m.group(2).replace(",", ""))


def _aria(el: Any) -> str:
    return _norm(el.get("aria-label")).lower()


def _is_selected(el: Any) -> bool:
    for attr in _SELECTED_ATTRS:
        value = (el.get(attr) or "").strip().lower()
        if value and value != "false":
            return True
    return el.get("checked") is not None or el.get("selected") is not None


def _heading_of(el: Any) -> str:
    """A container's own label: aria-label, else its first heading or legend."""
    label = _aria(el)
    if label:
        return label
    for child in el.iter(*_HEADINGS, "legend", "caption"):
        return _text(child).lower()
    return ""


# --------------------------------------------------------------------------------------------------------------------
# The reader


class _Reader:
    def __init__(self, url: str, html: str, kinds: Mapping[str, str]):
        self.url = url
        self.kinds = kinds
        self.root = _parse(html)
        self.named: list[Any] = []  # elements with a name the observation knows, in document order
        if self.root is not None:
            for el in self.root.iter():
                if isinstance(el.tag, str) and el.get("name") in kinds:
                    self.named.append(el)
        self._named_set = set(self.named)
        self._texts = {el: _text(el) for el in self.named}
        self._labels = {el: _aria(el) for el in self.named}

    # ------------------------------------------------------------------------------------------ element lookup
    def clickables(self, within: Any | None = None) -> list[Any]:
        scope = self.named if within is None else [e for e in within.iter() if e in self._named_set]
        return [e for e in scope if self.kinds.get(e.get("name")) == "clickable"]

    def inputs(self) -> list[Any]:
        return [e for e in self.named if self.kinds.get(e.get("name")) == "input"]

    def first_clickable(self, pattern: str, *, within: Any | None = None, name_hint: str | None = None) -> str | None:
        """The first clickable whose text or aria-label matches `pattern`; else one whose name has `name_hint`."""
        rx = re.compile(pattern, re.I)
        for el in self.clickables(within):
            if rx.search(self._texts[el]) or rx.search(self._labels[el]):
                return el.get("name")
        if name_hint:
            for el in self.clickables(within):
                if name_hint in el.get("name"):
                    return el.get("name")
        return None

    def containers(self, label_pattern: str, tags: Iterable[str] = ("section", "aside", "nav", "div", "form")) -> list:
        rx = re.compile(label_pattern, re.I)
        if self.root is None:
            return []
        return [el for el in self.root.iter(*tags) if rx.search(_aria(el))]

    def ancestors_have(self, el: Any, pattern: str) -> bool:
        rx = re.compile(pattern, re.I)
        return any(rx.search(_aria(a)) for a in el.iterancestors())

    # ------------------------------------------------------------------------------------------------ the parts
    def search_box(self) -> tuple[str | None, str]:
        candidates = []
        for el in self.inputs():
            name = el.get("name")
            low = name.lower()
            if re.search(r"price|min|max|quantity|qty|zip|postal|name_input|street|city|state|country|email", low):
                if "search" not in low:
                    continue
            in_search = (el.get("type") or "").lower() == "search" or any(
                (a.get("role") or "").lower() == "search" or a.tag == "search" for a in el.iterancestors()
            )
            candidates.append((0 if in_search else 1 if "search" in low else 2, name, el.get("value") or ""))
        if not candidates:
            return None, ""
        candidates.sort(key=lambda c: c[0])
        best = candidates[0]
        return (best[1], best[2]) if best[0] < 2 or len(candidates) == 1 else (None, "")

    def header_links(self) -> tuple[str | None, str | None, int | None]:
        home = cart = None
        count = None
        for el in self.clickables():
            name, text, label = el.get("name"), _text(el), _aria(el)
            low = name.lower()
            if home is None and ("home" in label or re.search(r"(^|[._])home($|[._])", low)
                                 or re.search(r"\bhome page\b", text, re.I)):
                home = name
            if cart is None and not re.search(r"add|remove|update|items?[._]|edit", low + " " + label):
                if re.fullmatch(r"\W*(?:shopping\s+|my\s+)?(?:cart|basket|bag)\W*\d*\W*", text, re.I) or re.search(
                        r"\b(cart|basket)\b", label):
                    cart = name
                    m = _CART_COUNT.search(text + " " + label)
                    count = int(m.group(1)) if m else None
        return home, cart, count

    def card(self, article: Any) -> Card | None:
        link = None
        for h in article.iter(*_HEADINGS):
            links = self.clickables(h)
            if links:
                link = links[0]
                break
        if link is None:
            links = self.clickables(article)
            if not links:
                return None
            link = links[0]
        text = _text(article)
        brand = None
        for p in article.iter("p", "span", "div"):
            m = re.match(r"^(?:by|brand:)\s+(.+)$", _text(p), re.I)
            if m:
                brand = m.group(1).strip()
                break
        price_min = price_max = None
        for p in article.iter("p", "span", "div"):
            t = _text(p)
            if t.startswith("$"):
                price_min, price_max = parse_price(t)
                break
        if price_min is None:
            price_min, price_max = parse_price(text)
        rating, reviews = _rating(text)
        return Card(link.get("name"), _text(link) or _aria(link), brand, price_min, price_max, rating, reviews)

    def cards(self) -> tuple[tuple[Card, ...], bool]:
        """Result cards, and whether they come from a search-results list (else: featured products or none)."""
        sections = self.containers(r"result", ("section", "div", "ol", "ul", "main"))
        is_results = bool(sections)
        if not sections and self.root is not None:
            sections = [s for s in self.root.iter("section") if re.search(r"featured|product", _heading_of(s))]
        if not sections and self.root is not None:  # unlabelled lists: any product tile on the page
            sections = [self.root]
        out: list[Card] = []
        seen: set[str] = set()
        for section in sections:
            items = list(section.iter("article")) or list(section.iter("li"))
            for item in items:
                card = self.card(item)
                if card and card.name not in seen and card.price_min is not None:
                    seen.add(card.name)
                    out.append(card)
        return tuple(out), is_results

    def facets(self) -> tuple[dict[str, tuple[Choice, ...]], str | None]:
        groups: dict[str, list[Choice]] = {}
        price_max_input = None
        for aside in self.containers(r"refine|filter"):
            for section in aside.iter("section", "fieldset", "div"):
                heading = _heading_of(section)
                key = _facet_key(heading)
                if not key or key in groups:
                    continue
                groups[key] = [Choice(e.get("name"), _text(e)) for e in self.clickables(section)
                               if not re.fullmatch(r"go|apply|submit", _text(e), re.I)]
                if key == "price":
                    price_max_input = self._max_input(section)
        if not groups:  # fallback: names like refinements.brand.acme
            for el in self.clickables():
                m = re.match(r"(?:refinements?|filters?)\.([a-z_]+)\.", el.get("name"))
                facet = _facet_key(m.group(1).replace("_", " ")) if m else None
                if facet:
                    groups.setdefault(facet, []).append(Choice(el.get("name"), _text(el)))
        if price_max_input is None:
            price_max_input = next((e.get("name") for e in self.inputs()
                                    if re.search(r"price.*max|max.*price", e.get("name").lower())), None)
        return {k: tuple(v) for k, v in groups.items() if v}, price_max_input

    def _max_input(self, section: Any) -> str | None:
        """The "max price" box of a price refinement: by name, else by the label text before it, else the last box."""
        boxes = [el for el in section.iter("input") if self.kinds.get(el.get("name")) == "input"]
        for el in boxes:
            if re.search(r"max|upper|(^|[._])to($|[._])", el.get("name").lower()) or "max" in _aria(el):
                return el.get("name")
        for el in boxes:
            prev = el.getprevious()
            before = (prev.tail if prev is not None else el.getparent().text) or ""
            if re.search(r"\b(max|to|up to)\b", before[-20:], re.I):
                return el.get("name")
        return boxes[-1].get("name") if len(boxes) >= 2 else None

    def sorting(self) -> tuple[dict[str, Choice], str | None]:
        sorts: dict[str, Choice] = {}
        current = None
        container = None
        if self.root is not None:
            for el in self.root.iter("nav", "section", "div", "form", "ul"):
                own = _norm(el.text or "")
                if re.match(r"sort", own, re.I) or re.search(r"\bsort\b", _aria(el)):
                    container = el
                    break
        if container is not None:
            for li in container.iter("li", "option", "a", "button"):
                key = _sort_key(_text(li))
                if key is None:
                    continue
                links = self.clickables(li) if li.tag == "li" else ([li] if li in self._named_set else [])
                if links:
                    sorts.setdefault(key, Choice(links[0].get("name"), _text(links[0])))
                elif li.tag == "li":
                    current = key
        for el in self.clickables():  # fallback: names like sort.price_low_to_high
            if el.get("name").startswith("sort"):
                key = _sort_key(_text(el))
                if key:
                    sorts.setdefault(key, Choice(el.get("name"), _text(el)))
        return sorts, current

    def active_filters(self) -> tuple[str, ...]:
        if self.root is None:
            return ()
        for el in self.root.iter("section", "div", "nav", "aside"):
            if re.match(r"active filters", _norm(el.text or ""), re.I) or "active filter" in _aria(el):
                return tuple(_text(li) for li in el.iter("li"))
        return ()

    def product(self) -> ProductView | None:
        add = self.first_clickable(r"\badd to (cart|basket|bag)\b", name_hint="add_to_cart")
        buy = self.first_clickable(r"\bbuy now\b", name_hint="buy_now")
        h1 = next(self.root.iter("h1"), None) if self.root is not None else None
        unnamed: tuple[str, ...] = ()
        if add is None and buy is None:  # a product page whose buy buttons are unlabelled icons?
            if h1 is None or h1.getparent() is None:
                return None
            unnamed = tuple(e.get("name") for e in self.clickables(h1.getparent())
                            if e.tag == "button" and not _text(e) and not _aria(e) and not e.get("title"))
            if not unnamed:
                return None
        title = _text(h1) if h1 is not None else ""
        box = h1.getparent() if h1 is not None else self.root
        brand = None
        price_min = price_max = None
        rating = reviews = None
        for p in box.iter("p", "span", "div"):
            t = _text(p)
            if brand is None:
                m = re.match(r"^(?:brand|by)\s*:?\s+(.+)$", t, re.I)
                if m:
                    brand = m.group(1).strip()
            if price_min is None and t.startswith("$"):
                price_min, price_max = parse_price(t)
            if rating is None:
                rating, reviews = _rating(t)
        if price_min is None:
            price_min, price_max = parse_price(_text(box))
        options = []
        for fs in box.iter("fieldset"):
            legend = next(fs.iter("legend"), None)
            label = _text(legend) if legend is not None else _aria(fs)
            selected_text = ""
            for p in fs.iter("p"):
                m = re.match(r"^selected\s*:?\s*(.+)$", _text(p), re.I)
                if m:
                    selected_text = m.group(1).strip().lower()
            choices = tuple(
                Choice(e.get("name"), _text(e), _is_selected(e) or (bool(selected_text) and _text(e).lower()
                                                                      == selected_text))
                for e in self.clickables(fs)
            )
            if label and choices:
                options.append(OptionGroup(label, choices))
        if not options:  # no fieldsets: names like product_options.size.10 or product_options.style.button_list.x
            by_group: dict[str, list[Choice]] = {}
            for el in self.clickables():
                m = re.match(r"(?:product_)?options?\.([a-z0-9_]+)\.", el.get("name"))
                if m:
                    by_group.setdefault(m.group(1).replace("_", " "), []).append(
                        Choice(el.get("name"), self._texts[el], _is_selected(el)))
            options = [OptionGroup(label, tuple(choices)) for label, choices in by_group.items()]
        stars: list[int] = []
        titles: list[str] = []
        for section in self._sections_titled(r"review"):
            for art in section.iter("article"):
                # the first paragraph with stars: (its text, the stars' match)
                first = next(((t, m) for t in map(_text, art.iter("p")) if (m := _STARS.search(t))), None)
                if first is None:
                    continue
                t, m = first
                stars.append(m.group(0).count("★"))
                titles.append(t[m.end():].strip())
        notices = tuple(
            _text(el) for el in (self.root.iter("p", "li") if self.root is not None else ())
            if re.search(r"please (choose|select)|couldn.t add|could not add|out of stock", _text(el), re.I)
        )
        return ProductView(
            title=title, brand=brand, price_min=price_min, price_max=price_max, rating=rating, reviews=reviews,
            options=tuple(options), review_stars=tuple(stars), review_titles=tuple(titles), add_to_cart=add,
            buy_now=buy, back=self.first_clickable(r"back to (results|search)", name_hint="back_to_results"),
            reviews_link=self.first_clickable(r"^(see|read|show)?\s*(all\s+)?(customer\s+)?reviews$"),
            notices=notices, unnamed=unnamed,
        )

    def _sections_titled(self, pattern: str) -> list[Any]:
        if self.root is None:
            return []
        rx = re.compile(pattern, re.I)
        return [s for s in self.root.iter("section", "div") if rx.search(_heading_of(s))]

    def departments(self) -> tuple[Choice, ...]:
        out: list[Choice] = []
        for nav in self.containers(r"department|categor", ("nav", "section", "aside", "ul")):
            out.extend(Choice(e.get("name"), _text(e)) for e in self.clickables(nav))
        return tuple(out)


def _facet_key(heading: str) -> str | None:
    heading = heading.lower()
    if re.search(r"department|categor", heading):
        return "department"
    if "brand" in heading:
        return "brand"
    if "price" in heading:
        return "price"
    if re.search(r"rating|review|stars", heading):
        return "rating"
    return None


def _sort_key(text: str) -> str | None:
    low = text.lower()
    if re.search(r"low(est)?\s*(to|-|→)\s*high|cheapest", low):
        return "price_asc"
    if re.search(r"high(est)?\s*(to|-|→)\s*low", low):
        return "price_desc"
    if re.search(r"review|rating|rated", low):
        return "rating"
    if "relevan" in low or "featured" in low:
        return "relevance"
    return None


@lru_cache(maxsize=256)
def _parse(html: str) -> Any:
    if not html or not html.strip():
        return None
    try:
        doc = lxml.html.document_fromstring(f"<html><body>{html}</body></html>")
    except (etree.ParserError, ValueError):
        log.warning("could not parse a %d-character page", len(html))
        return None
    return doc.find("body")


def _kind(r: _Reader, title: str, heading: str, product: ProductView | None, place_order: str | None,
          checkout_link: str | None, cards_are_results: bool, no_results: bool) -> PageKind:
    path = urlsplit(r.url).path.lower()
    body = _text(r.root) if r.root is not None else ""
    if re.search(r"thank you|order (has been )?placed|order confirm", heading + " " + title, re.I) or re.search(
            r"/orders?/[^/]+", path):
        return "order"
    if _ERROR_TEXT.search(title) or _ERROR_TEXT.search(heading) or re.search(r"\berror\s*[45]\d\d\b", body, re.I):
        return "error"
    if place_order:
        return "checkout"
    if product is not None:
        return "product"
    if checkout_link or re.search(r"\b(shopping )?(cart|basket|bag)\b", heading, re.I):
        return "cart"
    if cards_are_results or no_results:
        return "results"
    if path in ("", "/", "/index.html") or re.search(r"\bhome\b", title, re.I):
        return "home"
    return "other"


def read_page(url: str, html: str, kinds: Mapping[str, str]) -> PageView:
    """Read one simplified page. `kinds` maps each element name of the observation to "clickable" or "input".

    Pages are cached: a session re-reads its whole history every step, and the same page always reads the same.
    """
    return _read_page(url, html, tuple(kinds.items()))


@lru_cache(maxsize=2048)
def _read_page(url: str, html: str, kind_items: tuple[tuple[str, str], ...]) -> PageView:
    kinds = dict(kind_items)
    r = _Reader(url, html, kinds)
    root = r.root
    title = ""
    heading = ""
    if root is not None:
        t = root.getparent().find(".//title") if root.getparent() is not None else None
        title = _text(t) if t is not None else ""
        h1 = next(root.iter("h1"), None)
        heading = _text(h1) if h1 is not None else ""
    search_input, search_value = r.search_box()
    home, cart, count = r.header_links()
    product = r.product()
    place_order = r.first_clickable(r"^(place (your )?order|complete (your )?(order|purchase)|pay now|confirm order)$",
                                    name_hint="place_order")
    checkout_link = None if place_order else r.first_clickable(r"^(proceed to |go to )?check ?out\b")
    cards, is_results = r.cards()
    if cards and not is_results:
        is_results = bool(re.search(r"\bresults?\b", heading + " " + title, re.I) or re.search(
            r"/search\b|[?&](q|query|k|keywords)=", url))
    body = _text(root) if root is not None else ""
    no_results = bool(re.search(r"\bno (results|products|matches)\b|couldn.t find anything", body, re.I)) and not (
        is_results and cards)
    facets, price_max_input = r.facets()
    sorts, current_sort = r.sorting()
    kind = _kind(r, title, heading, product, place_order, checkout_link, is_results, no_results)
    cart_items: tuple[str, ...] = ()
    cart_total = order_total = None
    if kind == "cart":
        for section in r.containers(r"cart|item"):
            cart_items = tuple(_text(next(a.iter(*_HEADINGS), a))[:120] for a in section.iter("article"))
            if cart_items:
                break
        m = re.search(r"subtotal[^$]*(\$[\d,.]+)", body, re.I)
        cart_total = parse_price(m.group(1))[0] if m else None
    items_total = None
    if kind == "checkout":
        m = re.search(r"(?:order )?total[^$]*(\$[\d,.]+)", body, re.I)
        order_total = parse_price(m.group(1))[0] if m else None
        m = re.search(r"\b(?:items\s*\(\d+\)|subtotal)\s*:?\s*(\$[\d,.]+)", body, re.I)
        items_total = parse_price(m.group(1))[0] if m else None
    continue_link = r.first_clickable(r"continue shopping|keep shopping")
    next_page = None
    for nav in r.containers(r"paginat|pages"):
        next_page = r.first_clickable(r"^(next|next page|›|»|→)\W*$", within=nav)
        if next_page:
            break
    if next_page is None:
        next_page = r.first_clickable(r"^(next|next page)\W*$", name_hint="pagination.next")
    links = tuple(Choice(e.get("name"), _text(e) or _aria(e)) for e in r.clickables())
    search_link = None
    if search_input is None:
        search_link = next((c.name for c in links if re.fullmatch(r"(search|find products?)\W*", c.text, re.I)), None)
    return PageView(
        kind=kind, url=url, title=title, heading=heading, search_input=search_input, search_value=search_value,
        home_link=home, cart_link=cart, cart_count=count, departments=r.departments(),
        cards=cards if kind in ("results", "home", "other") else (), no_results=no_results and kind == "results",
        facets=facets, price_max_input=price_max_input, sorts=sorts, current_sort=current_sort,
        active_filters=r.active_filters(), next_page=next_page, product=product if kind == "product" else None,
        cart_items=cart_items, cart_total=cart_total, checkout_link=checkout_link, continue_link=continue_link,
        place_order=place_order, order_total=order_total, items_total=items_total, search_link=search_link,
        links=links,
    )


# --------------------------------------------------------------------------------------------------------------------
# Matching labels


def kinds_from_html(html: str) -> dict[str, str]:
    """Element name → "clickable" or "input", read from a simplified page's `name` attributes."""
    out: dict[str, str] = {}
    for m in _NAME_ATTR.finditer(html):
        tag, name = m.group(1).lower(), m.group(2)
        kind = "clickable"
        if tag == "textarea":
            kind = "input"
        elif tag == "input":
            t = _TYPE_ATTR.search(m.group(0))
            kind = "clickable" if t and t.group(1).lower() in _CLICK_INPUT_TYPES else "input"
        out.setdefault(name, kind)
    return out


def same_label(a: str, b: str) -> bool:
    """Two labels that say the same ("Color" and "color", "Pack size" and "pack_size")."""
    return norm_label(a) == norm_label(b)


def match_choice(choices: Sequence[Choice], wanted: str) -> Choice | None:
    """The choice whose text is `wanted` (case, punctuation and "&"/"and" aside)."""
    norm = norm_label(wanted)
    return next((c for c in choices if norm_label(c.text) == norm), None)


def norm_label(text: str) -> str:
    """Lowercase words of a label, without a trailing count: "Home & Garden (12)" → "home and garden"."""
    text = re.sub(r"\s*\(?\d[\d,]*\)?\s*$", "", text.lower()).replace("&", " and ")
    return " ".join(re.findall(r"[a-z0-9]+", text))


def option_group(groups: Sequence[OptionGroup], key: str) -> OptionGroup | None:
    """The option group labelled `key`, if the product has one."""
    return next((g for g in groups if same_label(g.label, key)), None)


def option_choice(group: OptionGroup, value: str | None) -> Choice | None:
    """The choice of `group` that is `value` ("3 Pack" for "3 pack"), if there is one."""
    if not value:
        return None
    norm = norm_label(value)
    exact = next((c for c in group.choices if norm_label(c.text) == norm), None)
    if exact is not None:
        return exact
    words = set(norm.split())
    return next((c for c in group.choices if words and words <= set(norm_label(c.text).split())), None)


def price_band(text: str) -> tuple[float | None, float]:
    """A price band's (low, high): "Under $25" → (0, 25), "$25 to $50" → (25, 50), "$200 & above" → (200, inf)."""
    nums = [float(n.replace(",", "")) for n in re.findall(r"\$\s?(\d[\d,]*(?:\.\d+)?)", text)]
    low = text.lower()
    if not nums:
        return None, 0.0
    if re.search(r"under|below|up to|less than", low):
        return 0.0, nums[0]
    if re.search(r"above|over|\+|and up|& up|or more", low):
        return nums[0], float("inf")
    if len(nums) >= 2:
        return nums[0], nums[1]
    return None, 0.0
