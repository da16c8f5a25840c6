from __future__ import annotations

import pytest
from site_server import SiteServer


@pytest.fixture(scope="session")
def site():
    with SiteServer() as server:
        yield server
