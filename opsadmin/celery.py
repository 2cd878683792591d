"""The Celery app: Redis as broker in production, beat for schedules.

Tasks acknowledge late and are written to be run twice without harm, so a
worker that dies mid-task only causes a repeat, never a loss.
"""

import os

import structlog
from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsadmin.settings")

app = Celery("opsadmin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    timezone="UTC",
    enable_utc=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
app.autodiscover_tasks()


@signals.task_prerun.connect
def _bind_task_context(task_id=None, task=None, **kwargs):
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(task_id=task_id, task=task.name)


@signals.task_postrun.connect
def _clear_task_context(**kwargs):
    structlog.contextvars.clear_contextvars()
