"""The local WebShop-style store: a deterministic SQLite + FTS5 catalog served by FastAPI + Jinja2.

Public entry points: `create_app` (the ASGI app), `StoreServer` (run it in a thread), `Catalog` (read the catalog),
and `build_catalog` (generate one).
"""
