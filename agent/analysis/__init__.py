"""What runs say: summaries and HTML reports of a run, intervals and paired tests, A/B tests of two sites, and the
UX-sensitivity experiment. Pure functions of the traces, apart from the A/B runners, which run sessions on URLs.
(`abtest.abtest`, the synchronous runner, is not re-exported: the name would hide the `abtest` module.)"""

from .abtest import ABResult, abtest_async, compare_runs, format_abtest
from .report import write_report
from .stats import Interval
from .summary import FunnelConfig, RunSummary, format_summary, summarize, write_summary

__all__ = ["ABResult", "FunnelConfig", "Interval", "RunSummary", "abtest_async", "compare_runs", "format_abtest",
           "format_summary", "summarize", "write_report", "write_summary"]
