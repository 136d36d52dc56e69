from django.apps import AppConfig


class TrackerConfig(AppConfig):
    name = "tracker"
    verbose_name = "Follow-up tracker"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
