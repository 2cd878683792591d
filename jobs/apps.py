from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "scheduled jobs"

    def ready(self):
        # Each app declares its scheduled jobs and its retention targets in
        # its own ``jobs`` module, the way it declares admin in ``admin``.
        autodiscover_modules("jobs")
