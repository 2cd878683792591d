"""Step-up: a sensitive action needs a fresh second factor.

A session is *fresh* when its last OTP verification (at login, at
enrolment or at a step-up prompt) is no older than
``settings.STEP_UP_MAX_AGE_SECONDS``. Otherwise the user is asked for a new
code and then brought back to the action:

- a GET comes back to the same URL;
- a POST is kept in the session and, after the code, offered again on a
  page whose single button re-submits it unchanged (a fresh CSRF token
  aside), so the action runs once the user confirms.

Stable API for other apps::

    from security.stepup import step_up_required, step_up_action, StepUpAdminMixin

    @step_up_required                       # a function view
    def close_waiver(request, pk): ...

    @admin.action(description="Approve", permissions=["approve"])
    @step_up_action                         # a ModelAdmin action
    def approve(modeladmin, request, queryset): ...

    class FlagAdmin(StepUpAdminMixin, admin.ModelAdmin):
        ...                                 # every add/change/delete POST

    @method_decorator(step_up_required, name="dispatch")
    class CloseWaiverView(View): ...        # a class-based view

    @method_decorator(step_up_required)     # a custom ModelAdmin view method
    def approve_view(self, request, object_id): ...

``step_up_is_fresh(request)`` answers the question without redirecting, for
code that wants to decide itself.
"""

import time
from functools import wraps
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpResponseRedirect
from django.urls import reverse

VERIFIED_AT_SESSION_KEY = "security_verified_at"
PENDING_POST_SESSION_KEY = "security_step_up_pending"

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

    # The checker sees the admin the mixin goes into, so super() is checked.
    _ModelAdminBase = ModelAdmin[Any]
else:
    _ModelAdminBase = object


def mark_verified(request) -> None:
    """Record that the session has just proven its second factor."""
    request.session[VERIFIED_AT_SESSION_KEY] = time.time()


def step_up_is_fresh(request) -> bool:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_verified():
        return False
    verified_at = request.session.get(VERIFIED_AT_SESSION_KEY)
    if verified_at is None:
        return False
    age = time.time() - float(verified_at)
    return 0 <= age <= settings.STEP_UP_MAX_AGE_SECONDS


def step_up_redirect(request, *, keep_post: bool = True) -> HttpResponseRedirect:
    """Send the user to the step-up prompt, keeping a POST to replay after it.

    Pass ``keep_post=False`` for forms that carry secrets (passwords): their
    POST is not stored in the session; the user comes back to the empty form.
    """
    next_url = request.get_full_path()
    if request.method == "POST" and keep_post:
        request.session[PENDING_POST_SESSION_KEY] = {
            "path": next_url,
            "data": [
                [name, values]
                for name, values in request.POST.lists()
                if name != "csrfmiddlewaretoken"
            ],
        }
    query = urlencode({"next": next_url})
    return HttpResponseRedirect(f"{reverse('security:step_up')}?{query}")


def pop_pending_post(request, path: str) -> list | None:
    """The POST kept for ``path``, once; None when there is none for it."""
    pending = request.session.pop(PENDING_POST_SESSION_KEY, None)
    if pending and pending.get("path") == path:
        return pending["data"]
    return None


def step_up_required(view):
    """Decorator for function views (and ``method_decorator`` on classes)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if step_up_is_fresh(request):
            return view(request, *args, **kwargs)
        return step_up_redirect(request)

    wrapper.step_up_required = True  # type: ignore[attr-defined]
    return wrapper


def step_up_action(action):
    """Decorator for ModelAdmin actions ``(modeladmin, request, queryset)``.

    Put it under ``@admin.action`` so the description and permissions stay
    on the outer function. The changelist POST (action name and selection)
    is replayed after the code, so the admin runs the action then.
    """

    @wraps(action)
    def wrapper(modeladmin, request, queryset):
        if step_up_is_fresh(request):
            return action(modeladmin, request, queryset)
        return step_up_redirect(request)

    wrapper.step_up_required = True  # type: ignore[attr-defined]
    return wrapper


class StepUpAdminMixin(_ModelAdminBase):
    """A ModelAdmin whose add, change and delete POSTs all need a fresh code.

    With ``step_up_on_get = True`` the forms themselves need it too, and a
    POST is never stored for replay: for forms that carry secrets.
    """

    step_up_on_get = False

    def _step_up_needed(self, request) -> bool:
        if step_up_is_fresh(request):
            return False
        return self.step_up_on_get or request.method == "POST"

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if self._step_up_needed(request):
            return step_up_redirect(request, keep_post=not self.step_up_on_get)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        if self._step_up_needed(request):
            return step_up_redirect(request, keep_post=not self.step_up_on_get)
        return super().delete_view(request, object_id, extra_context)
