from django.apps import AppConfig


class WaiversConfig(AppConfig):
    name = "waivers"
    verbose_name = "Waivers and secrets"

    def ready(self):
        # The secret checks of ``manage.py check --deploy``.
        from waivers import checks  # noqa: F401
