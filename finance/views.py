import time

from django.conf import settings
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from finance.webhooks import SIGNATURE_HEADER, webhook_receive


@csrf_exempt
@require_POST
def provider_webhook(request, provider):
    """The provider's webhook endpoint; finance.webhooks does the work."""
    started = time.monotonic()
    if provider not in settings.PROVIDERS:
        # Not a delivery from anyone we deal with, so nothing to record.
        raise Http404("no such provider")
    # Read one byte past the limit, never more, so an oversized body is
    # recognised without being held in memory.
    body = request.read(settings.WEBHOOK_MAX_BODY_BYTES + 1)
    result = webhook_receive(
        provider=provider,
        body=body,
        signature=request.headers.get(SIGNATURE_HEADER),
        started=started,
    )
    return JsonResponse(
        {"outcome": result.outcome, "error": result.error}, status=result.status
    )
