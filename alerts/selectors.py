from django.db.models import Q

from alerts.models import Delivery


def undelivered_q() -> Q:
    """Messages nobody received: failed, and their fallback failed or was
    never possible. A failed fallback is counted with the delivery it stood
    in for, not on its own."""
    return Q(status=Delivery.Status.FAILED, fallback_for__isnull=True) & (
        Q(fallback__isnull=True) | Q(fallback__status=Delivery.Status.FAILED)
    )
