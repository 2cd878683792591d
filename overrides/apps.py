from django.apps import AppConfig


class OverridesConfig(AppConfig):
    name = "overrides"
    verbose_name = "Manual overrides"
