"""The pool's model servers: a gRPC client and a desired-list sender each, and which
server holds which model version (`pools.cold.placement` decides)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from pools.cold.cache import Key
from pools.cold.modelserver_client import ModelServerClient
from pools.cold.placement import RecentHits, choose_server
from pools.cold.sender import ConfigSender


@dataclass
class Backend:
    client: ModelServerClient
    sender: ConfigSender
    loading: int = 0  # loads under way here


class Servers:
    def __init__(self, clients: Sequence[ModelServerClient],
                 base_path: Callable[[str], str]) -> None:
        if not clients:
            raise ValueError("the pool needs at least one model server")
        # No coalescing sleep: edits made while a reload is in flight go together into the
        # next one anyway, and a lone miss should not wait for company.
        self.backends = [Backend(c, ConfigSender(c.reload, base_path, coalesce_s=0.0))
                         for c in clients]
        self.placement: dict[Key, int] = {}
        self.hits = RecentHits(len(self.backends))

    def __len__(self) -> int:
        return len(self.backends)

    def index(self, key: Key) -> int:
        return self.placement.get(key, 0)

    def of(self, key: Key) -> Backend:
        return self.backends[self.index(key)]

    def place(self, key: Key, victims: Collection[Key] = ()) -> int:
        """Choose (and remember) the server that loads `key`."""
        held = [0] * len(self.backends)
        for index in self.placement.values():
            held[index] += 1
        chosen = choose_server([b.loading for b in self.backends], held,
                               {self.index(v) for v in victims}, self.hits.counts)
        self.placement[key] = chosen
        return chosen

    def forget(self, key: Key) -> None:
        self.placement.pop(key, None)

    @property
    def calls(self) -> int:
        return sum(b.sender.calls for b in self.backends)

    @property
    def status_calls(self) -> int:
        return sum(int(getattr(b.client, "status_calls", 0)) for b in self.backends)

    async def push_all(self) -> list[BaseException | None]:
        return list(await asyncio.gather(*(b.sender.push() for b in self.backends)))

    async def close(self) -> None:
        for backend in self.backends:
            await backend.sender.close()
            await backend.client.close()
