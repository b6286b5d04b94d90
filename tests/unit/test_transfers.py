"""The coordinator's byte budget for large model transfers (``coordinator/transfers.py``):
never more in flight than the budget, one oversize transfer alone, and a cancelled transfer's
bytes freed at once."""

from __future__ import annotations

import asyncio

from jupyter_fed.coordinator.transfers import Transfers


async def _many(t: Transfers, sizes: list[int], hold: float = 0.01) -> list[int]:
    seen: list[int] = []

    async def one(n: int) -> None:
        async with t.slot(n):
            seen.append(t.in_flight)
            await asyncio.sleep(hold)

    await asyncio.gather(*(one(n) for n in sizes))
    return seen


def test_in_flight_bytes_stay_within_the_budget() -> None:
    t = Transfers(budget=100, large=10)
    seen = asyncio.run(_many(t, [40] * 10))
    assert len(seen) == 10 and max(seen) <= 100 and t.peak == 80  # two at a time
    assert t.in_flight == 0


def test_a_transfer_larger_than_the_budget_goes_alone() -> None:
    t = Transfers(budget=100, large=10)
    seen = asyncio.run(_many(t, [30, 500, 30, 30]))
    assert t.peak == 100 and 100 in seen  # the oversize one held the whole budget, alone
    assert t.in_flight == 0


def test_small_payloads_are_not_bounded_and_the_default_threshold_follows_the_budget() -> None:
    assert not Transfers(budget=256 * 2**20).bounded(4 * 2**20 - 1)
    assert Transfers(budget=256 * 2**20).bounded(4 * 2**20)
    assert Transfers(budget=800).large == 100


def test_the_budget_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("JUPYTER_FED_TRANSFER_BUDGET_MB", "0.5")
    assert Transfers().budget == 2**19


def test_a_cancelled_transfer_frees_its_bytes_for_the_waiting_ones() -> None:
    async def scenario() -> list[str]:
        t, order = Transfers(budget=100, large=10), []

        async def hold(name: str, n: int, seconds: float) -> None:
            async with t.slot(n):
                order.append(name)
                await asyncio.sleep(seconds)

        first = asyncio.create_task(hold("first", 80, 60.0))
        await asyncio.sleep(0.01)
        second = asyncio.create_task(hold("second", 80, 0.0))
        await asyncio.sleep(0.01)
        assert order == ["first"]  # the second waits for room
        first.cancel()
        await asyncio.wait_for(second, 5)
        assert t.in_flight == 0
        return order

    assert asyncio.run(scenario()) == ["first", "second"]
