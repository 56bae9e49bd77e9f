"""Objects alive at the start are frozen out of garbage collection; later garbage is not."""

from __future__ import annotations

import gc

from pools.model_server.memory import freeze_long_lived


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_freeze_hides_the_start_but_later_cycles_are_still_collected() -> None:
    try:
        frozen = freeze_long_lived()
        assert frozen > 0 and gc.get_freeze_count() == frozen
        tracked = len(gc.get_objects())
        assert tracked < frozen  # a full collection now walks the newcomers only
        Cycle()  # unreachable at once, kept alive only by its own cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
