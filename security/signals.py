"""Audit and throttle every login, whichever view performed it."""

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from security import throttle
from security.audit import audit_record


@receiver(user_logged_in, dispatch_uid="security.audit_login")
def _audit_login(sender, request, user, **kwargs):
    audit_record(
        actor=user,
        # Break-glass accounts get their own action so that a search for
        # superuser use finds every one of them.
        action="superuser.login" if user.is_superuser else "auth.login",
        target=user,
        after={"second_factor": "pending"},
        request=request,
    )


@receiver(user_login_failed, dispatch_uid="security.audit_login_failure")
def _audit_login_failure(sender, credentials, request=None, **kwargs):
    # Without a request (a shell, a command) only the account is counted.
    username = str(credentials.get("username", ""))[:150]
    if throttle.is_locked(username=username, request=request):
        # Refused without a password check; counted once, when it locked.
        return
    locked = throttle.record_failure(
        username=username, request=request, kind="password"
    )
    audit_record(
        actor=None,
        action="auth.login_failed",
        after={"username": username, "locked": locked},
        request=request,
    )
