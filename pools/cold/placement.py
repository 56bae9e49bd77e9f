"""Which of the pool's model servers loads a model. Pure.

Predictions slow down 5-10x in a model-server process that is loading (the
loader holds Python's GIL), while a load in another process barely touches
them, so the pool spreads its models over several processes. A new load goes
to the server with the fewest loads under way (it keeps the others' hits
fast and loads run side by side in separate processes); among those, to the
server that holds the victims it evicts (their unload and its load then
travel in one reload call); then to the server with the fewest models.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence


def choose_server(loading: Sequence[int], loaded: Sequence[int],
                  victims_on: Collection[int] = ()) -> int:
    """The index of the server for a new load.

    `loading[i]` / `loaded[i]`: loads under way on / models held by server i;
    `victims_on`: the servers the load's evictions free a place on.
    """
    if not loading or len(loading) != len(loaded):
        raise ValueError("one count of loads and of models per server")
    return min(range(len(loading)),
               key=lambda i: (loading[i], i not in victims_on, loaded[i], i))
