"""Running scheduled jobs and watching that they run.

``job_run`` is the one entry point for every trigger (Celery beat, a
Kubernetes CronJob or cron through ``manage.py run_job``, an operator's "run
now"). ``jobs_check`` is the watchdog: overdue jobs (the dead man's switch),
runs past their maximum run time, and runs whose process died.
"""

import json
import os
import socket
import time
import traceback
from datetime import datetime

import requests
import structlog
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from alerts.services import alert_resolve, alert_trigger
from jobs.capture import RunLogCapture
from jobs.locks import LockKeeper, job_lock
from jobs.models import Job, JobRun
from jobs.registry import Job as JobSpec
from jobs.registry import job_get, jobs_all
from jobs.selectors import jobs_with_status, maintenance_window_active
from jobs.signals import job_failed

log = structlog.get_logger(__name__)


def alert_key(job: str, problem: str) -> str:
    """The dedup key of one kind of problem of one job: failed, missed, hung."""
    return f"job.{job}.{problem}"


def job_run(*, name: str, trigger: str, requested_by=None) -> JobRun:
    """Run job ``name`` once, recorded, single-flight, alerting on the outcome.

    1. Take the job's lock (Redis SET NX PX with a random token, or a
       conditional UPDATE without Redis). When another copy holds it, record
       a ``skipped_locked`` run and return: the other copy does the work.
    2. Record the run as running, committed at once so that the watchdog
       sees it, and keep the lock renewed while the job works.
    3. Call the job with its log lines captured; apply the output check.
    4. Record the outcome, release the lock (only ours), then alert on a
       failure streak or resolve the job's alerts on success.
    """
    job = job_get(name)
    Job.objects.get_or_create(name=name)
    identity = {"host": socket.gethostname()[:255], "pid": os.getpid()}
    lock = job_lock(name)
    if not lock.acquire():
        now = timezone.now()
        run = JobRun.objects.create(
            job=name,
            trigger=trigger,
            requested_by=requested_by,
            started_at=now,
            finished_at=now,
            duration_ms=0,
            outcome=JobRun.Outcome.SKIPPED_LOCKED,
            **identity,
        )
        log.info("job.skipped_locked", job=name, run_id=run.pk, trigger=trigger)
        return run

    interrupted = None
    try:
        run = JobRun.objects.create(
            job=name,
            trigger=trigger,
            requested_by=requested_by,
            lock_token=lock.token,
            **identity,
        )
        keeper = LockKeeper(lock, job=name)
        keeper.start()
        try:
            with (
                structlog.contextvars.bound_contextvars(job=name, job_run_id=run.pk),
                RunLogCapture() as capture,
            ):
                interrupted = _call(job, run)
        finally:
            keeper.stop()
        run.log = capture.text()
        if keeper.lost:
            run.error = (run.error + "\nthe lock lapsed during the run").strip()
        run.save()
    finally:
        lock.release()

    _after_run(job, run)
    if interrupted is not None:
        raise interrupted
    return run


def _call(job: JobSpec, run: JobRun) -> BaseException | None:
    """Call the job and fill in ``run``; return an interruption to re-raise."""
    interrupted = None
    started = time.monotonic()
    log.info("job.started", trigger=run.trigger)
    try:
        result = job.resolve_func()()
        run.counts = _counts(result)
        problem = job.output_check(result) if job.output_check else None
        if problem:
            run.outcome = JobRun.Outcome.FAILED
            run.error = f"output check: {problem}"
        else:
            run.outcome = JobRun.Outcome.SUCCESS
    except BaseException as exc:
        run.outcome = JobRun.Outcome.FAILED
        run.error = f"{type(exc).__name__}: {exc}"[:5000]
        run.traceback = traceback.format_exc()
        log.exception("job.raised")
        if not isinstance(exc, Exception):
            # SystemExit, KeyboardInterrupt: recorded, then let it stop us.
            interrupted = exc
    run.finished_at = timezone.now()
    run.duration_ms = round((time.monotonic() - started) * 1000)
    log.info(
        "job.finished",
        outcome=run.outcome,
        duration_ms=run.duration_ms,
        counts=run.counts,
    )
    return interrupted


