"""`agent.runtime.replay`: clean replays, each divergence kind, whole runs as a regression check, and the command's exit
codes."""

from __future__ import annotations

import asyncio

import pytest
import typer
from shoppers import BuyFirstPolicy
from tracefix import step, write_session
from typer.testing import CliRunner

from agent.cli.replay import replay_command
from agent.policy.persona import Intent, PersonaIntent, sample_personas
from agent.runtime.replay import (
    ReplayConfig,
    format_run_replay,
    replay,
    replay_async,
    replay_run,
    swap_origin,
)
from agent.runtime.session import RunConfig, run_sessions

SEARCH = {"type": "type_and_submit", "name": "search.products_input", "text": "shoes"}


@pytest.fixture(scope="module")
def recorded(store_a, tmp_path_factory):
    """A purchase session recorded on variant a by the test shopper (http backend)."""
    run_dir = tmp_path_factory.mktemp("replay-run")
    items = [PersonaIntent(persona=sample_personas(1)[0], intent=Intent(text="I need shoes.", keywords=("shoes",)))]
    config = RunConfig(site=store_a.url + "/", backend="http", max_steps=8)
    [result] = asyncio.run(run_sessions(run_dir, BuyFirstPolicy(), items, config, progress=False))
    assert result.outcome == "purchase" and result.steps == 4
    return result.path


def test_clean_replay_on_the_same_variant(recorded, store_a):
    result = replay(recorded, store_a.url, "http")
    assert result.ok and result.divergence is None
    assert result.steps_replayed == 4  # the order id differs from the recorded one, by design; it is masked
    assert result.verdict().startswith("OK: replayed 4 steps")


def test_variant_b_lacks_the_buy_now_name(recorded, store_b):
    result = replay(recorded, store_b.url, "http")
    assert not result.ok and result.steps_replayed == 2
    d = result.divergence
    assert d is not None and (d.step, d.kind, d.actual) == (3, "missing_name", "(absent)")
    assert d.expected.endswith(".buy_now") and d.element == d.expected and d.page.startswith("/product/")
    assert "DIVERGED at step 3 (missing_name)" in result.verdict()


@pytest.mark.browser
def test_clean_replay_in_the_browser(recorded, store_a):
    assert replay(recorded, store_a.url, "browser").ok


async def test_replay_inside_an_event_loop(recorded, store_a):
    assert replay(recorded, store_a.url, "http").ok  # runs in a worker thread
    assert (await replay_async(recorded, store_a.url, "http")).ok


def _replay_one(tmp_path, store, steps, **kw):
    path = write_session(tmp_path, "hand", steps, "terminate")
    return replay(path, store.url, "http", **kw)


def test_missing_name_on_a_hand_built_trace(tmp_path, store_a):
    r = _replay_one(tmp_path, store_a, [
        step(1, "/", {"type": "click", "name": "header.no_such_link"}, next_url="/", title="Home · ShopR1"),
    ])
    assert r.divergence is not None and (r.divergence.step, r.divergence.kind) == (1, "missing_name")


def test_invalid_now(tmp_path, store_a):
    # The name exists but is a link: type_and_submit on it is invalid (not_input).
    r = _replay_one(tmp_path, store_a, [
        step(1, "/", {"type": "type_and_submit", "name": "account.cart", "text": "x"}, next_url="/cart"),
    ])
    assert r.divergence is not None and r.divergence.kind == "invalid_action"
    assert r.divergence.actual.startswith("not_input")


def test_different_next_page_and_title(tmp_path, store_a):
    r = _replay_one(tmp_path, store_a, [step(1, "/", SEARCH, next_url="/search?q=boots")])
    assert r.divergence is not None and r.divergence.kind == "different_page"
    assert (r.divergence.expected, r.divergence.actual) == ("/search?q=boots", "/search?q=shoes")

    r = _replay_one(tmp_path / "t", store_a, [step(1, "/", SEARCH, next_url="/search?q=shoes", title="Old Home")])
    assert r.divergence is not None and r.divergence.kind == "different_page" and r.divergence.expected == "Old Home"
    # Titles can be left out of the comparison.
    r = _replay_one(tmp_path / "t2", store_a, [step(1, "/", SEARCH, next_url="/search?q=shoes", title="Old Home")],
                    config=ReplayConfig(compare_titles=False))
    assert r.ok


