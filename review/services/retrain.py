"""The scheduled retrain: export what people sent and approved since the last run and start a
``finetune`` job on it. The fine-tune job registers a new model version; promoting it stays a
person's action (the staff page shows its held-back metrics beside the promoted version's)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone

from generation.exceptions import DomainError
from generation.kinds import kind_get
from review.models import RetrainRun
from review.services.export import feedback_export

logger = logging.getLogger(__name__)


def retrain_user():
    """The account that owns scheduled fine-tune jobs: role admin, cannot log in."""
    from django.contrib.auth import get_user_model

    from generation import roles
    from generation.services.users import role_group

    user, created = get_user_model().objects.get_or_create(username=settings.GENAI_RETRAIN_USER)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
        user.groups.add(role_group(role=roles.ADMIN))
    return user


def retrain_run(*, purpose: str = "reply", force: bool = False) -> RetrainRun | None:
    """Export new data and create a fine-tune job if there is enough. Returns the run (also
    when it was skipped, with the reason in ``note``), or None when retraining is off."""
    if not settings.GENAI_RETRAIN_ENABLED and not force:
        return None
    from generation.services.jobs import job_create

    previous = RetrainRun.objects.filter(purpose=purpose, job__isnull=False).first()
    since = previous.until if previous else None
    until = timezone.now()
    path = settings.GENAI_RETRAIN_DIR / f"{purpose}-{until:%Y%m%dT%H%M%S}.jsonl"
    report = feedback_export(kind=purpose, since=since, out=path)
    run = RetrainRun(purpose=purpose, since=since, until=until, examples=report.examples, dataset_path=str(path))
    if kind_get("finetune") is None:
        run.note = "No finetune job kind is installed."
    elif report.examples < settings.GENAI_RETRAIN_MIN_EXAMPLES:
        run.note = f"{report.examples} new examples, fewer than GENAI_RETRAIN_MIN_EXAMPLES ({settings.GENAI_RETRAIN_MIN_EXAMPLES})."
    else:
        try:
            job, _ = job_create(
                owner=retrain_user(),
                kind="finetune",
                params={"purpose": purpose, "dataset_jsonl": str(path)},
                idempotency_key=f"retrain-{purpose}-{until:%Y%m%dT%H%M%S}",
            )
        except DomainError as exc:  # e.g. GENAI_RETRAIN_DIR outside GENAI_FINETUNE_DATA_DIRS
            run.note = f"The fine-tune job was refused: {getattr(exc, 'errors', None) or exc.message}"[:255]
        else:
            run.job = job
            run.note = f"Fine-tune job {job.id} started on {report.examples} examples."
    run.save()
    logger.info("retrain: %s", run.note)
    return run