def _counts(result) -> dict:
    counts = result if isinstance(result, dict) else getattr(result, "counts", None)
    if not isinstance(counts, dict):
        return {}
    # Whatever the job returned must fit in a JSON column.
    return json.loads(json.dumps(counts, default=str))


def _after_run(job: JobSpec, run: JobRun) -> None:
    """Alert or resolve; a failure here is logged and never hides the run."""
    try:
        if run.outcome == JobRun.Outcome.SUCCESS:
            for problem in ("failed", "missed", "hung"):
                alert_resolve(key=alert_key(job.name, problem))
            heartbeat_ping(job.name, failed=False)
        elif run.outcome in (JobRun.Outcome.FAILED, JobRun.Outcome.TIMED_OUT):
            _failure_alert(job, run)
            heartbeat_ping(job.name, failed=True)
    except Exception:
        log.exception("job.alerting_error", job=job.name, run_id=run.pk)


def _muted_reason(job: str, at: datetime) -> str:
    window = maintenance_window_active(job=job, at=at)
    if window is None:
        return ""
    until = f"{window.ends_at:%Y-%m-%d %H:%M} UTC"
    return f"maintenance window {window.pk} until {until}: {window.reason}"


def _failure_alert(job: JobSpec, run: JobRun) -> None:
    failures = jobs_with_status().get(name=job.name).consecutive_failures
    if failures < job.alert_after:
        log.info("job.failure_below_threshold", job=job.name, failures=failures)
        return
    first_line = (run.error.splitlines() or ["no error text"])[0]
    muted_reason = _muted_reason(job.name, timezone.now())
    alert_trigger(
        key=alert_key(job.name, "failed"),
        summary=f"Job {job.name} failed ({failures} in a row): {first_line}",
        severity=job.severity,
        source=run.host,
        component=job.name,
        group="scheduled-jobs",
        alert_class="job_failed",
        route=job.route,
        muted_reason=muted_reason,
        details={
            "job": job.name,
            "run_id": run.pk,
            "run": reverse("admin:jobs_jobrun_change", args=[run.pk]),
            "outcome": run.outcome,
            "trigger": run.trigger,
            "consecutive_failures": failures,
            "error": run.error[:2000],
        },
    )
    # send_robust logs a receiver's error (logger django.dispatch) and
    # carries on: declaring an incident must not undo the alert above.
    job_failed.send_robust(
        sender=JobSpec,
        job=job,
        run=run,
        consecutive_failures=failures,
        muted=bool(muted_reason),
    )


def heartbeat_ping(job: str, *, failed: bool) -> None:
    """Tell an outside monitor (Healthchecks-style) that the job ran.

    The monitor notices silence on its own, so this path keeps working when
    nothing of ours does.
    """
    url = settings.JOB_HEARTBEAT_URLS.get(job)
    if not url:
        return
    try:
        requests.post(
            url.rstrip("/") + "/fail" if failed else url,
            data=b"",
            timeout=settings.ALERT_READ_TIMEOUT,
        )
    except requests.RequestException as exc:
        log.warning("job.heartbeat_ping_failed", job=job, error=type(exc).__name__)


def jobs_sync() -> None:
    """Give every registered job a row, so the switch counts from now."""
    known = set(Job.objects.values_list("name", flat=True))
    Job.objects.bulk_create(
        [Job(name=job.name) for job in jobs_all() if job.name not in known],
        ignore_conflicts=True,
    )


