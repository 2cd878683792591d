"""A loopback HTTP server standing in for PagerDuty, Slack or a webhook target.

It records every request and answers with the statuses a test queues
(``receiver.answer(500, 429)``), then with its default.
"""

import json
import socket
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from opsadmin.celery import app as celery_app


class Receiver:
    def __init__(self):
        self.requests: list[dict] = []
        self._statuses: deque[int] = deque()
        self.default_status = 202
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests.append(
                        {
                            "path": self.path,
                            "content_type": self.headers.get("Content-Type"),
                            "headers": dict(self.headers),
                            "raw": raw,
                            "body": json.loads(raw) if raw else None,
                        }
                    )
                    status = (
                        receiver._statuses.popleft()
                        if receiver._statuses
                        else receiver.default_status
                    )
                body = b'{"status": "success"}' if status < 300 else b"no"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, *statuses: int) -> None:
        self._statuses.extend(statuses)

    def bodies(self, path: str) -> list:
        return [r["body"] for r in self.requests if r["path"] == path]


def closed_port_url() -> str:
    """A loopback URL where nothing listens: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/nothing"


ROUTING_KEY = "R0UTINGKEY0000000000000000000000"


@pytest.fixture
def receiver(settings):
    """PagerDuty at /pagerduty, Slack at /slack, e-mail to oncall@example.com.

    Celery runs tasks in the calling thread, so a delivery queued on commit
    is attempted before the test's next line.
    """
    fake = Receiver()
    fake.thread.start()
    settings.PAGERDUTY_EVENTS_URL = fake.url + "/pagerduty"
    settings.PAGERDUTY_ROUTING_KEY = ROUTING_KEY
    settings.SLACK_WEBHOOK_URL = fake.url + "/slack"
    settings.ALERT_EMAIL_TO = ["oncall@example.com"]
    settings.ALERT_READ_TIMEOUT = 2
    settings.ALERT_CONNECT_TIMEOUT = 1
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield fake
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_eager_propagates = False
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """``with committed():`` runs what the block queued on commit at its end,
    as a real commit would (deliveries are queued on commit)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)
