"""The read side: the querysets the API, pages and admin use."""

import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, F, Max, Prefetch, Q, QuerySet, Sum

from generation import roles
from generation.exceptions import Forbidden, NotFound
from generation.models import (
    Candidate,
    CompanyProfile,
    Job,
    JobEvent,
    JobMetric,
    KnowledgeDoc,
    KnowledgeItem,
    ModelVersion,
    ModelVersionStatus,
)


def job_list(*, user: AbstractBaseUser) -> QuerySet[Job]:
    """Jobs the user may see: their own; reviewers and admins see all."""
    jobs = Job.objects.select_related("owner").prefetch_related(
        Prefetch("candidates", queryset=Candidate.objects.order_by("index"))
    )
    if roles.user_is_reviewer(user):
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


def candidate_withheld(candidate: Candidate, viewer) -> bool:
    """A candidate the output safety filter flagged is shown only to reviewers and admins (with
    the reasons, in ``metadata.safety``) until one of them clears it. Without a known viewer the
    text is withheld too: the safe default."""
    flagged = bool(((candidate.metadata or {}).get("safety") or {}).get("flagged"))
    return flagged and not (viewer is not None and roles.user_is_reviewer(viewer))


def job_events_after(*, job_id: uuid.UUID, after_id: int, limit: int = 500) -> list[JobEvent]:
    return list(JobEvent.objects.filter(job_id=job_id, id__gt=after_id).order_by("id")[:limit])


def job_status(*, job_id: uuid.UUID) -> str | None:
    return Job.objects.filter(pk=job_id).values_list("status", flat=True).first()


