from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from generation import roles
from tests.factories import TokenFactory, UserFactory


def pytest_sessionstart(session):
    """The suite trains and retrieves on the licensed data sets: say where they were looked for,
    instead of dozens of tests failing on a missing CSV."""
    data = Path(settings.SHARED_DATA_DIR)
    if not (data / "customer_support").is_dir():
        raise pytest.UsageError(f"The licensed data sets are not in {data} (GENAI_SHARED_DATA_DIR): "
                                "check out beside shared/, or set GENAI_SHARED_DATA_DIR to its data/ folder.")


@pytest.fixture(scope="session", autouse=True)
def tiny_lm() -> Path:
    """The tiny random model the test settings point GENAI_LM_MODEL at (built once, cached)."""
    from workers.runtime.models import tiny_lm_build

    return tiny_lm_build(Path(settings.GENAI_LM_MODEL))


@pytest.fixture(scope="session")
def smollm2():
    """The shipped SmolLM2-135M-Instruct, loaded once for the tests of real model behaviour."""
    from workers.runtime.models import lm_get

    return lm_get("smollm2")


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test (tiny models run faster without thread hand-offs, and
    two test processes do not fight over the cores), the previous count restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def make_user(db):
    def make(role: str | None = roles.AGENT, **kwargs):
        return UserFactory(role=role, **kwargs)

    return make


@pytest.fixture
def api_for(db):
    """An API client authenticated with a token for a new user of ``role`` (None: no role)."""

    def make(role: str | None = roles.AGENT, user=None) -> APIClient:
        user = user or UserFactory(role=role)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=user).key}")
        client.user = user
        return client

    return make
