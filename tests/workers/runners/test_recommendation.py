"""The recommendation runner: products ranked by the shopper's interests (real MiniLM), each of
the top ones with a checked blurb from the tiny model."""

import pytest

from generation.kinds.recommendation import RecommendationParamsSerializer
from generation.runner import NullContext
from workers.runners.recommendation import (
    interest_weights,
    products_rank,
    recommendation_run,
)

INTERACTIONS = [
    {"type": "viewed", "title": "Ceramic espresso cups", "tags": ["kitchen", "coffee"]},
    {"type": "clicked", "title": "Lightweight trail running shoes", "tags": ["running", "trail", "outdoor"]},
    {"type": "reviewed", "title": "Waterproof hiking jacket", "tags": ["hiking", "rain"],
     "text": "Kept me dry on a three-day hike in the mountains."},
]
PRODUCTS = [
    {"id": "lamp", "attributes": {"name": "Halo Desk Lamp", "brand": "Lumen", "category": "Desk lamp", "colour": "Brass"}},
    {"id": "shell", "attributes": {"name": "Storm Shell", "brand": "Northwind", "category": "Rain jacket",
                                   "colour": "Yellow", "features": ["taped seams", "adjustable hood"], "audience": "hikers"}},
    {"id": "runner", "attributes": {"name": "Pegasus Trail", "brand": "Kestrel", "category": "Trail running shoes",
                                    "colour": "Blue", "features": "grippy outsole"}},
]


def _params(**params) -> dict:
    serializer = RecommendationParamsSerializer(data={"interactions": INTERACTIONS, "products": PRODUCTS, **params})
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def test_later_and_stronger_interactions_weigh_more():
    weights = interest_weights(INTERACTIONS)
    assert weights[2] > weights[1] > weights[0]


@pytest.mark.django_db
def test_products_are_ranked_by_the_shoppers_interests(minilm):
    params = _params()
    ranking = products_rank(params["interactions"], params["products"])
    assert [r["id"] for r in ranking][:2] in (["shell", "runner"], ["runner", "shell"])
    assert ranking[-1]["id"] == "lamp"
    by_id = {r["id"]: r for r in ranking}
    assert by_id["shell"]["because"] == 2 and by_id["runner"]["because"] == 1


@pytest.mark.django_db
def test_runner_writes_checked_blurbs_for_the_top_products(minilm):
    result = recommendation_run(params=_params(top_k=2, seed=3), ctx=NullContext())
    assert len(result.candidates) == 2 and [r["id"] for r in result.usage["ranking"]][-1] == "lamp"
    for rank, candidate in enumerate(result.candidates, start=1):
        meta = candidate.metadata
        assert meta["rank"] == rank and meta["product_id"] in ("shell", "runner")
        assert candidate.text.startswith(f"Because you {meta['because']['type']} \u201c{meta['because']['title']}\u201d:")
        assert meta["blurb"] in candidate.text
        # the tiny model writes noise: whatever is left claims nothing the product lacks
        assert meta["checks"]["unsupported"] == [] and meta["checks"]["passed"], meta["checks"]
        assert candidate.score == meta["similarity"]
    assert result.candidates[0].score >= result.candidates[1].score
