# The small real knowledge base of the retrieval tests, for the reply commands.
from tests.workers.conftest import (  # noqa: F401
    bitext_fixture,
    fresh_index,
    load_kb,
    minilm,
    no_broker,
)
