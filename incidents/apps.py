from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents and on-call"

    def ready(self):
        # A failing scheduled job may declare an incident (jobs.signals).
        from incidents import receivers  # noqa: F401
