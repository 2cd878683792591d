from django.apps import AppConfig


class StuckConfig(AppConfig):
    name = "stuck"
    verbose_name = "Stuck finance operations"
