"""Recording a person shopping in a real browser into a session trace (`shop-r1 record`). Imports Playwright."""

from .recorder import Recorder, record

__all__ = ["Recorder", "record"]
