"""manage.py kb_search: masked queries, hits with scores, as the reply kind will see them."""

import io
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    monkeypatch.setattr("generation.services.jobs.current_app", SimpleNamespace(send_task=lambda *a, **kw: None))


def test_search_prints_masked_queries_and_ranked_hits(tmp_path):
    from workers.runtime.retrieval import knowledge_index_clear

    path = tmp_path / "kb.csv"
    path.write_text("title,body\nReturns,Send it back within 30 days.\nShipping,Two to five days.\n")
    call_command("kb_import", str(path), "--kind", "docs", "--embed", "now", stdout=io.StringIO())
    knowledge_index_clear()
    out = io.StringIO()
    with override_settings(GENAI_KB_INDEX_REFRESH_SECONDS=0.0):
        call_command("kb_search", "how long does delivery of ORD-12345 take?", "-k", "2", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("'how long does delivery of [ORDER_ID] take?': 2 hits in")
    assert "'Shipping'" in lines[1] and "'Returns'" in lines[2]
    knowledge_index_clear()
    with pytest.raises(CommandError, match="GENAI_KB_SEARCH_MAX_K"):
        call_command("kb_search", "x", "-k", "0", stdout=io.StringIO())
