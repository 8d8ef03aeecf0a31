import os

import pytest

from pipelines.procenv import environ_overlay

pytestmark = pytest.mark.unit


def test_overlay_sets_then_restores_set_and_unset_variables(monkeypatch):
    monkeypatch.setenv("PROCENV_T_SET", "before")
    monkeypatch.delenv("PROCENV_T_UNSET", raising=False)
    with environ_overlay({"PROCENV_T_SET": "inside", "PROCENV_T_UNSET": "inside"}):
        assert (os.environ["PROCENV_T_SET"], os.environ["PROCENV_T_UNSET"]) == ("inside", "inside")
    assert os.environ["PROCENV_T_SET"] == "before"
    assert "PROCENV_T_UNSET" not in os.environ


def test_overlay_restores_when_the_block_raises(monkeypatch):
    monkeypatch.delenv("PROCENV_T_UNSET", raising=False)
    with pytest.raises(RuntimeError), environ_overlay({"PROCENV_T_UNSET": "inside"}):
        raise RuntimeError("boom")
    assert "PROCENV_T_UNSET" not in os.environ
