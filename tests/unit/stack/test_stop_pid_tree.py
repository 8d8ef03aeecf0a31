"""stop_pid_tree: the pid file's process and descendants in another session (as gunicorn or Dagster
workers may be) are all stopped."""

import subprocess
import sys
import time

import psutil
import pytest

from pipelines.stack.proc import stop_pid_tree

pytestmark = pytest.mark.unit

PARENT = """
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
print("ready", flush=True)
time.sleep(120)
"""


def test_the_process_and_its_detached_child_are_stopped(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    assert parent.stdout.readline().strip() == "ready"
    child = psutil.Process(parent.pid).children()[0]
    pid_file = tmp_path / "p.pid"
    pid_file.write_text(f"{parent.pid}\n")
    assert stop_pid_tree(pid_file, "test parent", timeout=10)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 15
    while child.is_running() and child.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    assert not stop_pid_tree(pid_file, "test parent")  # nothing left to stop
