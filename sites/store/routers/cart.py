"""The cart, checkout and order confirmation. Every POST answers with a 303 redirect, so reloading is safe."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ..catalog import Catalog
from ..state import MAX_QUANTITY, CartLine, OrderLine
from ..web import (
    CatalogDep,
    PageError,
    SidDep,
    StateDep,
    VariantDep,
    ascii_int,
    option_key,
    page_view,
    product_url,
    render,
    safe_back_path,
    track,
)
from .product import find_product, missing_options, read_selection, render_product

log = logging.getLogger(__name__)
router = APIRouter(tags=["pages"], dependencies=[Depends(page_view)])

MAX_FIELD_CHARS = 200
# The shipping form comes prefilled so that a shopper can just press "Place order".
SHIPPING_FIELDS: tuple[tuple[str, str, str, str], ...] = (
    # (field, label, default, autocomplete)
    ("full_name", "Full name", "Alex Morgan", "name"),
    ("address", "Street address", "221 Market Street", "street-address"),
    ("city", "City", "Springfield", "address-level2"),
    ("region", "State / Province", "IL", "address-level1"),
    ("postal_code", "ZIP / Postal code", "62701", "postal-code"),
    ("country", "Country", "United States", "country-name"),
)


async def form_fields(request: Request) -> dict[str, str]:
    """The POSTed form as plain strings (file parts are ignored). Async so that the endpoints can stay sync."""
    form = await request.form(max_files=0, max_fields=200)
    return {k: v for k, v in form.items() if isinstance(v, str)}


FormDep = Annotated[dict[str, str], Depends(form_fields)]


def parse_quantity(raw: str | None, *, name: str = "Quantity") -> tuple[int | None, str | None]:
    """A whole number from 1 to MAX_QUANTITY, or an error message for the visitor."""
    message = f"{name} must be a whole number from 1 to {MAX_QUANTITY}."
    value = ascii_int(raw)
    if value is None or not 1 <= value <= MAX_QUANTITY:
        return None, message
    return value, None


def describe(catalog: Catalog, line: CartLine) -> dict[str, Any] | None:
    """A cart line with its product, for display. None when the product is gone from the catalog."""
    product = catalog.get(line.asin)
    if product is None:
        return None
    options = {g: line.options[g] for g in product.options if g in line.options}  # the product's group order
    options.update({g: v for g, v in line.options.items() if g not in options})
    return {"line": line, "product": product, "unit_price": product.price_min, "options": options,
            "line_total": round(product.price_min * line.quantity, 2),
            "url": product_url(product.asin, options, None, product.options),
            "label": product.title + (" (" + ", ".join(f"{g.capitalize()}: {v}" for g, v in options.items()) + ")"
                                      if options else "")}


def cart_view(catalog: Catalog, lines: list[CartLine]) -> dict[str, Any]:
    items = [d for d in (describe(catalog, line) for line in lines) if d is not None]
    return {"items": items, "item_count": sum(d["line"].quantity for d in items),
            "subtotal": round(sum(d["line_total"] for d in items), 2)}


def _add(request: Request, catalog: Catalog, state: Any, sid: str, form: dict[str, str],
         default_quantity: str | None) -> tuple[HTMLResponse | None, CartLine | None, int]:
    """Validate an add-to-cart form and add the line. On a problem, the product page again with the reasons (400)."""
    asin = form.get("asin", "")
    if not asin:
        raise PageError(400, "The form did not say which product to add (no “asin” field).")
    product = find_product(catalog, asin)
    back = safe_back_path(form.get("from"))
    given = {k.removeprefix("option_"): v for k, v in form.items() if k.startswith("option_")}
    known = {option_key(g) for g in product.options}
    errors = [f"This product has no option “{k[:40]}”." for k in given if k not in known]
    selection, bad = read_selection(product, given)
    errors += bad
    quantity, q_error = parse_quantity(form.get("quantity", default_quantity))
    if q_error:
        errors.append(q_error)
    if not errors:
        errors = missing_options(product, selection)
    if errors:
        return render_product(request, catalog, product, selection, back, errors=errors, status_code=400), None, 0
    assert quantity is not None
    line = state.add_to_cart(sid, product.asin, selection, quantity)
    return None, line, quantity


@router.post("/cart/add", name="cart_add")
def cart_add(request: Request, catalog: CatalogDep, state: StateDep, sid: SidDep, form: FormDep) -> Any:
    """Add to Cart: then the cart page, which confirms what was added."""
    problem, line, quantity = _add(request, catalog, state, sid, form, default_quantity=None)
    if problem is not None:
        track(request, "error", {"status": 400, "action": "add_to_cart"})
        return problem
    assert line is not None
    track(request, "add_to_cart", {"asin": line.asin, "options": line.options,
                                   "quantity": quantity, "line_quantity": line.quantity})
    return RedirectResponse(f"/cart?added={line.id}", status_code=303)


@router.post("/buy-now", name="buy_now")
def buy_now(request: Request, catalog: CatalogDep, state: StateDep, sid: SidDep, form: FormDep) -> Any:
    """Buy Now: add the item (one, unless the form says otherwise) and go straight to checkout."""
    problem, line, quantity = _add(request, catalog, state, sid, form, default_quantity="1")
    if problem is not None:
        track(request, "error", {"status": 400, "action": "buy_now"})
        return problem
    assert line is not None
    track(request, "buy_now", {"asin": line.asin, "options": line.options,
                               "quantity": quantity, "line_quantity": line.quantity})
    return RedirectResponse("/checkout", status_code=303)


def render_cart(request: Request, catalog: Catalog, state: Any, sid: str, *, added: int | None = None,
                errors: list[str] | None = None, status_code: int = 200) -> HTMLResponse:
    view = cart_view(catalog, state.cart(sid))
    added_item = next((d for d in view["items"] if d["line"].id == added), None) if added is not None else None
    return render(request, "cart.html", status_code=status_code, **view, added=added_item, errors=errors or [],
                  max_quantity=MAX_QUANTITY)


@router.api_route("/cart", methods=["GET", "HEAD"], response_class=HTMLResponse, name="cart")
def cart_page(request: Request, catalog: CatalogDep, state: StateDep, sid: SidDep, added: str | None = None) -> Any:
    added_id = ascii_int(added)
    return render_cart(request, catalog, state, sid, added=added_id)


def _line_id(form: dict[str, str]) -> int:
    line_id = ascii_int(form.get("line_id"))
    if line_id is None:
        raise PageError(400, "The form did not say which cart line to change (a “line_id” number).",
                        [("View your cart", "/cart")])
    return line_id


@router.post("/cart/update", name="cart_update")
def cart_update(request: Request, catalog: CatalogDep, state: StateDep, sid: SidDep, form: FormDep) -> Any:
    line_id = _line_id(form)
    quantity, error = parse_quantity(form.get("quantity"))
    if error:
        track(request, "error", {"status": 400, "action": "cart_update"})
        return render_cart(request, catalog, state, sid, errors=[error], status_code=400)
    assert quantity is not None
    line = state.update_line(sid, line_id, quantity)
    if line is None:
        raise PageError(404, "That item is no longer in your cart.", [("View your cart", "/cart")])
    track(request, "cart_update", {"asin": line.asin, "options": line.options, "quantity": quantity})
    return RedirectResponse("/cart", status_code=303)


@router.post("/cart/remove", name="cart_remove")
def cart_remove(request: Request, state: StateDep, sid: SidDep, form: FormDep) -> Any:
    line = state.remove_line(sid, _line_id(form))
    if line is None:
        raise PageError(404, "That item is no longer in your cart.", [("View your cart", "/cart")])
    track(request, "cart_remove", {"asin": line.asin, "options": line.options, "quantity": line.quantity})
    return RedirectResponse("/cart", status_code=303)


def render_checkout(request: Request, catalog: Catalog, state: Any, sid: str, values: dict[str, str],
                    errors: list[str] | None = None, status_code: int = 200) -> HTMLResponse:
    view = cart_view(catalog, state.cart(sid))
    fee = request.app.state.variant.checkout_fee(view["subtotal"])
    fields = [{"name": n, "label": label, "value": values.get(n, ""), "autocomplete": ac}
              for n, label, _default, ac in SHIPPING_FIELDS]
    return render(request, "checkout.html", status_code=status_code, **view, fee=fee, fields=fields,
                  errors=errors or [])


@router.api_route("/checkout", methods=["GET", "HEAD"], response_class=HTMLResponse, name="checkout")
def checkout_page(request: Request, catalog: CatalogDep, state: StateDep, sid: SidDep) -> Any:
    response = render_checkout(request, catalog, state, sid, {n: d for n, _label, d, _ac in SHIPPING_FIELDS})
    track(request, "checkout_view", {"items": state.cart_count(sid)})
    return response


@router.post("/checkout", name="place_order")
def place_order(request: Request, catalog: CatalogDep, state: StateDep, variant: VariantDep, sid: SidDep,
                form: FormDep) -> Any:
    """Validate the shipping form and turn the cart into an order; then the confirmation page."""
    values = {n: " ".join(form.get(n, "").split()) for n, _label, _d, _ac in SHIPPING_FIELDS}
    errors = [f"{label} is required." for n, label, _d, _ac in SHIPPING_FIELDS if not values[n]]
    errors += [f"{label} must be at most {MAX_FIELD_CHARS} characters."
               for n, label, _d, _ac in SHIPPING_FIELDS if len(values[n]) > MAX_FIELD_CHARS]
    if errors:
        track(request, "error", {"status": 400, "action": "checkout"})
        return render_checkout(request, catalog, state, sid, values, errors=errors, status_code=400)

    def freeze(line: CartLine) -> OrderLine | None:
        view = describe(catalog, line)
        if view is None:
            return None
        product = view["product"]
        return OrderLine(asin=product.asin, title=product.title, options=view["options"], quantity=line.quantity,
                         unit_price=product.price_min)

    order = state.place_order(sid, variant.name, values, freeze, variant.checkout_fee)
    if order is None:
        track(request, "error", {"status": 400, "action": "checkout"})
        return render_checkout(request, catalog, state, sid, values, status_code=400,
                               errors=["Your cart is empty, so there is nothing to order yet."])
    track(request, "purchase", {"order_id": order.order_id, "total": order.total, "items": order.item_count,
                                "lines": [{"asin": li.asin, "options": li.options, "quantity": li.quantity,
                                           "unit_price": li.unit_price} for li in order.lines]})
    return RedirectResponse(f"/order/{order.order_id}", status_code=303)


@router.api_route("/order/{order_id}", methods=["GET", "HEAD"], response_class=HTMLResponse, name="order")
def order_page(order_id: str, request: Request, state: StateDep, sid: SidDep) -> Any:
    order = state.order(sid, order_id) if len(order_id) <= 64 else None
    if order is None:
        raise PageError(404, "We couldn't find that order. Orders are only visible to the visitor who placed them.")
    return render(request, "order.html", order=order)
