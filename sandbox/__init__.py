"""A payment provider that answers like a real one, over real HTTP.

Mounted at /sandbox/ only when ``settings.SANDBOX_PROVIDER_ENABLED``; the demo
and the tests point ``PROVIDERS["sandbox"]["base_url"]`` at /sandbox/v1/ and
exercise the same client, idempotency rules, delays and signed webhooks that
production meets. Nothing here imports finance: the sandbox knows our
operations only by the references we send it, as a real provider does.
"""
