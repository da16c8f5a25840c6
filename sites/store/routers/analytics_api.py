"""Read-only JSON access to the analytics event log, per session."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query

from ..web import AnalyticsDep

router = APIRouter(prefix="/api/analytics", tags=["analytics"])


@router.get("/sessions", name="analytics_sessions")
def sessions(analytics: AnalyticsDep, limit: int = Query(1000, ge=1, le=100_000)) -> dict[str, Any]:
    """Every session with events, most recently active first, with its event counts by type."""
    rows = analytics.sessions(limit=limit)
    return {"sessions": rows, "count": len(rows)}


@router.get("/sessions/{sid}", name="analytics_session")
def session_events(sid: str, analytics: AnalyticsDep) -> dict[str, Any]:
    """One session's events in order: type, timestamp, variant, path and payload."""
    events = analytics.events(sid) if len(sid) <= 64 else []
    if not events:
        raise HTTPException(404, f"no analytics events for session {sid[:64]!r}")
    return {"session_id": sid, "variant": events[0]["variant"], "events": events}
