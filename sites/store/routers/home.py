"""The home page: search bar, departments and a few featured products."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from ..web import page_view, render

router = APIRouter(tags=["pages"], dependencies=[Depends(page_view)])


@router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse, name="home")
def home(request: Request) -> HTMLResponse:
    """Departments and featured products come from `app.state`: computed once at start-up (the catalog is read-only)."""
    return render(request, "home.html", departments=request.app.state.departments,
                  featured=request.app.state.featured)
