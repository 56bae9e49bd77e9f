"""Single flight: at most one running task per key, however many callers wait for it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class SingleFlight(Generic[K, T]):
    """`run(key, work)` starts `work()` unless a task for `key` already runs, then waits for it.

    A caller that stops waiting (timeout, cancelled request) leaves the task running:
    the load goes on for the next request.
    """

    def __init__(self) -> None:
        self._tasks: dict[K, asyncio.Task[T]] = {}
        self.started = 0  # tasks ever started, for tests and metrics

    def task(self, key: K, work: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
        """The running task for `key`, started from `work` if there is none."""
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.ensure_future(work())
            self._tasks[key] = task
            self.started += 1
            task.add_done_callback(lambda done: self._forget(key, done))
        return task

    async def run(self, key: K, work: Callable[[], Awaitable[T]]) -> T:
        """Wait for the key's task; cancelling the caller (a timeout) leaves the task running."""
        return await asyncio.shield(self.task(key, work))

    def running(self, key: K) -> bool:
        return key in self._tasks

    def __len__(self) -> int:
        return len(self._tasks)

    async def cancel_all(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _forget(self, key: K, done: asyncio.Task[T]) -> None:
        if self._tasks.get(key) is done:
            del self._tasks[key]
        if not done.cancelled():
            done.exception()  # mark retrieved: nobody may be left waiting for it