def test_recorded_invalid_steps_and_unparseable_steps(tmp_path, store_a):
    r = _replay_one(tmp_path, store_a, [
        step(1, "/", None, next_url="/", valid=False, error_kind="parse_error"),  # skipped
        step(2, "/", {"type": "click", "name": "nope"}, next_url="/", valid=False, error_kind="unknown_name"),
        step(3, "/", SEARCH, next_url="/search?q=shoes"),
        step(4, "/search?q=shoes", {"type": "terminate"}, next_url="/search?q=shoes"),
    ])
    assert r.ok and (r.steps_replayed, r.steps_skipped) == (3, 1)
    assert "1 unparseable skipped" in r.verdict()


def test_now_valid_and_ended_early(tmp_path, store_a):
    r = _replay_one(tmp_path, store_a, [step(1, "/", SEARCH, next_url="/", valid=False,
                                             error_kind="navigation_timeout")])
    assert r.divergence is not None and r.divergence.kind == "now_valid"
    r = _replay_one(tmp_path / "e", store_a, [step(1, "/", {"type": "terminate"}, next_url="/"),
                                              step(2, "/", SEARCH, next_url="/search?q=shoes")])
    assert r.divergence is not None and (r.divergence.step, r.divergence.kind) == (2, "different_page")


def test_bad_input(tmp_path, store_a, recorded):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "step"}\n')
    with pytest.raises(ValueError, match="no session header"):
        replay(bad, store_a.url, "http")
    with pytest.raises(ValueError, match="backend"):
        replay(recorded, store_a.url, "ftp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="http"):
        replay(recorded, "file:///etc", "http")


def test_swap_origin():
    assert swap_origin("http://a:1/product/B?x=1#f", "http://b:2/") == "http://b:2/product/B?x=1"


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command("replay")(replay_command)
    app.command("other")(lambda: None)  # two commands, so "replay" is a subcommand as in the real CLI
    return app


def run_command(capsys, *args, **kwargs) -> tuple[int, str]:
    """Call the command function directly (as typer would after parsing); return its exit code and output."""
    with pytest.raises(typer.Exit) as exc:
        replay_command(*args, **kwargs)
    out = capsys.readouterr()
    return exc.value.exit_code, out.out + out.err


def test_replay_command_exit_codes(recorded, store_a, store_b, tmp_path, capsys):
    code, out = run_command(capsys, recorded, site=store_a.url, backend="http")
    assert code == 0 and out.startswith("OK: replayed 4 steps") and out.count("\n") == 1
    code, out = run_command(capsys, recorded, site=store_b.url, backend="http")
    assert code == 1 and "DIVERGED at step 3 (missing_name)" in out
    code, out = run_command(capsys, tmp_path / "nope.jsonl", site=store_a.url)
    assert code == 2 and "no such session file" in out
    (tmp_path / "junk.jsonl").write_text("not json\n")
    code, out = run_command(capsys, tmp_path / "junk.jsonl", site=store_a.url)
    assert code == 2 and out.startswith("ERROR")
    code, out = run_command(capsys, recorded, site="http://127.0.0.1:9", backend="http")
    assert code == 2 and out.startswith("ERROR")


def test_replay_command_parses_its_options(recorded, tmp_path):
    """The signature works as a typer command: argument, --site and --backend (paths that do not log)."""
    runner = CliRunner()
    backend = runner.invoke(_cli(), ["replay", str(recorded), "--site", "http://x", "--backend", "lynx"])
    assert backend.exit_code == 2 and "lynx" in backend.output
    missing = runner.invoke(_cli(), ["replay", str(tmp_path / "nope.jsonl"), "--site", "http://x"])
    assert missing.exit_code == 2 and "no such session file" in missing.output
    no_site = runner.invoke(_cli(), ["replay", str(recorded)])
    assert no_site.exit_code == 2 and "--site" in no_site.output
    zero = runner.invoke(_cli(), ["replay", str(recorded.parent.parent), "--site", "http://x", "--concurrency", "0"])
    assert zero.exit_code == 2 and "--concurrency" in zero.output


# ------------------------------------------------------------------------------------------------ a whole run
@pytest.fixture(scope="module")
def scripted_run(store_a, store_db, tmp_path_factory):
    """Six sessions of the scripted shopper recorded on variant a (http backend): purchases and terminates."""
    from agent.policy.scripted import ScriptedPolicy
    from agent.wiring import featured_items

    run_dir = tmp_path_factory.mktemp("scripted-run")
    config = RunConfig(site=store_a.url + "/", backend="http", concurrency=3, seed=3, max_steps=20)
    results = asyncio.run(run_sessions(run_dir, ScriptedPolicy(), featured_items(6, 0, store_db), config,
                                       progress=False))
    assert {r.outcome for r in results} == {"purchase", "terminate"}
    return run_dir


@pytest.fixture(scope="module")
def store_unlabeled(store_db):
    """Variant a with icon-only Add to Cart / Buy Now buttons (no accessible name)."""
    from sites.store.server import StoreServer

    with StoreServer(store_db, variant="unlabeled-buttons") as server:
        yield server


def test_a_run_replays_cleanly_on_its_own_variant(scripted_run, store_a):
    run = replay_run(scripted_run, store_a.url, "http", concurrency=3)
    assert (run.clean, run.diverged, run.failed, run.exit_code) == (6, 0, [], 0)
    assert run.groups() == []
    assert format_run_replay(run).startswith(f"OK: 6 of 6 traces of {scripted_run} replay cleanly")


def test_a_run_diverges_where_the_buttons_lost_their_names(scripted_run, store_unlabeled):
    run = replay_run(scripted_run, store_unlabeled.url, "http")
    assert run.exit_code == 1 and run.diverged >= 3 and run.clean + run.diverged == 6
    groups = run.groups()
    # Every first divergence is the same kind of break: a buy button's name is gone from a product page.
    assert {(g.page_kind, g.kind) for g in groups} == {("product", "missing_name")}
    assert {g.element for g in groups} <= {"*.add_to_cart", "*.buy_now"}
    assert sum(len(g.sessions) for g in groups) == run.diverged
    assert [len(g.sessions) for g in groups] == sorted((len(g.sessions) for g in groups), reverse=True)
    text = format_run_replay(run)
    assert text.startswith(f"DIVERGED: {run.clean} of 6 traces") and f"{run.diverged} diverged" in text
    assert "Where the replays first diverge" in text and "page kind" in text and "product" in text
    assert groups[0].element in text and text.count("DIVERGED at step") == run.diverged


@pytest.mark.browser
def test_a_run_replays_in_the_browser(scripted_run, store_a, store_unlabeled):
    assert replay_run(scripted_run, store_a.url, "browser", concurrency=2).exit_code == 0
    assert replay_run(scripted_run, store_unlabeled.url, "browser", concurrency=2).exit_code == 1


def test_replay_command_on_a_run_dir(scripted_run, store_a, store_unlabeled, tmp_path, capsys):
    code, out = run_command(capsys, scripted_run, site=store_a.url, backend="http", concurrency=2)
    assert code == 0 and out.startswith("OK: 6 of 6 traces")
    code, out = run_command(capsys, scripted_run, site=store_unlabeled.url, backend="http", concurrency=2)
    assert code == 1 and "Where the replays first diverge" in out and "missing_name" in out
    # Bad input: a missing dir, a dir without sessions/ (an A/B output gets a hint), no traces, a bad URL.
    code, out = run_command(capsys, tmp_path / "nope", site=store_a.url, backend="http")
    assert code == 2 and "no such session file or run directory" in out
    (tmp_path / "ab" / "a" / "sessions").mkdir(parents=True)
    code, out = run_command(capsys, tmp_path / "ab", site=store_a.url, backend="http")
    assert code == 2 and "has none" in out and f"replay {tmp_path / 'ab' / 'a'}" in out
    code, out = run_command(capsys, tmp_path / "ab" / "a", site=store_a.url, backend="http")
    assert code == 2 and "Expect session traces" in out
    code, out = run_command(capsys, scripted_run, site="file:///etc", backend="http")
    assert code == 2 and "http(s) site URL" in out


def test_replay_command_on_a_run_with_a_damaged_trace(scripted_run, store_a, tmp_path, capsys):
    """A trace that cannot be replayed makes the check incomplete (exit 2), and the others are still replayed."""
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(scripted_run / "sessions", run_dir / "sessions")
    with (run_dir / "sessions" / "s00000.jsonl").open("a") as f:
        f.write('{"kind": "step", "torn\n')
    (run_dir / "sessions" / "s00009.jsonl").write_text("not json\n")
    code, out = run_command(capsys, run_dir, site=store_a.url, backend="http")
    assert code == 2 and out.startswith("INCOMPLETE: 5 of 7 traces") and "2 could not be replayed" in out
    assert "s00000.jsonl: 1 unreadable line(s)" in out and "could not replay s00009.jsonl" in out
    # The site is down: nothing could be replayed.
    code, out = run_command(capsys, scripted_run, site="http://127.0.0.1:9", backend="http")
    assert code == 2 and "0 of 6 traces" in out and "cannot open the start page" in out


def test_doctests():
    import doctest

    import agent.runtime.replay

    assert doctest.testmod(agent.runtime.replay).failed == 0
