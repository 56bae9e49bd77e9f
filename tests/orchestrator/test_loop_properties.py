"""Random histories through the real loop (fake runtime, fake clock, real SQLite): after every
pass the hot pool respects the policy, whatever the traffic, crashes and slow starts."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from db import queries

from .fakes import policy_text, write_policy
from .test_loop import Harness

MODELS = ["a", "b", "c", "d", "e"]
STEP = st.one_of(
    st.tuples(st.just("rate"), st.sampled_from(MODELS),
              st.sampled_from([0.0, 0.5, 3.0, 6.0, 50.0])),
    st.tuples(st.just("ready"), st.none(), st.none()),
    st.tuples(st.just("crash"), st.sampled_from(MODELS), st.none()),
    st.tuples(st.just("wait"), st.none(), st.sampled_from([0.5, 3.0, 30.0, 120.0])),
    # The model's next start waits this many passes for a slow preparation (a model sync).
    st.tuples(st.just("slow"), st.sampled_from(MODELS), st.sampled_from([1, 3])),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STEP, min_size=1, max_size=25), st.integers(1, 3), st.booleans())
def test_invariants_hold_after_every_pass(steps: list[tuple], max_models: int,
                                         pin: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        h = Harness(Path(tmp))
        pinned = ["e"] if pin else []
        write_policy(h.policy_path, policy_text(max_models=max_models, pinned=str(pinned)))
        try:
            for kind, model, value in steps:
                if kind == "rate":
                    h.rates[model] = value
                elif kind == "ready":
                    h.runtime.make_ready()
                elif kind == "slow":
                    h.runtime.preparing[model] = value
                elif kind == "crash" and any(i.model == model and i.running
                                             for i in h.runtime.instances.values()):
                    h.runtime.crash(model)
                h.step(value if kind == "wait" else 1.0)
                check(h, max_models, pinned)
        finally:
            h.orch.close()


def check(h: Harness, max_models: int, pinned: list[str]) -> None:
    draining = set(h.orch.book.draining)
    live = [i for i in h.runtime.list_instances() if i.id not in draining]
    models = [i.model for i in live]
    assert len(models) == len(set(models)), f"duplicate instances: {models}"
    assert len(live) <= max_models, f"{len(live)} hot instances > max_models={max_models}"
    waiting = set(h.orch.book.backoff) | h.orch.preparing  # backing off, or being prepared
    assert set(pinned) <= set(models) | waiting, "a pinned model is not hot"
    by_endpoint = {i.endpoint: i for i in live}
    for placement in queries.list_placements(h.engine):
        if placement.pool == "hot":
            inst = by_endpoint.get(placement.endpoint)
            assert inst is not None, f"{placement.model} routed to no live instance"
            assert inst.running and inst.id in h.runtime.ready, \
                f"{placement.model} routed to an instance that does not answer"
