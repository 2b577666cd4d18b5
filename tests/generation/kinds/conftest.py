import pytest


@pytest.fixture
def no_broker(monkeypatch):
    """Jobs the services create are recorded instead of sent."""
    from types import SimpleNamespace

    sent = []
    monkeypatch.setattr(
        "generation.services.jobs.current_app",
        SimpleNamespace(send_task=lambda name, args=None, **options: sent.append((name, args, options))),
    )
    return sent
