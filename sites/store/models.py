"""Typed records of the store's catalog. Shared by the generator, the importer, search and the web app."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

SortKey = Literal["relevance", "price_asc", "price_desc", "rating"]
SORT_KEYS: tuple[SortKey, ...] = ("relevance", "price_asc", "price_desc", "rating")


class Review(BaseModel):
    author: str
    rating: int = Field(ge=1, le=5)
    title: str
    body: str
    date: str  # ISO date, e.g. "2024-05-17"


class Product(BaseModel):
    """One product. `options` maps a group name ("size", "color") to its values, in display order."""

    asin: str
    title: str
    brand: str
    department: str
    category: str  # "a › b › c", as WebShop's product_category
    price_min: float
    price_max: float
    rating: float = Field(ge=0, le=5)
    review_count: int = Field(ge=0)
    description: str
    bullets: list[str] = Field(default_factory=list)
    options: dict[str, list[str]] = Field(default_factory=dict)
    attributes: dict[str, str] = Field(default_factory=dict)
    image: str | None = None  # a file name under the catalog's image dir, or None for a generated placeholder

    @property
    def price_label(self) -> str:
        if self.price_max > self.price_min:
            return f"${self.price_min:,.2f} - ${self.price_max:,.2f}"
        return f"${self.price_min:,.2f}"


class SearchQuery(BaseModel):
    """A results-page request. Every field is already validated; `page` is 1-based."""

    q: str = ""
    department: str | None = None
    brand: str | None = None
    price_min: float | None = Field(default=None, ge=0)
    price_max: float | None = Field(default=None, ge=0)
    min_rating: float | None = Field(default=None, ge=0, le=5)
    sort: SortKey = "relevance"
    page: int = Field(default=1, ge=1)
    per_page: int = Field(default=10, ge=1, le=100)


class Facet(BaseModel):
    value: str
    count: int


class SearchPage(BaseModel):
    query: SearchQuery
    total: int
    products: list[Product]
    departments: list[Facet] = Field(default_factory=list)
    brands: list[Facet] = Field(default_factory=list)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.query.per_page))
