"""What the provider sent: every webhook delivery and each applied event.

Read-only records. A payload is shown only through opsadmin.logging's
redaction, so a card or bank number or a secret-looking key that a provider
put in a body never reaches an operator's screen.
"""

import json

from django.conf import settings
from django.contrib import admin
from django.db.models import Q
from django.utils.html import format_html

from finance.admin.common import (
    ProviderFilter,
    ReadOnlyAdmin,
    RecentFilter,
    admin_link,
    changelist_link,
    safe_text,
)
from finance.admin.ledger import operation_link
from finance.models import WebhookDelivery, WebhookEvent
from opsadmin.logging import redacted


class ReceivedFilter(RecentFilter):
    title = "received"
    field_name = "received_at"


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "received_at",
        "provider",
        "event_type",
        "event_id",
        "outcome",
        "http_status",
        "processing_ms",
        "operation",
    ]
    list_filter = [ReceivedFilter, "outcome", ProviderFilter]
    search_fields = ["id", "event_id"]
    search_help_text = "A whole delivery id or event id."
    fields = (
        "received_at",
        "provider",
        "event_type",
        "event_id",
        "event_link",
        "outcome",
        "http_status",
        "processing_ms",
        "error_text",
        "operation",
        "payload_text",
    )

    @admin.display(description="operation")
    def operation(self, delivery):
        return operation_link(delivery.operation_kind, delivery.operation_id)

    @admin.display(description="applied event")
    def event_link(self, delivery):
        if not delivery.event_id:
            return "-"
        event = WebhookEvent.objects.filter(
            provider=delivery.provider, event_id=delivery.event_id
        ).first()
        return admin_link(event) if event else "not applied"

    @admin.display(description="error")
    def error_text(self, delivery):
        return safe_text(delivery.error)

    @admin.display(description="payload (redacted)")
    def payload_text(self, delivery):
        if delivery.payload is None:
            return "-"
        text = json.dumps(redacted(delivery.payload), indent=2, sort_keys=True)
        return format_html("<pre>{}</pre>", text)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "provider", "event_id", "event_type", "applied_at"]
    list_filter = [ProviderFilter]
    search_fields = ["id", "event_id"]
    search_help_text = "A whole event row id or provider event id."
    fields = (
        "provider",
        "event_id",
        "event_type",
        "applied_at",
        "operation",
        "deliveries",
    )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        # event_id alone is the second column of webhook_event_once; naming
        # the configured providers lets PostgreSQL use that index. An event
        # of a provider since removed is found from its deliveries.
        query = Q(provider__in=list(settings.PROVIDERS), event_id=term)
        if term.isdigit() and len(term) < 19:
            query |= Q(pk=int(term))
        return queryset.filter(query), False

    @admin.display(description="operation")
    def operation(self, event):
        applied = (
            WebhookDelivery.objects.filter(
                provider=event.provider,
                event_id=event.event_id,
                outcome=WebhookDelivery.Outcome.APPLIED,
            )
            .exclude(operation_id=None)
            .first()
        )
        if applied is None:
            return "-"
        return operation_link(applied.operation_kind, applied.operation_id)

    @admin.display(description="deliveries")
    def deliveries(self, event):
        return changelist_link(
            "webhookdelivery", "every delivery of this event", event_id=event.event_id
        )
