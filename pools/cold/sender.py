"""One desired model list and one sender that always sends the latest of it.

A reload replaces the model server's whole list and the server handles one
reload at a time, so two callers sending their own lists could undo each
other. Here callers edit the desired list and `push()`: the next call carries
every edit made before it started, so loads asked for while a call is in
flight go together into the next one (and load in parallel there).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Reload = Callable[[dict[str, tuple[str, list[int]]]], Awaitable[None]]


class ConfigSender:
    def __init__(self, reload: Reload, base_path: Callable[[str], str],
                 coalesce_s: float = 0.005) -> None:
        self._reload = reload
        self._coalesce_s = coalesce_s
        self._base_path = base_path
        self.desired: dict[str, set[int]] = {}
        self.calls = 0
        self._next: asyncio.Future[BaseException | None] | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add(self, model: str, version: int) -> None:
        self.desired.setdefault(model, set()).add(version)

    def remove(self, model: str, version: int) -> None:
        versions = self.desired.get(model)
        if versions is not None:
            versions.discard(version)
            if not versions:
                del self.desired[model]

    def snapshot(self) -> dict[str, tuple[str, list[int]]]:
        return {m: (self._base_path(m), sorted(v)) for m, v in self.desired.items() if v}

    async def push(self) -> BaseException | None:
        """Wait for a reload that includes every edit made so far; its error, if any."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            self._wake.set()
        return await asyncio.shield(self._next)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            # A few ms lets misses that arrive together share one call.
            await asyncio.sleep(self._coalesce_s)
            self._wake.clear()
            future, self._next = self._next, None
            if future is None:
                continue
            config = self.snapshot()
            self.calls += 1
            try:
                await self._reload(config)
                error: BaseException | None = None
            except asyncio.CancelledError:
                future.cancel()
                raise
            except Exception as exc:
                log.warning("reload of %d models: %s", len(config), exc)
                error = exc
            future.set_result(error)
