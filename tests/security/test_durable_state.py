"""Finding 6: with `store serve --state`, confirmed orders (and the analytics up to them) survive a kill -9."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sites.store.analytics import Analytics
from sites.store.web import SESSION_COOKIE

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(db: Path, state: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from agent.cli.root import app; app()", "store", "serve", "--db", str(db),
         "--host", "127.0.0.1", "--port", str(port), "--state", str(state)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/static/", timeout=1)
            return proc
        except httpx.HTTPError:
            if proc.poll() is not None:
                log = proc.stderr.read().decode()[-2000:]
                raise AssertionError(f"Expect the store to start, actually: {log}") from None
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("Expect the store to start within 60 s, actually: it did not answer")


def test_orders_survive_kill_9_with_state(store_db, product_asin, tmp_path):
    state = tmp_path / "state.db"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _serve(store_db, state, port)
    orders = []
    try:
        for _ in range(3):
            with httpx.Client(base_url=url) as shopper:
                shopper.post("/cart/add", data={"asin": product_asin, "quantity": "2"})
                r = shopper.post("/checkout", data={"full_name": "Pat Doe", "address": "1 Main St",
                                                    "city": "Springfield", "region": "IL", "postal_code": "62701",
                                                    "country": "United States"})
                assert r.status_code == 303 and r.headers["location"].startswith("/order/"), r.text[:300]
                orders.append((shopper.cookies[SESSION_COOKIE], r.headers["location"]))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    proc = _serve(store_db, state, port)
    try:
        for sid, location in orders:
            page = httpx.get(url + location, headers={"cookie": f"{SESSION_COOKIE}={sid}"})
            assert page.status_code == 200 and "Pat Doe" in page.text, \
                f"Expect order {location} after kill -9 and restart, actually: {page.status_code}"
    finally:
        proc.terminate()
        proc.wait(10)
    purchases = [s for s in Analytics(state).sessions() if s["counts"].get("purchase")]
    assert len(purchases) == 3, f"Expect 3 purchase events after kill -9, actually: {len(purchases)}"
