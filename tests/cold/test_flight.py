"""Single flight and the batching config sender, with fakes."""

from __future__ import annotations

import asyncio

import pytest

from pools.cold.flight import SingleFlight
from pools.cold.sender import ConfigSender


async def test_one_task_for_many_waiters() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    calls = 0
    gate = asyncio.Event()

    async def work() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return 42

    waiters = [asyncio.create_task(flight.run("m", work)) for _ in range(100)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiters) == [42] * 100
    assert calls == 1 and flight.started == 1 and not flight.running("m")


async def test_timed_out_waiter_leaves_the_work_running() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    gate = asyncio.Event()

    async def work() -> int:
        await gate.wait()
        return 7

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(flight.run("m", work), 0.01)
    assert flight.running("m")
    gate.set()
    assert await flight.run("m", work) == 7
    assert flight.started == 1


async def test_errors_reach_every_waiter_and_next_call_retries() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    attempts = 0

    async def work() -> int:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0)
        if attempts == 1:
            raise ValueError("first try fails")
        return attempts

    results = await asyncio.gather(*(flight.run("m", work) for _ in range(5)),
                                   return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)
    assert await flight.run("m", work) == 2


async def test_different_keys_run_in_parallel() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    running = 0
    peak = 0

    async def work(name: str) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return name

    names = [f"m{i}" for i in range(5)]
    assert await asyncio.gather(*(flight.run(n, lambda n=n: work(n)) for n in names)) == names
    assert peak == 5


async def test_sender_batches_edits_made_during_a_call() -> None:
    sent: list[dict[str, list[int]]] = []
    first_call = asyncio.Event()
    release = asyncio.Event()

    async def reload(models: dict[str, tuple[str, list[int]]]) -> None:
        sent.append({m: v for m, (_, v) in models.items()})
        first_call.set()
        await release.wait()

    sender = ConfigSender(reload, lambda m: f"/cache/{m}")
    sender.add("a", 1)
    first = asyncio.create_task(sender.push())
    await first_call.wait()
    sender.add("b", 1)
    sender.add("c", 2)
    later = [asyncio.create_task(sender.push()) for _ in range(3)]
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.gather(first, *later)
    assert sent == [{"a": [1]}, {"a": [1], "b": [1], "c": [2]}]  # 4 pushes, 2 calls
    sender.remove("a", 1)
    await sender.push()
    assert sent[-1] == {"b": [1], "c": [2]}
    await sender.close()


async def test_sender_reports_the_call_error() -> None:
    async def reload(models: dict[str, tuple[str, list[int]]]) -> None:
        raise RuntimeError("server says no")

    sender = ConfigSender(reload, lambda m: m)
    error = await sender.push()
    assert isinstance(error, RuntimeError)
    await sender.close()
