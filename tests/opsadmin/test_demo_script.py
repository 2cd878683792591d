"""`make demo` end to end: scripts/demo.py on a scratch database, in a browser.

The script is started the way the Makefile starts it, on a free port, with
its own PostgreSQL database and var/ folder. The test waits for the URL it
prints, logs in as the printed operator with the printed password and a
code from the printed authenticator key, looks at the demo data in the
admin, then presses Ctrl-C (SIGINT to the script alone, as a terminal
would) and expects every process to stop.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from base64 import b32decode
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django_otp.oath import TOTP

from tests.browser import chromium

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
STARTED = "opsadmin is running: "


def _server_url(name: str) -> str:
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"


@pytest.fixture
def scratch_database():
    name = f"opsadmin_demo_test_{os.getpid()}"
    with psycopg.connect(_server_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _server_url(name)
    with psycopg.connect(_server_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Output:
    """The script's output, read in a thread so a full pipe never blocks it."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,))
        self._thread.start()

    def _read(self, stream):
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, process, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((line for line in self.lines if text in line), None)
            if found:
                return found
            if process.poll() is not None:
                break
            time.sleep(0.5)
        tail = "\n".join(self.lines[-40:])
        raise AssertionError(f"no {text!r} in the demo's output:\n{tail}")

    def text(self) -> str:
        return "\n".join(self.lines)


def _login(text: str, username: str) -> tuple[str, str]:
    start = re.search(rf"^\s*{username} \(", text, re.MULTILINE).start()
    block = text[start:]
    password = re.search(r"password: (\S+)", block).group(1)
    key = re.search(r"authenticator key: ([A-Z2-7]+)", block).group(1)
    return password, key


def test_the_demo_serves_its_data_and_stops_on_ctrl_c(scratch_database, tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": scratch_database,
        "REDIS_URL": settings.REDIS_URL,
        "OPSADMIN_VAR_DIR": str(tmp_path),
        "DEMO_PORT": str(port),
    }
    env.pop("OPSADMIN_REQUIRE_SERVICES", None)
    demo = subprocess.Popen(
        [sys.executable, "scripts/demo.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output(demo.stdout)
    try:
        started = output.wait_for(STARTED, demo, timeout=600)
        url = started.split(STARTED, 1)[1].strip()
        password, key = _login(output.text(), "operator")

        with chromium() as browser:
            page = browser.new_page()
            page.goto(url)
            page.fill("#id_username", "operator")
            page.fill("#id_password", password)
            page.click("#content-main input[type=submit]")
            page.wait_for_url("**/security/verify/**")
            page.fill("#id_token", str(TOTP(b32decode(key)).token()).zfill(6))
            page.click("#content-main input[type=submit]")
            page.wait_for_url(url)
            page.goto(f"{url}finance/payout/")
            payouts = page.locator("#result_list tbody tr").count()
            page.goto(f"{url}stuck/stuckcase/")
            stuck_cases = page.locator("#result_list tbody tr").count()
    finally:
        demo.send_signal(signal.SIGINT)
        code = demo.wait(timeout=120)
        output._thread.join(timeout=10)

    assert payouts > 0
    assert stuck_cases > 0
    assert code == 0
    assert "stopping beat, then the worker, then the web server" in output.text()
    # Nothing listens on the port any more: the web server stopped too.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
