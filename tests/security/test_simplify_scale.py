"""Finding 5: unique names were claimed by trying _2, _3, ... one at a time (20,000 identical links took minutes)."""

from __future__ import annotations

import time

from envs.simplify import simplify


def test_20000_identical_links_in_under_2_seconds():
    html = "<html><body><main>" + "<a href='/x'>link</a>" * 20_000 + "</main></body></html>"
    t0 = time.perf_counter()
    page = simplify(html)
    took = time.perf_counter() - t0
    assert len(page.elements) == 20_000 and len(set(page.elements)) == 20_000
    last = list(page.elements)[-1]
    assert last == "link_20000", f"Expect the last name link_20000, actually: {last}"
    assert took < 2.0, f"Expect simplify() of 20,000 identical links in < 2 s, actually: {took:.2f} s"


def test_suffixes_skip_names_a_page_already_uses():
    """A literal 'link 2' label takes `link_2`; the duplicates of 'link' go around it, in document order."""
    html = "<body>" + "".join(f"<a href='/{i}'>{t}</a>" for i, t in enumerate(["link", "link 2", "link", "link"]))
    assert list(simplify(html).elements) == ["link", "link_2", "link_3", "link_4"]
