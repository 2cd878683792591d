from django.conf import settings


def client_ip(request) -> str:
    """The client's address, as far as we can trust it.

    Behind ``SECURITY_TRUSTED_PROXY_HOPS`` proxies, each appending to
    X-Forwarded-For, the client is that many entries from the right; anything
    further left is whatever the client chose to send.
    """
    hops = settings.SECURITY_TRUSTED_PROXY_HOPS
    if hops:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= hops:
            return forwarded[-hops][:45]
    return request.META.get("REMOTE_ADDR", "")[:45]
