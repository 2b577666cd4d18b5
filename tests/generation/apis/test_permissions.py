"""Every endpoint x every role, anonymous included."""

import pytest
from rest_framework.test import APIClient

from generation.models import Job
from tests.factories import JobFactory, UserFactory

pytestmark = pytest.mark.django_db

ROLES = [None, "agent", "marketer", "analyst", "reviewer", "admin"]  # None: anonymous


def _client(api_for, role):
    return APIClient() if role is None else api_for(role)


GENERATE = {"kind": "generate", "params": {"prompt": "Hi", "max_new_tokens": 2}}
ECHO = {"kind": "echo", "params": {"text": "hi"}}
REPLY = {"kind": "reply", "params": {"message": "where is my parcel?"}}

# role -> expected status, per endpoint
MATRIX = {
    "create generate": ({None: 401, "agent": 201, "marketer": 201, "analyst": 201, "reviewer": 403, "admin": 201},
                        lambda c, job: c.post("/api/jobs/", GENERATE, format="json")),
    "create echo": ({None: 401, "agent": 403, "marketer": 403, "analyst": 403, "reviewer": 403, "admin": 201},
                    lambda c, job: c.post("/api/jobs/", ECHO, format="json")),
    "create reply": ({None: 401, "agent": 201, "marketer": 403, "analyst": 403, "reviewer": 403, "admin": 201},
                     lambda c, job: c.post("/api/jobs/", REPLY, format="json")),
    "list": ({None: 401, **{r: 200 for r in ROLES[1:]}}, lambda c, job: c.get("/api/jobs/")),
    "detail of another's job": ({None: 401, "agent": 404, "marketer": 404, "analyst": 404, "reviewer": 200, "admin": 200},
                                lambda c, job: c.get(f"/api/jobs/{job.id}")),
    "stream of another's job": ({None: 401, "agent": 404, "marketer": 404, "analyst": 404, "reviewer": 200, "admin": 200},
                                lambda c, job: c.get(f"/api/jobs/{job.id}/stream")),
    "cancel another's job": ({None: 401, "agent": 404, "marketer": 404, "analyst": 404, "reviewer": 403, "admin": 200},
                             lambda c, job: c.post(f"/api/jobs/{job.id}/cancel")),
    "kinds": ({None: 401, **{r: 200 for r in ROLES[1:]}}, lambda c, job: c.get("/api/kinds/")),
    "me": ({None: 401, **{r: 200 for r in ROLES[1:]}}, lambda c, job: c.get("/api/auth/me/")),
    "revoke token": ({None: 401, **{r: 204 for r in ROLES[1:]}}, lambda c, job: c.delete("/api/auth/token/")),
    "schema": ({r: 200 for r in ROLES}, lambda c, job: c.get("/api/schema/")),
    "healthz": ({r: 200 for r in ROLES}, lambda c, job: c.get("/healthz")),
    "metrics": ({r: 200 for r in ROLES}, lambda c, job: c.get("/metrics")),
}


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
@pytest.mark.parametrize("endpoint", list(MATRIX))
def test_permission_matrix(api_for, role, endpoint):
    expected, call = MATRIX[endpoint]
    job = JobFactory(owner=UserFactory(role="agent"))
    if endpoint.startswith("stream"):
        job = JobFactory(owner=job.owner, status="succeeded", finished_at=job.created_at)
    response = call(_client(api_for, role), job)
    if hasattr(response, "streaming_content"):
        b"".join(response.streaming_content)
    assert response.status_code == expected[role], getattr(response, "content", b"")[:300]


@pytest.mark.parametrize("role", ROLES[1:])
def test_users_list_only_their_own_jobs_unless_reviewer_or_admin(api_for, role):
    client = api_for(role)
    JobFactory(owner=client.user)
    JobFactory(owner=UserFactory(role="agent"))
    ids = {j["id"] for j in client.get("/api/jobs/").json()["results"]}
    expected = set(map(str, Job.objects.values_list("id", flat=True))) if role in ("reviewer", "admin") else {
        str(Job.objects.get(owner=client.user).id)
    }
    assert ids == expected


def test_admin_pages_need_staff(client, make_user):
    assert client.get("/admin/").status_code == 302
    client.force_login(make_user("agent"))
    assert client.get("/admin/").status_code == 302
    admin = make_user("admin", is_staff=True, is_superuser=True)
    client.force_login(admin)
    job = JobFactory()
    assert client.get("/admin/generation/job/").status_code == 200
    assert client.get(f"/admin/generation/job/{job.id}/change/").status_code == 200
