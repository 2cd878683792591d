"""The sandbox provider's own background work: settling what it accepted
and delivering its webhooks, with retries, like a real provider would."""

import random

from celery import shared_task
from django.conf import settings

from sandbox import services


@shared_task
def settle_payout(payout_id: int) -> None:
    services.sandbox_settle_due_payout(payout_id)


@shared_task
def settle_deposit(deposit_id: int) -> None:
    services.sandbox_settle_due_deposit(deposit_id)


@shared_task(bind=True, max_retries=None)
def deliver_webhook(self, webhook_id: int) -> None:
    """Send a webhook; on anything but 2xx try again later, then give up.

    Retries back off from 10 seconds to an hour, the way providers keep
    knocking for a day or so.
    """
    if services.sandbox_webhook_deliver(webhook_id=webhook_id):
        return
    if self.request.retries >= settings.SANDBOX_WEBHOOK_MAX_RETRIES:
        services.sandbox_webhook_give_up(webhook_id=webhook_id)
        return
    delay = min(10 * 2**self.request.retries, 3600) * random.uniform(0.8, 1.2)
    raise self.retry(countdown=delay)
