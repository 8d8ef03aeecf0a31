"""The stored-offsets read of a partition assignment waits out a reporting DB that is down (worker.py
`stored_offsets_reader`): kafka-python ends the stream when its rebalance callback raises."""

from __future__ import annotations

import psycopg
import pytest
import tenacity

from pipelines.apply.worker import stored_offsets_reader

pytestmark = pytest.mark.unit

NO_WAIT = {"wait": tenacity.wait_none(), "sleep": lambda _s: None}


class FlakyBackend:
    def __init__(self, failures: list[BaseException]) -> None:
        self.failures = list(failures)
        self.reads = 0
        self.reconnects = 0

    def stored_offsets(self, group: str) -> dict[tuple[str, int], int]:
        self.reads += 1
        if self.failures:
            raise self.failures.pop(0)
        return {("svc.public.orders", 0): 42} if group == "g" else {}

    def reconnect(self) -> None:
        self.reconnects += 1


def test_a_server_that_comes_back_is_waited_for_and_reconnected_to():
    down = psycopg.OperationalError("server closed the connection unexpectedly")
    backend = FlakyBackend([down, down])
    assert stored_offsets_reader(backend, "g", max_retries=3, **NO_WAIT)() == {("svc.public.orders", 0): 42}
    assert (backend.reads, backend.reconnects) == (3, 2)


def test_the_last_transient_error_is_raised_after_max_retries():
    down = psycopg.OperationalError("connection refused")
    backend = FlakyBackend([down] * 5)
    with pytest.raises(psycopg.OperationalError, match="connection refused"):
        stored_offsets_reader(backend, "g", max_retries=2, **NO_WAIT)()
    assert backend.reads == 3


def test_a_permanent_error_is_raised_at_once():
    backend = FlakyBackend([psycopg.errors.UndefinedTable("relation _pipeline.offsets does not exist")])
    with pytest.raises(psycopg.errors.UndefinedTable):
        stored_offsets_reader(backend, "g", max_retries=5, **NO_WAIT)()
    assert (backend.reads, backend.reconnects) == (1, 0)
