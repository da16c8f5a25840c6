"""Product images: deterministic SVG placeholders, coloured by department and showing the product's initials.

Nothing is fetched from the internet: a catalog's own image files, when it names them, are served from the image
directory next to it (meta key `image_dir`, relative to the catalog file), strictly inside that directory.
"""

from __future__ import annotations

import logging
from pathlib import Path
from xml.sax.saxutils import escape

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse

from ..models import Product
from ..web import MAX_ASIN_CHARS, CatalogDep, department_colours, initials

log = logging.getLogger(__name__)
router = APIRouter(tags=["assets"])

IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
               ".gif": "image/gif", ".svg": "image/svg+xml"}
CACHE = "public, max-age=86400"


def placeholder_svg(product: Product) -> str:
    """A 400×400 SVG: department colours, the title's initials, the department name underneath."""
    bg, fg = department_colours(product.department)
    dept = product.department if len(product.department) <= 28 else product.department[:27] + "…"
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="400" viewBox="0 0 400 400">'
        f'<rect width="400" height="400" fill="{bg}"/>'
        f'<circle cx="200" cy="180" r="96" fill="{fg}" fill-opacity="0.08"/>'
        f'<text x="200" y="212" text-anchor="middle" font-family="Helvetica, Arial, sans-serif" font-size="92"'
        f' font-weight="700" fill="{fg}">{escape(initials(product.title))}</text>'
        f'<text x="200" y="340" text-anchor="middle" font-family="Helvetica, Arial, sans-serif" font-size="22"'
        f' fill="{fg}" fill-opacity="0.75">{escape(dept)}</text></svg>'
    )


def catalog_image(request: Request, product: Product) -> Path | None:
    """The catalog's own image file for this product, if it has one and it lies inside the image directory."""
    root: Path | None = request.app.state.image_dir
    if root is None or not product.image:
        return None
    path = (root / product.image).resolve()
    if not path.is_relative_to(root) or not path.is_file() or path.suffix.lower() not in IMAGE_TYPES:
        return None
    return path


@router.api_route("/img/{asin:path}.svg", methods=["GET", "HEAD"], name="image")
def image(asin: str, request: Request, catalog: CatalogDep) -> Response:
    product = catalog.get(asin) if 0 < len(asin) <= MAX_ASIN_CHARS else None
    if product is None:
        raise HTTPException(404, "No such image.")
    own = catalog_image(request, product)
    if own is not None:
        return FileResponse(own, media_type=IMAGE_TYPES[own.suffix.lower()], headers={"Cache-Control": CACHE})
    return Response(placeholder_svg(product), media_type="image/svg+xml", headers={"Cache-Control": CACHE})


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    return Response((Path(__file__).parent.parent / "static" / "favicon.svg").read_bytes(),
                    media_type="image/svg+xml", headers={"Cache-Control": CACHE})
