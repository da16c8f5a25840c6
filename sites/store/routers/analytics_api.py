"""Read-only JSON access to the analytics event log, per visitor.

The ids here are analytics visitor ids, never session cookies: knowing one lets you read that visitor's events, not act
as them. Who may read at all is set when the app is made (`access_mode`): open (the default on loopback), behind a
bearer token (`--analytics-token`), or off (the default when the store listens beyond loopback without a token).
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from ..web import AnalyticsDep


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach: 127.0.0.0/8, ::1 and 'localhost'."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def access_mode(host: str, token: str | None) -> str:
    """'token' when a token is given, else 'open' on a loopback host and 'off' anywhere else."""
    if token:
        return "token"
    return "open" if is_loopback(host) else "off"


def require_access(request: Request) -> None:
    """Router dependency: 404 when the API is off, 401 without the right `Authorization: Bearer <token>`."""
    mode = request.app.state.analytics_access
    if mode == "open":
        return
    if mode == "off":
        raise HTTPException(404, "the analytics API is off: the store listens beyond loopback and has no "
                                 "--analytics-token")
    given = request.headers.get("authorization", "")
    expected = f"Bearer {request.app.state.analytics_token}"
    if not secrets.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8")):
        raise HTTPException(401, "Expect an 'Authorization: Bearer <analytics token>' header, actually: "
                                 + ("a different token" if given else "none"), headers={"www-authenticate": "Bearer"})


router = APIRouter(prefix="/api/analytics", tags=["analytics"], dependencies=[Depends(require_access)])


@router.get("/sessions", name="analytics_sessions")
def sessions(analytics: AnalyticsDep, limit: int = Query(1000, ge=1, le=100_000)) -> dict[str, Any]:
    """Every visitor with events, most recently active first, with their event counts by type."""
    rows = analytics.sessions(limit=limit)
    return {"sessions": rows, "count": len(rows)}


@router.get("/sessions/{sid}", name="analytics_session")
def session_events(sid: str, analytics: AnalyticsDep) -> dict[str, Any]:
    """One visitor's events in order: type, timestamp, variant, path and payload."""
    events = analytics.events(sid) if len(sid) <= 64 else []
    if not events:
        raise HTTPException(404, f"no analytics events for session {sid[:64]!r}")
    return {"session_id": sid, "variant": events[0]["variant"], "events": events}
