"""The read side: the querysets the API, pages and admin use."""

import uuid

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch, QuerySet

from generation import roles
from generation.exceptions import NotFound
from generation.models import Candidate, Job, JobEvent


def job_list(*, user: AbstractBaseUser) -> QuerySet[Job]:
    """Jobs the user may see: their own; reviewers and admins see all."""
    jobs = Job.objects.select_related("owner").prefetch_related(
        Prefetch("candidates", queryset=Candidate.objects.order_by("index"))
    )
    if roles.user_sees_all_jobs(user):
        return jobs
    return jobs.filter(owner=user)


def job_get(*, user: AbstractBaseUser, job_id: str) -> Job:
    """One visible job; a malformed, unknown or foreign id is the same 404."""
    try:
        pk = uuid.UUID(str(job_id))
    except ValueError:
        raise NotFound(f"No job with id {job_id!r}.", field="id") from None
    job = job_list(user=user).filter(pk=pk).first()
    if job is None:
        raise NotFound(f"No job with id {job_id!r}.", field="id")
    return job


def job_events_after(*, job_id: uuid.UUID, after_id: int, limit: int = 500) -> list[JobEvent]:
    return list(JobEvent.objects.filter(job_id=job_id, id__gt=after_id).order_by("id")[:limit])


def job_status(*, job_id: uuid.UUID) -> str | None:
    return Job.objects.filter(pk=job_id).values_list("status", flat=True).first()
