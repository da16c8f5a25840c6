"""`agent.runtime.validity.measure_step_validity`: counts the first `steps` steps of seeded store sessions, and starts
only as many sessions as those steps could need."""

from __future__ import annotations

import pytest

from agent.policy import make_policy
from agent.runtime.validity import measure_step_validity
from agent.wiring import sample_from_catalog


async def test_a_few_steps_cost_a_few_sessions(store_url, store_db):
    policy = make_policy("scripted")
    shoppers = sample_from_catalog(store_db, 8, seed=3)
    result = await measure_step_validity(policy, store_url, shoppers, steps=5, seed=0, max_steps=4, concurrency=8)
    assert result.steps == 5 and result.valid_rate == 1.0
    # 5 steps at 4 a session need 2 sessions; a round of all 8 was the old cost. A session that ends early may
    # take one more round of 1.
    assert 2 <= result.sessions <= 4, result


async def test_bad_sizes_are_refused(store_url, store_db):
    policy = make_policy("scripted")
    shoppers = sample_from_catalog(store_db, 2, seed=3)
    for kwargs in ({"steps": 0}, {"steps": 3, "max_steps": 0}):
        with pytest.raises(ValueError, match="Expect steps >= 1"):
            await measure_step_validity(policy, store_url, shoppers, **kwargs)
    with pytest.raises(ValueError, match="some shoppers"):
        await measure_step_validity(policy, store_url, [], steps=3)
