"""One masking policy for stored job params: every kind's free text, masked once on validation."""

import pytest

from generation.kinds import kind_get, kinds_all, kinds_autodiscover
from generation.privacy import params_mask
from generation.services.jobs import job_params_validate

EMAIL, CARD = "jane.doe@example.com", "4111 1111 1111 1111"
PII = f"mail {EMAIL} card {CARD}"


def _top_fields(kind: str) -> set[str]:
    kinds_autodiscover()
    return set(kind_get(kind).params_serializer().fields)


def _masked_kinds() -> list[str]:
    kinds_autodiscover()
    return sorted(k.name for k in kinds_all() if k.masked_params)


@pytest.mark.parametrize("kind", _masked_kinds())
def test_every_masked_path_names_a_field_of_its_kind(kind):
    fields = _top_fields(kind)
    for path in kind_get(kind).masked_params:
        assert path.split(".")[0].rstrip("[]{}") in fields, (kind, path)


def test_params_mask_reaches_nested_free_text_and_leaves_the_rest():
    params = {
        "message": PII,
        "history": [{"role": "customer", "content": PII}],
        "context": {"Customer Email": EMAIL, "Tags": [EMAIL, "vip"]},
        "tone": "friendly",
        "n": 2,
    }
    masked = params_mask(params, paths=kind_get("reply").masked_params)
    assert masked["message"] == "mail [EMAIL] card [CARD]"
    assert masked["history"][0] == {"role": "customer", "content": "mail [EMAIL] card [CARD]"}
    assert masked["context"] == {"Customer Email": "[EMAIL]", "Tags": ["[EMAIL]", "vip"]}
    assert masked["tone"] == "friendly" and masked["n"] == 2
    assert params["message"] == PII  # the caller's dict is not changed
    assert params_mask({"model": "x"}, paths=kind_get("sentiment_score").masked_params) == {"model": "x"}


@pytest.mark.django_db
def test_generate_prompts_are_stored_masked():
    _, validated = job_params_validate(kind="generate", params={"messages": [{"role": "user", "content": PII}]})
    assert validated["messages"][0]["content"] == "mail [EMAIL] card [CARD]"
    _, validated = job_params_validate(kind="generate", params={"prompt": PII})
    assert EMAIL not in validated["prompt"] and "4111" not in validated["prompt"]