def job_statuses(*, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Status by job id (deleted jobs are absent)."""
    return dict(Job.objects.filter(pk__in=job_ids).values_list("pk", "status"))


def job_events_after_many(*, after_by_job: dict[uuid.UUID, int], limit: int) -> list[JobEvent]:
    """The events of several jobs, each after its own id, in commit order (at most ``limit``)."""
    if not after_by_job:
        return []
    where = Q()
    for job_id, after_id in after_by_job.items():
        where |= Q(job_id=job_id, id__gt=after_id)
    return list(JobEvent.objects.filter(where).order_by("id")[:limit])


# --- knowledge base -------------------------------------------------------------------------


def _knowledge_read_check(user: AbstractBaseUser) -> None:
    from generation.services.knowledge import READ_ROLES

    if not roles.user_has_role(user, *READ_ROLES):
        raise Forbidden("Reading the knowledge base needs a role.")


def knowledge_doc_list(*, user: AbstractBaseUser) -> QuerySet[KnowledgeDoc]:
    """Knowledge docs, newest first, without their embedding bytes."""
    _knowledge_read_check(user)
    return KnowledgeDoc.objects.defer("embedding")


def knowledge_doc_get(*, user: AbstractBaseUser, doc_id: int | str) -> KnowledgeDoc:
    """One doc; a malformed or unknown id is the same 404."""
    docs = knowledge_doc_list(user=user)
    pk = int(doc_id) if str(doc_id).isdigit() and len(str(doc_id)) < 19 else None
    doc = docs.filter(pk=pk).first() if pk is not None else None
    if doc is None:
        raise NotFound(f"No knowledge doc with id {doc_id!r}.", field="id")
    return doc


def knowledge_pending_q(*, model_name: str) -> Q:
    """Rows whose stored embedding is missing, stale (the text changed since) or another model's."""
    return Q(embedding__isnull=True) | ~Q(embedded_hash=F("content_hash")) | ~Q(embedding_model=model_name)


def knowledge_embedding_pending(
    *, kind: str, model_name: str, after_id: int = 0, limit: int | None = None, force: bool = False
) -> QuerySet:
    """Active rows of ``kind`` to embed, in id order after ``after_id`` (``force``: all)."""
    from generation.services.knowledge import knowledge_model

    rows = knowledge_model(kind).objects.filter(active=True, pk__gt=after_id).defer("embedding").order_by("pk")
    if not force:
        rows = rows.filter(knowledge_pending_q(model_name=model_name))
    return rows[:limit] if limit else rows


def knowledge_index_fingerprint(*, kind: str, model_name: str) -> tuple:
    """Changes whenever a searchable row of ``kind`` is added, removed, edited or re-embedded:
    the retrieval index is rebuilt when this differs from the one it was built at."""
    from generation.services.knowledge import knowledge_model

    stats = _knowledge_searchable(knowledge_model(kind), model_name).aggregate(
        n=Count("id"), ids=Sum("id"), updated=Max("updated_at"), embedded=Max("embedded_at")
    )
    return (stats["n"], stats["ids"], stats["updated"], stats["embedded"])


def knowledge_index_vectors(*, kind: str, model_name: str) -> list[tuple[int, bytes]]:
    """``(id, embedding bytes)`` of every searchable row of ``kind``, in id order."""
    from generation.services.knowledge import knowledge_model

    rows = _knowledge_searchable(knowledge_model(kind), model_name).order_by("pk").values_list("pk", "embedding")
    return [(pk, bytes(vector)) for pk, vector in rows.iterator(chunk_size=2000)]


def knowledge_rows_by_id(*, kind: str, ids: list[int]) -> dict[int, KnowledgeItem]:
    """Active rows by id (a row deactivated since the index was built is left out)."""
    from generation.services.knowledge import knowledge_model

    rows = knowledge_model(kind).objects.filter(active=True).defer("embedding")
    found: dict[int, KnowledgeItem] = {}
    for start in range(0, len(ids), 500):
        found.update((row.pk, row) for row in rows.filter(pk__in=ids[start : start + 500]))
    return found


def knowledge_intents() -> set[str]:
    """The intents the knowledge base answers: those of its active conversations and the tags
    of its active docs (lower-case). Replies predict a message's intent among these."""
    from generation.models import Conversation, KnowledgeDoc

    intents = set(
        Conversation.objects.filter(active=True).exclude(intent="").values_list("intent", flat=True).distinct()
    )
    for tags in KnowledgeDoc.objects.filter(active=True).exclude(tags=[]).values_list("tags", flat=True).iterator():
        intents.update(tags or ())
    return {i.strip().lower() for i in intents if isinstance(i, str) and i.strip()}


def _knowledge_searchable(model: type[KnowledgeItem], model_name: str) -> QuerySet:
    return model.objects.filter(active=True, embedding_model=model_name, embedding__isnull=False)


# --- the company profile ----------------------------------------------------------------------


def company_profile_get(*, user: AbstractBaseUser | None = None) -> CompanyProfile:
    """The company profile; a blank, unsaved one until somebody sets it. ``user``: a person
    reading it (any role may; the runner and the safety filter read it without one)."""
    if user is not None and not roles.user_roles(user):
        raise Forbidden("Reading the company profile needs a role.")
    return CompanyProfile.objects.select_related("updated_by").filter(pk=1).first() or CompanyProfile(pk=1)


def company_profile_values() -> dict[str, str]:
    """``{placeholder name: value}`` the profile fills in every reply draft."""
    return company_profile_get().placeholder_values()


# --- trained models -------------------------------------------------------------------------


def model_version_list(*, family: str | None = None, purpose: str | None = None) -> QuerySet[ModelVersion]:
    versions = ModelVersion.objects.select_related("training_job", "created_by", "promoted_by")
    if family:
        versions = versions.filter(family=family)
    if purpose is not None:
        versions = versions.filter(purpose=purpose)
    return versions


def model_version_resolve(*, family: str, name: str | None = None, purpose: str | None = None) -> ModelVersion | None:
    """The version a request names: ``"name@3"`` exactly, ``"name"`` its promoted default or else
    its newest ready version; no name: the promoted default of the family (and purpose), else its
    newest ready version. None when nothing matches."""
    ready = ModelVersion.objects.filter(family=family, status=ModelVersionStatus.READY)
    if name:
        base, _, number = name.partition("@")
        if number:
            if not number.isdigit():
                return None
            return ready.filter(name=base, version=int(number)).first()
        ready = ready.filter(name=base)
    elif purpose is not None:
        ready = ready.filter(purpose=purpose)
    return ready.order_by("-is_default", "-version", "-created_at").first()


def job_metric_points(*, job_id: uuid.UUID) -> QuerySet[JobMetric]:
    return JobMetric.objects.filter(job_id=job_id).order_by("step", "id")


def sentiment_model_resolve(name: str | None = None) -> ModelVersion | None:
    """The classifier that scores: ``name`` ("finsent" or "finsent@2"), else GENAI_SENTIMENT_MODEL,
    else the promoted sentiment version, else the newest ready one."""
    name = name or settings.GENAI_SENTIMENT_MODEL or None
    return model_version_resolve(family="sentiment", name=name, purpose=None if name else "sentiment")
