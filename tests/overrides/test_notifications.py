"""Approvers hear of a new request over real HTTP, on a local receiver."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from structlog.testing import capture_logs

from opsadmin.celery import app as celery_app
from overrides.notifications import NotificationFailed, notify_approvers
from overrides.services import override_request_withdraw
from overrides.tasks import override_notify_approvers
from tests.factories import make_override, make_stuck_payout

pytestmark = pytest.mark.django_db


class _Receiver(BaseHTTPRequestHandler):
    status = 200
    bodies: list

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        self.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def slack(settings):
    """A Slack webhook stand-in on loopback; yields what it received."""
    handler = type("Handler", (_Receiver,), {"bodies": [], "status": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.SLACK_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/hook"
    yield handler
    server.shutdown()
    server.server_close()


def test_it_posts_the_request_with_amounts_to_slack(slack, doer):
    payout = make_stuck_payout(amount=5_000, fee=150)
    override = make_override(target=payout, doer=doer, ticket_reference="OPS-77")

    assert notify_approvers(override) is True

    (body,) = slack.bodies
    assert f"Override request {override.pk} needs an Approver" in body["text"]
    assert f"not {doer}" in body["text"]
    assert "51.50 EUR" in body["text"]
    assert "OPS-77" in body["text"]
    assert f"/admin/overrides/overriderequest/{override.pk}/change/" in body["text"]


def test_a_refusing_channel_raises_so_the_task_retries(slack, doer):
    slack.status = 500
    override = make_override(target=make_stuck_payout(), doer=doer)

    with pytest.raises(NotificationFailed, match="500"):
        notify_approvers(override)


def test_without_a_webhook_it_only_logs(settings, doer):
    settings.SLACK_WEBHOOK_URL = ""
    override = make_override(target=make_stuck_payout(), doer=doer)

    with capture_logs() as logs:
        sent = notify_approvers(override)

    assert sent is False
    assert logs[0]["event"] == "override.notify_unconfigured"


def test_the_task_skips_a_request_settled_before_it_ran(slack, doer):
    override = make_override(target=make_stuck_payout(), doer=doer)
    override_request_withdraw(override_id=override.pk, doer=doer, reason="oops")

    override_notify_approvers(override.pk)

    assert slack.bodies == []


def test_submitting_notifies_once_the_request_is_committed(
    slack, doer, django_capture_on_commit_callbacks
):
    celery_app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            override = make_override(target=make_stuck_payout(), doer=doer)
    finally:
        celery_app.conf.task_always_eager = False

    assert len(slack.bodies) == 1
    assert f"Override request {override.pk}" in slack.bodies[0]["text"]
