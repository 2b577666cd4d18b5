import pytest

from generation import roles
from generation.models import JobMetric
from tests.factories import JobFactory, ModelVersionFactory

pytestmark = pytest.mark.django_db


def test_list_filters_by_family_and_purpose(api_for):
    ModelVersionFactory(name="a", family="vae", purpose="")
    ModelVersionFactory(name="b", family="lm_adapter", purpose="reply", metrics={"val_loss": 0.9})
    api = api_for(roles.AGENT)
    body = api.get("/api/models/", {"family": "lm_adapter"}).json()
    assert [row["label"] for row in body["results"]] == ["b@1"]
    assert body["results"][0]["metrics"] == {"val_loss": 0.9}
    assert api.get("/api/models/", {"family": "nope"}).json()["errors"] == {
        "family": ["Must be one of lm_adapter, intent, sentiment, vae, gan."]
    }


def test_promote_is_for_reviewers(api_for):
    version = ModelVersionFactory()
    response = api_for(roles.AGENT).post(f"/api/models/{version.pk}/promote")
    assert response.status_code == 403
    response = api_for(roles.REVIEWER).post(f"/api/models/{version.pk}/promote")
    assert response.status_code == 200 and response.json()["is_default"] is True
    assert api_for(roles.REVIEWER).post("/api/models/999999/promote").status_code == 404


def test_job_metrics_are_visible_to_the_jobs_owner_only(api_for):
    api = api_for(roles.ADMIN)
    job = JobFactory(owner=api.user)
    JobMetric.objects.create(job=job, step=1, values={"loss": 2.5})
    JobMetric.objects.create(job=job, step=1, split="validation", values={"loss": 2.7})
    body = api.get(f"/api/jobs/{job.pk}/metrics").json()
    assert [(p["step"], p["split"], p["values"]["loss"]) for p in body] == [(1, "train", 2.5), (1, "validation", 2.7)]
    assert api_for(roles.AGENT).get(f"/api/jobs/{job.pk}/metrics").status_code == 404
