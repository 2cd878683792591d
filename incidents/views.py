"""The acknowledgement link sent with every page.

It lives outside the admin: the person paged may be on a phone, not logged
in, at night. The signed token in the URL is the credential, and all it can
do is acknowledge that one page. Opening the link only shows the page and a
button; acknowledging takes the button's POST, because mail scanners and
chat link previews open every link they see and must not stop an
escalation by doing so.
"""

from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from incidents.pagerduty import SIGNATURE_HEADER, WebhookRefused, webhook_receive
from incidents.selectors import CHANNEL_NAMES
from incidents.services.paging import notification_from_token, page_acknowledge


@never_cache
@require_http_methods(["GET", "POST"])
def acknowledge(request, token):
    note = notification_from_token(token)
    if note is None:
        raise Http404("This acknowledgement link is not valid or has expired.")
    page = note.page
    just_now = False
    if request.method == "POST":
        page, just_now = page_acknowledge(
            page_id=page.pk, notification_id=note.pk, via="link"
        )
        note.refresh_from_db()
    return render(
        request,
        "incidents/acknowledge.html",
        {
            "note": note,
            "channel_name": CHANNEL_NAMES.get(note.channel, note.channel),
            "page": page,
            "incident": page.incident,
            "test": page.escalation_test,
            "just_now": just_now,
            "open": page.status in (page.Status.ACTIVE, page.Status.EXHAUSTED),
        },
    )


@csrf_exempt  # PagerDuty signs the body; there is no session to protect.
@require_POST
def pagerduty_webhook(request):
    """PagerDuty's v3 webhooks: an acknowledgement there stops our page."""
    try:
        outcome = webhook_receive(
            body=request.body, signature=request.headers.get(SIGNATURE_HEADER, "")
        )
    except WebhookRefused as refused:
        return JsonResponse({"error": str(refused)}, status=refused.status)
    return JsonResponse({"event": outcome.event_id, "result": outcome.result})
