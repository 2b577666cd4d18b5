"""The copy and recommendation kinds' params: bounds and defaults, each error naming its field."""

import pytest
from django.conf import settings

from generation.exceptions import Forbidden, InvalidInput
from generation.kinds.copy import CopyParamsSerializer
from generation.kinds.recommendation import RecommendationParamsSerializer
from generation.services.jobs import job_create
from tests.factories import UserFactory

ATTRS = {"name": "Metro Sling", "brand": "Urbano", "price": 45, "features": ["strap", " ", "pocket"], "audience": ""}


def _copy(**params):
    serializer = CopyParamsSerializer(data={"attributes": ATTRS, **params})
    return serializer.is_valid(), (serializer.validated_data if serializer.is_valid() else serializer.errors)


def test_copy_defaults_and_cleaned_attributes():
    ok, data = _copy(segments=["students", {"name": "parents", "description": "busy"}])
    assert ok
    assert data["attributes"] == {"name": "Metro Sling", "brand": "Urbano", "price": "45", "features": ["strap", "pocket"]}
    assert data["tone"] == "neutral" and data["length"] == "medium" and data["n"] == 1
    assert data["segments"] == [{"name": "students", "description": ""}, {"name": "parents", "description": "busy"}]
    assert data["max_regenerations"] == settings.GENAI_COPY_MAX_REGENERATIONS


@pytest.mark.parametrize(
    "params, field",
    [
        ({"attributes": {}}, "attributes"),
        ({"attributes": {"name": "  ", "brand": None}}, "attributes"),
        ({"attributes": "a bag"}, "attributes"),
        ({"attributes": {f"k{i}": "v" for i in range(settings.GENAI_COPY_MAX_ATTRIBUTES + 1)}}, "attributes"),
        ({"attributes": {"name": "x" * (settings.GENAI_COPY_MAX_VALUE_CHARS + 1)}}, "attributes"),
        ({"attributes": {"sizes": ["S"] * (settings.GENAI_COPY_MAX_LIST_ITEMS + 1)}}, "attributes"),
        ({"attributes": {"name": {"nested": 1}}}, "attributes"),
        ({"tone": "sarcastic"}, "tone"),
        ({"length": "epic"}, "length"),
        ({"n": 0}, "n"),
        ({"n": settings.GENAI_MAX_CANDIDATES + 1}, "n"),
        ({"segments": [f"s{i}" for i in range(settings.GENAI_COPY_MAX_SEGMENTS + 1)]}, "segments"),
        ({"segments": ["kids", "Kids"]}, "segments"),
        ({"max_regenerations": settings.GENAI_COPY_MAX_REGENERATIONS + 1}, "max_regenerations"),
    ],
)
def test_copy_bounds_name_the_field(params, field):
    ok, errors = _copy(**params)
    assert not ok and field in errors, errors


def _recommendation(**params):
    data = {"interactions": [{"type": "viewed", "title": "Trail shoes"}], "products": [{"attributes": ATTRS}], **params}
    serializer = RecommendationParamsSerializer(data=data)
    return serializer.is_valid(), (serializer.validated_data if serializer.is_valid() else serializer.errors)


def test_recommendation_defaults_and_product_ids():
    ok, data = _recommendation(products=[{"attributes": ATTRS}, {"id": "sku-2", "attributes": {"name": "Tee"}}])
    assert ok and data["top_k"] == 3 and [p["id"] for p in data["products"]] == ["1", "sku-2"]


@pytest.mark.parametrize(
    "params, field",
    [
        ({"interactions": []}, "interactions"),
        ({"interactions": [{"title": "x"}] * (settings.GENAI_RECOMMEND_MAX_INTERACTIONS + 1)}, "interactions"),
        ({"interactions": [{"type": "stared", "title": "x"}]}, "interactions"),
        ({"products": []}, "products"),
        ({"products": [{"attributes": {}}]}, "products"),
        ({"products": [{"attributes": {"name": "a"}}] * (settings.GENAI_RECOMMEND_MAX_PRODUCTS + 1)}, "products"),
        ({"products": [{"id": "a", "attributes": {"name": "a"}}, {"id": "a", "attributes": {"name": "b"}}]}, "products"),
        ({"top_k": settings.GENAI_RECOMMEND_MAX_BLURBS + 1}, "top_k"),
    ],
)
def test_recommendation_bounds_name_the_field(params, field):
    ok, errors = _recommendation(**params)
    assert not ok and field in errors, errors


@pytest.mark.django_db
def test_copy_is_for_marketers_and_admins(no_broker):
    job, _ = job_create(owner=UserFactory(role="marketer"), kind="copy", params={"attributes": ATTRS})
    assert job.queue == "gpu"
    with pytest.raises(Forbidden):
        job_create(owner=UserFactory(role="agent"), kind="copy", params={"attributes": ATTRS})
    with pytest.raises(InvalidInput) as raised:
        job_create(owner=UserFactory(role="marketer"), kind="recommendation", params={"interactions": [], "products": []})
    assert {"interactions", "products"} <= set(raised.value.errors["params"])


def test_empty_cells_do_not_count_towards_the_attribute_limit():
    """A wide catalogue CSV leaves most columns empty for any one product: those are absent
    attributes, not attributes over the limit."""
    from generation.kinds.copy import AttributesField

    wide = {f"k{i}": "" for i in range(settings.GENAI_COPY_MAX_ATTRIBUTES * 2)} | {"name": "Mug", "colour": "red"}
    assert AttributesField().run_validation(wide) == {"name": "Mug", "colour": "red"}
