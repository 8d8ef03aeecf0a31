"""ConnectClient with several worker URLs: an unreachable worker is skipped, real answers are kept."""

import http.server
import json
import threading

import pytest

from pipelines.connect.client import ConnectClient, ConnectError
from tests.support.databases import free_port

pytestmark = pytest.mark.unit


class _Worker(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 - http.server's name
        body = json.dumps(["orders-cdc"]).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


@pytest.fixture
def live_worker():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Worker)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_worker_that_is_down_is_skipped_and_the_one_that_answers_is_kept(live_worker):
    dead = f"http://127.0.0.1:{free_port()}"
    client = ConnectClient([dead, live_worker])
    assert client.names() == ["orders-cdc"]
    assert client.url == live_worker  # later requests go straight there
    assert client.names() == ["orders-cdc"]


def test_no_worker_reachable_is_one_line_naming_them():
    dead = [f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"]
    with pytest.raises(ConnectError, match=r"no Kafka Connect worker is reachable \(http://127\.0\.0\.1:\d+, "):
        ConnectClient(dead).names()
    with pytest.raises(ConnectError, match=r"Kafka Connect at http://127\.0\.0\.1:\d+ is not reachable"):
        ConnectClient(dead[0]).names()


def test_an_answer_is_not_retried_elsewhere(live_worker, monkeypatch):
    monkeypatch.setattr(_Worker, "status", 401)
    other = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ConnectError, match="refused the credentials"):
        ConnectClient([live_worker, other]).names()
