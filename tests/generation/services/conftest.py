import pytest

from generation.kinds import _REGISTRY, JobKind, kind_register
from generation.kinds.echo import EchoParamsSerializer
from tests.generation.services import runners as test_runners
from workers.runners import RUNNERS


class FakeCelery:
    """Records the wake-up messages services send instead of putting them on the broker."""

    def __init__(self):
        self.sent: list[dict] = []
        self.fail = False

    def send_task(self, name, args=None, **options):
        if self.fail:
            raise ConnectionError("broker unreachable")
        self.sent.append({"name": name, "args": args, **options})


@pytest.fixture
def sent_tasks(monkeypatch) -> FakeCelery:
    fake = FakeCelery()
    monkeypatch.setattr("generation.services.jobs.current_app", fake)
    return fake


@pytest.fixture
def test_kind(monkeypatch):
    """Registers a kind whose runner a test chooses (``tests.generation.services.runners``)."""
    registered = []

    def register(runner: str, *, name: str = "test-kind") -> JobKind:
        kind = kind_register(
            JobKind(
                name=name,
                description="test",
                params_serializer=EchoParamsSerializer,
                queue="cpu",
                roles=frozenset({"admin"}),
            )
        )
        monkeypatch.setitem(RUNNERS, name, getattr(test_runners, runner))
        registered.append(name)
        return kind

    yield register
    for name in registered:
        _REGISTRY.pop(name, None)