def jobs_check(*, now: datetime | None = None) -> dict:
    """The watchdog: overdue jobs, hung runs, dead runs. Returns counts.

    Overdue: a job with no success since ``period + grace`` ago (counted from
    when it was first seen if it never succeeded) pages even if it never ran.
    Hung: a run past its ``max_run_time`` whose process still holds the lock
    pages while it hangs. Dead: such a run whose lock lapsed (its process was
    killed) is closed as ``timed_out`` and counts as a failure.
    """
    now = now or timezone.now()
    jobs_sync()
    counts = {"jobs": 0, "overdue": 0, "hung": 0, "timed_out": 0}
    registered = {job.name: job for job in jobs_all()}

    for state in jobs_with_status().filter(name__in=registered):
        job = registered[state.name]
        counts["jobs"] += 1
        since = state.last_success_at or state.first_seen_at
        key = alert_key(job.name, "missed")
        if now <= since + job.period + job.grace:
            alert_resolve(key=key)
            continue
        counts["overdue"] += 1
        last = "never"
        if state.last_success_at:
            last = f"{state.last_success_at:%Y-%m-%d %H:%M} UTC"
        log.warning("job.overdue", job=job.name, last_success=last)
        alert_trigger(
            key=key,
            summary=(
                f"Job {job.name} has not succeeded within its period plus grace "
                f"(last success: {last})"
            ),
            severity=job.severity,
            source=socket.gethostname(),
            component=job.name,
            group="scheduled-jobs",
            alert_class="job_missed",
            route=job.route,
            muted_reason=_muted_reason(job.name, now),
            details={
                "job": job.name,
                "last_success": last,
                "last_run_outcome": state.last_outcome or "never ran",
                "period_seconds": int(job.period.total_seconds()),
                "grace_seconds": int(job.grace.total_seconds()),
            },
        )

    running = JobRun.objects.filter(outcome=JobRun.Outcome.RUNNING, job__in=registered)
    for run in running:
        job = registered[run.job]
        if now <= run.started_at + job.max_run_time:
            continue
        if job_lock(run.job, token=run.lock_token).held():
            counts["hung"] += 1
            _hung_alert(job, run, now)
        elif _close_dead_run(run, now):
            counts["timed_out"] += 1
            alert_resolve(key=alert_key(job.name, "hung"))
            _after_run(job, run)
    return counts


def _hung_alert(job: JobSpec, run: JobRun, now: datetime) -> None:
    minutes = int((now - run.started_at).total_seconds() // 60)
    limit = int(job.max_run_time.total_seconds() // 60)
    log.warning("job.hung", job=job.name, run_id=run.pk, minutes=minutes)
    alert_trigger(
        key=alert_key(job.name, "hung"),
        summary=(
            f"Job {job.name} has been running for {minutes} minutes, "
            f"past its maximum of {limit}"
        ),
        severity=job.severity,
        source=run.host,
        component=job.name,
        group="scheduled-jobs",
        alert_class="job_hung",
        route=job.route,
        muted_reason=_muted_reason(job.name, now),
        details={
            "job": job.name,
            "run_id": run.pk,
            "host": run.host,
            "pid": run.pid,
            "started_at": run.started_at.isoformat(),
        },
    )


def _close_dead_run(run: JobRun, now: datetime) -> bool:
    # Conditional on "still running": the run's own process may finish (and
    # write its outcome) at this very moment, and then its word wins.
    closed = JobRun.objects.filter(pk=run.pk, outcome=JobRun.Outcome.RUNNING).update(
        outcome=JobRun.Outcome.TIMED_OUT,
        finished_at=now,
        error="past its maximum run time and its process no longer holds the lock",
    )
    if closed:
        run.refresh_from_db()
        log.error("job.timed_out", job=run.job, run_id=run.pk, host=run.host)
    return bool(closed)


def job_run_queue(*, names: list[str], requested_by=None) -> list[str]:
    """Queue "run now" for each registered name; return the names queued."""
    from django.db import transaction

    from jobs.tasks import run_job

    user_id = requested_by.pk if requested_by else None

    def queue(name: str) -> None:
        transaction.on_commit(
            lambda: run_job.delay(name, trigger="manual", user_id=user_id)
        )

    for name in names:
        job_get(name)
        queue(name)
    return list(names)
