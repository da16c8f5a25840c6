"""Shopper sessions on a live site: running them (in-process or on Ray actors), their traces, replaying them, and
who shops (populations of personas with intents, drawn from a list of products such as a site's product export).

The runtime reaches the site only through the URL in `RunConfig.site`; `agent.wiring` starts a local store for it.
(`replay.replay`, one trace, is not re-exported: the name would hide the `replay` module.)
"""

from .population import load_population, sample_from_products, sample_population
from .products import load_products
from .replay import ReplayResult, RunReplay, replay_run
from .session import RunConfig, SessionResult, run_session, run_sessions
from .trace import Trace, TraceWriter, iter_traces, load_run, read_trace

__all__ = ["ReplayResult", "RunConfig", "RunReplay", "SessionResult", "Trace", "TraceWriter", "iter_traces",
           "load_population", "load_products", "load_run", "read_trace", "replay_run", "run_session", "run_sessions",
           "sample_from_products", "sample_population"]
