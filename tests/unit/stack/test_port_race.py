"""A server that lost its port to an outgoing connection's ephemeral port is started again."""

from __future__ import annotations

import pytest

from pipelines.stack.errors import StackError
from pipelines.stack.proc import retry_port_race

pytestmark = pytest.mark.unit


def _server(log, outcomes):
    """A fake start: each outcome is 'ok', 'bind' (logs the bind error and dies) or 'other'."""
    calls = []

    def start() -> bool:
        outcome = outcomes[len(calls)]
        calls.append(outcome)
        if outcome == "ok":
            return True
        with log.open("a") as fh:
            fh.write("java.net.BindException: Address already in use\n" if outcome == "bind" else "FATAL: bad config\n")
        raise StackError("kafka exited during start-up")

    return start, calls


def test_a_bind_race_is_retried(tmp_path):
    log = tmp_path / "server.log"
    start, calls = _server(log, ["bind", "ok"])
    assert retry_port_race(log, start, pause=0) is True
    assert calls == ["bind", "ok"]


def test_other_failures_are_not_retried(tmp_path):
    log = tmp_path / "server.log"
    start, calls = _server(log, ["other", "ok"])
    with pytest.raises(StackError, match="exited during start-up"):
        retry_port_race(log, start, pause=0)
    assert calls == ["other"]


def test_an_old_bind_error_in_the_log_does_not_count(tmp_path):
    log = tmp_path / "server.log"
    log.write_text("earlier run: java.net.BindException: Address already in use\n")
    start, calls = _server(log, ["other", "ok"])
    with pytest.raises(StackError):
        retry_port_race(log, start, pause=0)
    assert calls == ["other"]


def test_a_port_that_stays_taken_fails_naming_it(tmp_path):
    log = tmp_path / "server.log"
    start, calls = _server(log, ["bind", "bind", "bind"])
    with pytest.raises(StackError, match="port stayed taken for 3 attempts"):
        retry_port_race(log, start, attempts=3, pause=0)
    assert len(calls) == 3
