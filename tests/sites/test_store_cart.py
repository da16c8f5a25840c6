"""Cart, Buy Now, checkout and orders, in-process: the flows, their 303s, their 4xx pages and session isolation."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from store_fixtures import LAMP, MUG, SHIRT, build_test_catalog, soup, text_of

from sites.store.app import create_app
from sites.store.web import SESSION_COOKIE


@pytest.fixture(scope="module")
def catalog_path(tmp_path_factory):
    return build_test_catalog(tmp_path_factory.mktemp("store") / "catalog.db")


@pytest.fixture(params=["a", "b"])
def app(request, catalog_path):
    return create_app(catalog_path, variant=request.param)


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


def add(client: TestClient, asin: str = SHIRT, quantity: int | str = 1, **options: str):
    data = {"asin": asin, "quantity": str(quantity), **{f"option_{k}": v for k, v in options.items()}}
    return client.post("/cart/add", data=data, follow_redirects=False)


def cart_lines(client: TestClient) -> list[dict]:
    page = soup(client.get("/cart"))
    section = page.find("section", attrs={"aria-label": "Cart items"})
    out = []
    for art in section.find_all("article") if section else []:
        out.append({"label": art["aria-label"], "quantity": int(art.find("input", type="number")["value"]),
                    "line_id": art.find("input", attrs={"name": "line_id"})["value"],
                    "total": text_of(art.find(class_="line-total")), "text": text_of(art)})
    return out


def subtotal(client: TestClient) -> str:
    return text_of(soup(client.get("/cart")).find(id="subtotal"))


# -- adding ---------------------------------------------------------------------------------------------------------

def test_add_to_cart_redirects_and_shows_the_line(client):
    r = add(client, SHIRT, 2, size="M", color="Navy")
    assert r.status_code == 303 and re.fullmatch(r"/cart\?added=\d+", r.headers["location"])
    page = soup(client.get(r.headers["location"]))
    assert "Added to your cart: Classic Cotton T-Shirt (Size: M, Color: Navy)" in text_of(page.find(id="added-notice"))
    [line] = cart_lines(client)
    assert line["label"] == "Classic Cotton T-Shirt (Size: M, Color: Navy)"
    assert line["quantity"] == 2 and line["total"] == "$31.98"
    assert "Size: M" in line["text"] and "Color: Navy" in line["text"] and "$15.99 each" in line["text"]
    assert "Subtotal (2 items): $31.98" == subtotal(client)
    assert text_of(soup(client.get("/")).find(id="cart-count")) == "2"


def test_same_item_twice_is_one_line_different_options_two(client):
    add(client, SHIRT, 1, size="M", color="Navy")
    add(client, SHIRT, 3, size="m", color="navy")  # value slugs name the same options
    add(client, SHIRT, 1, size="L", color="Navy")
    lines = cart_lines(client)
    assert [(line["label"], line["quantity"]) for line in lines] == [
        ("Classic Cotton T-Shirt (Size: M, Color: Navy)", 4), ("Classic Cotton T-Shirt (Size: L, Color: Navy)", 1)]


def test_product_without_options(client):
    assert add(client, MUG, 3).status_code == 303
    assert cart_lines(client)[0]["label"] == "Ceramic Coffee Mug 12 oz"


def test_the_forms_on_the_product_page_work(client):
    page = soup(client.get(f"/product/{SHIRT}?size=s&color=white"))
    form = page.find("form", id="buy-box")
    data = {i["name"]: i.get("value", "") for i in form.find_all("input")}
    r = client.post(form["action"], data=data, follow_redirects=False)
    assert r.status_code == 303
    assert cart_lines(client)[0]["label"] == "Classic Cotton T-Shirt (Size: S, Color: White)"


def test_missing_options_show_the_product_again_with_a_message(client):
    r = add(client, SHIRT, 1, size="M")
    assert r.status_code == 400
    page = soup(r)
    assert text_of(page.find("h1")) == "Classic Cotton T-Shirt"
    assert "Please choose a color" in text_of(page.find(attrs={"role": "alert"}))
    assert "Selected: M" in text_of(page.find("fieldset", id="option-size")), "what was chosen is kept"
    assert cart_lines(client) == []


@pytest.mark.parametrize("quantity", ["0", "-1", "100", "1000000000000000000000", "abc", "", "1.5", "NaN"])
def test_bad_quantities_are_refused(client, quantity):
    r = add(client, MUG, quantity)
    assert r.status_code == 400
    assert "Quantity must be a whole number from 1 to 99" in text_of(soup(r).find(attrs={"role": "alert"}))
    assert cart_lines(client) == []


@pytest.mark.parametrize("options,message", [
    ({"size": "XXXL", "color": "Navy"}, "“XXXL” is not an available size"),
    ({"size": "M", "color": "Navy", "flavour": "mint"}, "This product has no option “flavour”"),
])
def test_unknown_options_are_refused(client, options, message):
    r = add(client, SHIRT, 1, **options)
    assert r.status_code == 400 and message in r.text
    assert cart_lines(client) == []


def test_unknown_option_on_the_product_page_is_a_400_page(client):
    r = client.get(f"/product/{SHIRT}?size=XXXL&color=navy")
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    page = soup(r)
    assert "“XXXL” is not an available size" in text_of(page.find("main"))
    back = page.find("a", string="Back to the product")
    assert back["href"] == f"/product/{SHIRT}?color=navy"


def test_unknown_or_missing_product(client):
    r = add(client, "NOPE", 1)
    assert r.status_code == 404 and "couldn't find a product" in text_of(soup(r))
    r = client.post("/cart/add", data={"quantity": "1"}, follow_redirects=False)
    assert r.status_code == 400 and "did not say which product" in r.text


# -- cart -------------------------------------------------------------------------------------------------------------

def test_update_and_remove(client):
    add(client, MUG, 1)
    add(client, LAMP, 1, finish="Black")
    mug, lamp = cart_lines(client)
    r = client.post("/cart/update", data={"line_id": mug["line_id"], "quantity": "5"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/cart"
    assert [line["quantity"] for line in cart_lines(client)] == [5, 1]
    assert subtotal(client) == "Subtotal (6 items): $81.50"
    r = client.post("/cart/remove", data={"line_id": lamp["line_id"]}, follow_redirects=False)
    assert r.status_code == 303
    assert [line["label"] for line in cart_lines(client)] == ["Ceramic Coffee Mug 12 oz"]
    client.post("/cart/remove", data={"line_id": mug["line_id"]})
    page = soup(client.get("/cart"))
    assert "Your cart is empty." in text_of(page.find(id="empty-cart"))
    again = client.post("/cart/remove", data={"line_id": mug["line_id"]}, follow_redirects=False)
    assert again.status_code == 404 and "no longer in your cart" in again.text


@pytest.mark.parametrize("quantity", ["0", "-3", "100", "x"])
def test_bad_cart_update_is_a_400_with_the_cart(client, quantity):
    add(client, MUG, 2)
    [line] = cart_lines(client)
    r = client.post("/cart/update", data={"line_id": line["line_id"], "quantity": quantity}, follow_redirects=False)
    assert r.status_code == 400
    assert "Quantity must be a whole number from 1 to 99" in text_of(soup(r).find(attrs={"role": "alert"}))
    assert cart_lines(client)[0]["quantity"] == 2


@pytest.mark.parametrize("line_id", ["", "abc", "-1", "99999999999999999999"])
def test_bad_line_ids(client, line_id):
    r = client.post("/cart/update", data={"line_id": line_id, "quantity": "1"}, follow_redirects=False)
    assert 400 <= r.status_code < 500


def test_get_on_a_post_route_is_a_friendly_405(client):
    r = client.get("/cart/add")
    assert r.status_code == 405 and r.headers["content-type"].startswith("text/html")
    assert "Use the buttons on the page" in r.text


# -- buy now, checkout, orders ----------------------------------------------------------------------------------------

def test_buy_now_goes_to_checkout(client):
    page = soup(client.get(f"/product/{SHIRT}?size=xl&color=navy"))
    button = page.find(id="buy-now")
    form = button.find_parent("form")
    data = {i["name"]: i.get("value", "") for i in form.find_all("input")}
    r = client.post(button.get("formaction") or form["action"], data=data, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/checkout"
    checkout = soup(client.get("/checkout"))
    assert "1 × Classic Cotton T-Shirt (Size: XL, Color: Navy)" in text_of(checkout.find(id="order-summary"))


def test_buy_now_without_options_asks_for_them(client):
    r = client.post("/buy-now", data={"asin": SHIRT}, follow_redirects=False)
    assert r.status_code == 400 and "Please choose a size" in r.text


def test_checkout_and_order_confirmation(client):
    add(client, SHIRT, 2, size="M", color="White")
    add(client, MUG, 1)
    page = soup(client.get("/checkout"))
    form = page.find("form", id="checkout-form")
    data = {i["name"]: i["value"] for i in form.find_all("input")}
    assert data["full_name"] and data["address"] and data["postal_code"], "prefilled: just press Place order"
    for name in data:
        assert page.find("label", attrs={"for": f"ship-{name}"})
    assert "Order total: $41.48" in text_of(page.find(id="order-total"))
    r = client.post("/checkout", data=data, follow_redirects=False)
    assert r.status_code == 303
    location = r.headers["location"]
    order_id = location.rsplit("/", 1)[1]
    assert re.fullmatch(r"/order/\d{8}-[0-9A-F]{10}", location)
    confirmation = soup(client.get(location))
    main = text_of(confirmation.find("main"))
    assert "Thank you, your order has been placed." in main
    assert order_id in main and "Classic Cotton T-Shirt" in main and "Size: M, Color: White" in main
    assert "$41.48" in text_of(confirmation.find(id="order-total"))
    assert data["full_name"] in main
    assert cart_lines(client) == [], "the cart is emptied by the order"
    assert client.get(location).status_code == 200, "reloading the confirmation is safe"
    empty = client.post("/checkout", data=data, follow_redirects=False)
    assert empty.status_code == 400 and "Your cart is empty" in empty.text


def test_checkout_validates_fields(client):
    add(client, MUG, 1)
    r = client.post("/checkout", data={"full_name": "  ", "address": "x" * 300, "city": "A", "region": "B",
                                       "postal_code": "1", "country": "C"}, follow_redirects=False)
    assert r.status_code == 400
    alert = text_of(soup(r).find(attrs={"role": "alert"}))
    assert "Full name is required." in alert and "Street address must be at most 200 characters." in alert
    assert len(cart_lines(client)) == 1


def test_empty_checkout_page(client):
    page = soup(client.get("/checkout"))
    assert "Your cart is empty" in text_of(page.find("main"))
    assert page.find("form", id="checkout-form") is None


# -- sessions -------------------------------------------------------------------------------------------------------

def test_session_cookie_attributes(client):
    r = client.get("/")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "set-cookie" not in client.get("/").headers, "the session sticks"


def test_malformed_session_cookie_is_replaced(app):
    with TestClient(app) as c:
        c.cookies.set(SESSION_COOKIE, "x;<script>")
        r = c.get("/")
        assert r.status_code == 200 and r.headers["set-cookie"].startswith(f"{SESSION_COOKIE}=")


def test_carts_and_orders_are_isolated_per_visitor(app):
    with TestClient(app) as alice, TestClient(app) as bob:
        add(alice, MUG, 2)
        add(bob, LAMP, 1, finish="White")
        assert [line["label"] for line in cart_lines(alice)] == ["Ceramic Coffee Mug 12 oz"]
        assert [line["label"] for line in cart_lines(bob)] == ["LED Desk Lamp with USB Port (Finish: White)"]
        alice_line = cart_lines(alice)[0]["line_id"]
        r = bob.post("/cart/update", data={"line_id": alice_line, "quantity": "9"}, follow_redirects=False)
        assert r.status_code == 404, "one visitor cannot touch another's cart"
        r = bob.post("/cart/remove", data={"line_id": alice_line}, follow_redirects=False)
        assert r.status_code == 404
        assert cart_lines(alice)[0]["quantity"] == 2
        form = soup(alice.get("/checkout")).find("form", id="checkout-form")
        data = {i["name"]: i["value"] for i in form.find_all("input")}
        location = alice.post("/checkout", data=data, follow_redirects=False).headers["location"]
        assert alice.get(location).status_code == 200
        assert bob.get(location).status_code == 404, "orders are private too"
        assert len(cart_lines(bob)) == 1
