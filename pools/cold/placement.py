"""Which of the pool's model servers loads a model. Pure.

Predictions slow down 5-10x in a model-server process that is loading (the
loader holds Python's GIL), while a load in another process barely touches
them, so the pool spreads its models over several processes and loads where
the fewest predictions would wait. A new load goes to the server with the
fewest loads under way (loads then run side by side in separate processes);
among those, to one that is not clearly busier with hits than the quietest
(more than `BUSIER` times its recent hits); then to the server that holds
the victims it evicts (their unload and its load travel in one reload call);
then to the server with the fewest models.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

BUSIER = 1.25  # a server this much busier with hits than the quietest one is spared loads
HALVE_EVERY = 256  # hits (all servers) between two halvings of the recent hit counts


def choose_server(loading: Sequence[int], loaded: Sequence[int],
                  victims_on: Collection[int] = (),
                  hits: Sequence[float] | None = None) -> int:
    """The index of the server for a new load.

    `loading[i]` / `loaded[i]`: loads under way on / models held by server i;
    `victims_on`: the servers the load's evictions free a place on; `hits[i]`: the
    recent hits of server i (see `RecentHits`).
    """
    if not loading or len(loading) != len(loaded) or (hits is not None
                                                      and len(hits) != len(loading)):
        raise ValueError("one count of loads, of models and of hits per server")
    recent = list(hits) if hits is not None else [0.0] * len(loading)
    quietest = min(recent)

    def busy(i: int) -> bool:
        return recent[i] > BUSIER * quietest + 1  # + 1: no verdict on a handful of hits

    return min(range(len(loading)),
               key=lambda i: (loading[i], busy(i), i not in victims_on, loaded[i], i))


class RecentHits:
    """Hits per server, halved every `HALVE_EVERY` hits so that old traffic fades."""

    def __init__(self, servers: int) -> None:
        self.counts = [0.0] * servers
        self._since = 0

    def add(self, server: int) -> None:
        self.counts[server] += 1
        self._since += 1
        if self._since >= HALVE_EVERY:
            self._since = 0
            self.counts = [c / 2 for c in self.counts]
