"""Fixtures that put the sandbox provider on pytest-django's live server.

Our provider client talks to the sandbox, and the sandbox sends its
webhooks to our endpoint, all over real HTTP on loopback. Celery runs
eagerly, so a task queued on commit runs at once, in the thread that
committed. Imported by the conftest of each test package that uses them.
"""

import json
import threading
import time
from dataclasses import dataclass

import pytest
import requests

from opsadmin.celery import app
from sandbox.models import SandboxIdempotencyKey
from sandbox.services import sign


@pytest.fixture
def celery_eager():
    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = saved


@dataclass
class Sandbox:
    """The live server's addresses and a few helpers for the control API."""

    url: str
    api_key: str
    webhook_secret: str

    @property
    def api(self) -> str:
        return f"{self.url}/sandbox/v1/"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/webhooks/provider/sandbox/"

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        headers.update(kwargs.pop("headers", {}))
        return requests.request(
            method, self.api + path, headers=headers, timeout=10, **kwargs
        )

    def control(self, path: str, **body) -> requests.Response:
        response = self.call("POST", f"control/{path}", json=body)
        assert response.status_code < 300, response.text
        return response

    def wait_until_answered(self, key: str) -> None:
        """Wait for a slow sandbox answer our client stopped waiting for.

        Its thread must store the answer before the test's data is flushed,
        and a retry test needs it stored.
        """
        for _ in range(1000):
            if SandboxIdempotencyKey.objects.filter(key=key, state="done").exists():
                return
            threading.Event().wait(0.01)
        raise AssertionError(f"the sandbox never answered {key}")

    def post_webhook(
        self,
        payload: dict | bytes,
        *,
        secret: str | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> requests.Response:
        """Deliver a webhook to our endpoint, signed unless told otherwise."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        if signature is None:
            signature = sign(
                secret=secret or self.webhook_secret,
                body=body,
                timestamp=int(time.time()) if timestamp is None else timestamp,
            )
        headers = {"Content-Type": "application/json"}
        if signature:
            headers["Provider-Signature"] = signature
        return requests.post(self.webhook_url, data=body, headers=headers, timeout=10)


@pytest.fixture
def sandbox(live_server, settings, celery_eager):
    """The sandbox as our provider "sandbox", settling only when told to.

    Tests that want the automatic settlement set SANDBOX_AUTO_SETTLE.
    """
    config = settings.PROVIDERS["sandbox"]
    handle = Sandbox(
        url=live_server.url,
        api_key=config["api_key"],
        webhook_secret=config["webhook_secret"],
    )
    settings.PROVIDERS = {
        **settings.PROVIDERS,
        "sandbox": {**config, "base_url": handle.api},
    }
    settings.SANDBOX_WEBHOOK_URL = handle.webhook_url
    settings.SANDBOX_AUTO_SETTLE = False
    settings.SANDBOX_SETTLE_AFTER_SECONDS = 0
    settings.SANDBOX_WEBHOOK_MAX_RETRIES = 0
    return handle
