#!/usr/bin/env python3
"""Start opsadmin with demo data: the admin, a Celery worker and Celery beat.

Run by ``make demo`` with the project's virtualenv. The steps:

1. Choose the database and broker. DATABASE_URL and REDIS_URL win when set.
   Otherwise a PostgreSQL or Redis answering on its usual local port is used
   (database ``opsadmin_demo``, Redis database 1), because stuck detection and
   the reconciliation jobs need PostgreSQL; with neither, the embedded
   defaults (SQLite and a file broker in var/) run everything else.
2. Migrate, collect static files, and seed the demo data unless the database
   already holds it (``seed_demo --if-empty``). The logins and their second
   factors are printed once, when they are created.
3. Start gunicorn, the worker and beat. On PostgreSQL, run stuck detection
   and both reconciliations once right away (beat would first run them
   minutes or days later), so their pages have something to show; the daily
   report fetches its settlement file from the sandbox provider over HTTP,
   which is why this waits for the web server. Then print the admin's URL. Ctrl-C stops
   beat and the worker first, so no job is cut off by the web server going
   away under it, then the web server.

``scripts/demo.py --reset`` (``make demo DEMO_ARGS=--reset``) seeds afresh.
DEMO_PORT chooses the port (8000 by default; the sandbox provider's default
address assumes 8000, so another port also moves PROVIDER_SANDBOX_BASE_URL
and SANDBOX_WEBHOOK_URL).
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432"
DEMO_DATABASE = "opsadmin_demo"
LOCAL_REDIS = "redis://127.0.0.1:6379/1"
# Run once at start on PostgreSQL; every one of them is safe to run again.
FIRST_RUNS = [
    "detect_stuck_finance_jobs",
    "daily_reconciliation_report",
    "deep_reconciliation",
]


def say(message: str) -> None:
    print(f"demo: {message}", flush=True)


def local_postgres() -> str | None:
    """The demo database on a local PostgreSQL (created if needed), or None."""
    try:
        import psycopg
    except ImportError:
        return None
    try:
        with psycopg.connect(
            f"{LOCAL_POSTGRES}/postgres", connect_timeout=2, autocommit=True
        ) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [DEMO_DATABASE]
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DEMO_DATABASE}"')
    except psycopg.Error:
        return None
    return f"{LOCAL_POSTGRES}/{DEMO_DATABASE}"


def local_redis() -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            answer = sock.recv(16)
    except OSError:
        return None
    return LOCAL_REDIS if answer.startswith(b"+PONG") else None


def environment(port: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    # Warnings and errors only, so the URL and the logins stay readable;
    # LOG_LEVEL=INFO shows every job run and request.
    env.setdefault("LOG_LEVEL", "WARNING")
    if port != "8000":
        env.setdefault(
            "PROVIDER_SANDBOX_BASE_URL", f"http://127.0.0.1:{port}/sandbox/v1/"
        )
        env.setdefault(
            "SANDBOX_WEBHOOK_URL", f"http://127.0.0.1:{port}/webhooks/provider/sandbox/"
        )

    if env.get("DATABASE_URL"):
        say("database: DATABASE_URL")
    elif url := local_postgres():
        env["DATABASE_URL"] = url
        say(f"database: PostgreSQL at 127.0.0.1:5432, database {DEMO_DATABASE}")
    else:
        say(
            "database: SQLite in var/ (no PostgreSQL answered at 127.0.0.1:5432). "
            "Stuck detection and the reconciliation jobs need PostgreSQL: they will "
            "show as failing in the admin's Jobs page."
        )

    if env.get("REDIS_URL") or env.get("CELERY_BROKER_URL"):
        say("broker: REDIS_URL / CELERY_BROKER_URL")
    elif url := local_redis():
        env["REDIS_URL"] = url
        say("broker: Redis at 127.0.0.1:6379, database 1")
    else:
        say("broker: files in var/celery-broker (no Redis answered at 127.0.0.1:6379)")
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)


def wait_until_ready(url: str, web: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if web.poll() is not None:
            raise SystemExit("demo: the web server exited; see its output above")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"demo: {url} did not answer within {timeout:.0f} s")


def stop(processes: list[tuple[str, subprocess.Popen]]) -> None:
    """Stop in the order given, each given time to finish what it is doing."""
    for name, process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                say(f"{name} did not stop within 20 s; killing it")
                process.kill()
                process.wait()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    port = os.environ.get("DEMO_PORT", "8000")
    env = environment(port)
    var_dir = Path(env.get("OPSADMIN_VAR_DIR", ROOT / "var"))
    var_dir.mkdir(parents=True, exist_ok=True)

    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    # --reset wipes the demo data and seeds it again with new second factors.
    reset = "--reset" in sys.argv[1:]
    manage(env, "seed_demo", "--reset" if reset else "--if-empty")

    web = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "gunicorn",
            "opsadmin.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    celery = [PYTHON, "-m", "celery", "-A", "opsadmin"]
    worker = subprocess.Popen(
        [*celery, "worker", "--loglevel", env["LOG_LEVEL"], "--concurrency=2"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    beat = subprocess.Popen(
        [
            *celery,
            "beat",
            "--loglevel",
            env["LOG_LEVEL"],
            "--schedule",
            str(var_dir / "beat"),
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    # Each child runs in its own session, so Ctrl-C reaches only this script,
    # which then stops them in order.
    processes = [("beat", beat), ("worker", worker), ("web", web)]

    # SIGTERM (from a supervisor) stops the demo the same way Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/readyz", web)
        if env.get("DATABASE_URL", "").startswith(("postgres:", "postgresql:")):
            for job in FIRST_RUNS:
                say(f"running {job} once now")
                # A failed first run is recorded and alerted like any other;
                # the demo goes on.
                subprocess.run([PYTHON, "manage.py", "run_job", job], cwd=ROOT, env=env)
        print(
            f"\nopsadmin is running: http://127.0.0.1:{port}/admin/\n"
            "Log in with a demo user printed by seed_demo above (password, then a "
            "code from the authenticator key or one of the backup codes).\n"
            "Ctrl-C stops the web server, the worker and beat.\n",
            flush=True,
        )
        while all(process.poll() is None for _, process in processes):
            time.sleep(1)
        name = next(name for name, process in processes if process.poll() is not None)
        say(f"{name} exited; stopping the others")
        return 1
    except KeyboardInterrupt:
        say("stopping beat, then the worker, then the web server")
        return 0
    finally:
        stop(processes)


if __name__ == "__main__":
    sys.exit(main())
