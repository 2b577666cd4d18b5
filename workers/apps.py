from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"

    def ready(self) -> None:
        # The worker's signal handlers (start-up checks, per-task connection checks, heartbeat)
        # connect whichever module the worker imports first.
        import workers.signals  # noqa: F401
