"""`--help` of every command, and the small error cases of `dlq replay`, `stack reset` and `ui --stop`."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from pipelines.cli import app

pytestmark = pytest.mark.unit


def _command_paths(command=None, path=()):
    command = command or typer.main.get_command(app)
    yield path
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _command_paths(sub, (*path, name))


PATHS = list(_command_paths())


def test_every_command_is_walked():
    names = {" ".join(p) for p in PATHS}
    assert {"status", "reconcile", "stack status", "stack reset", "connectors status", "contract status",
            "dlq list", "dlq replay", "ui", "demo"} <= names


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "reporting")
def test_help_has_no_type_placeholders_for_flags(path):
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output and "BOOLEAN" not in result.output
    assert "\x1b[" not in result.output
    assert "Usage:" in result.output


def test_group_help_lists_whole_summaries():
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "80"})
    commands = result.output.split("Commands:")[1]
    assert "..." not in commands  # click would cut each summary near 45 characters
    assert "finish the current batch" in result.output


@pytest.mark.parametrize("path", [("status",), ("reconcile",), ("stack", "status"), ("connectors", "status"),
                                  ("contract", "status"), ("dlq", "list")], ids=" ".join)
def test_row_commands_offer_a_format(path):
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert "--format" in result.output and "table|csv|json" in result.output


# ------------------------------------------------------------------------------------------ dlq replay --table
def test_dlq_replay_of_an_unknown_table_fails_naming_it(cli):
    result = cli("dlq", "replay", "--table", "nosuch")
    assert result.exit_code == 2, result.output
    assert "replayed" not in result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("error: unknown table 'nosuch'") and "customers" in line


def test_dlq_list_of_an_unknown_table_fails_naming_it(cli):
    result = cli("dlq", "list", "--table", "nosuch", "--format", "json")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: unknown table 'nosuch'")


@pytest.mark.parametrize("name", ["customers", "customers_v1", "public.customers", "customers.public.customers"])
def test_dlq_replay_accepts_contract_physical_source_and_topic_names(cli, name):
    result = cli("dlq", "replay", "--table", name)
    assert result.exit_code == 0, result.output
    assert "replayed 0 of 0 dead letter(s)" in result.stdout


# ------------------------------------------------------------------------------------------ stack reset
@pytest.mark.parametrize("answer", ["n\n", ""], ids=["declined", "end-of-input"])
def test_declining_stack_reset_aborts_without_error(cli, reporting_db, answer):
    result = cli("stack", "reset", input=answer)
    assert result.exit_code == 1, result.output
    assert "aborted" in result.output
    assert "error" not in result.output and "Traceback" not in result.output
    assert "state reset" not in result.output
    assert reporting_db.exists()  # nothing was deleted


# ------------------------------------------------------------------------------------------ ui --stop
def test_ui_stop_with_nothing_running_says_so(cli):
    result = cli("ui", "--stop")
    assert result.exit_code == 0, result.output
    assert "not running" in result.stdout
