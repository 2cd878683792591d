from celery import shared_task

from alerts import services


@shared_task(name="alerts.deliver")
def deliver(delivery_id: int) -> None:
    services.delivery_attempt(delivery_id=delivery_id)


@shared_task(name="alerts.sweep")
def sweep() -> None:
    services.deliveries_sweep()
