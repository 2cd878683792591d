from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "security"
    verbose_name = "Security"

    def ready(self):
        # Login and login-failure receivers: auditing and throttling for every
        # way into the site, whichever view called authenticate().
        from security import checks, signals  # noqa: F401
