"""The origin allowlist: the agent never leaves the site it was pointed at."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


def origin_of(url: str) -> str:
    """`scheme://host[:port]`, lower-cased, default ports dropped. Raises ValueError for URLs with no origin."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"Expect an http(s) URL, actually: {url[:200]!r} ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"Expect an http(s) URL with a host, actually: {url[:200]!r}")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


@dataclass(frozen=True)
class OriginPolicy:
    """Allows URLs whose origin is in `origins`; all else (other hosts, `file:`, `data:`, `javascript:`) is blocked.

    >>> policy = OriginPolicy.for_url("http://127.0.0.1:8000/")
    >>> policy.check("http://127.0.0.1:8000/search?q=x") is None
    True
    >>> policy.check("https://evil.example/")
    "blocked: 'https://evil.example/' is outside the allowed origin(s) http://127.0.0.1:8000"
    """

    origins: frozenset[str]

    @classmethod
    def for_url(cls, url: str, *extra: str) -> OriginPolicy:
        return cls(frozenset(origin_of(u) for u in (url, *extra)))

    def allows(self, url: str) -> bool:
        try:
            return origin_of(url) in self.origins
        except ValueError:
            return False

    def check(self, url: str) -> str | None:
        """None when `url` is allowed, else the reason it is blocked."""
        if self.allows(url):
            return None
        return f"blocked: {url[:200]!r} is outside the allowed origin(s) {', '.join(sorted(self.origins))}"
