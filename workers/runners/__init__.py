"""The job runners: one module per kind family, each holding its ``*_run`` functions and its
prompts. ``RUNNERS`` maps every job kind (``generation.kinds``) to the function that runs one
job of it; the worker's task passes it to ``generation.services.jobs.job_run``.

Runners compute; they report through their ``RunnerContext`` and call services to store what
they made. Domain effects that follow (alert rules after scoring, review screening of
candidates) belong to those services, not to the runner.
"""

from __future__ import annotations

from generation.runner import Runner
from generation.services import jobs
from workers.runners.alert_summary import alert_summary_run
from workers.runners.copy import copy_run
from workers.runners.echo import echo_run
from workers.runners.embed import brand_example_embed_run, knowledge_embed_run
from workers.runners.finetune import finetune_run
from workers.runners.generate import generate_run
from workers.runners.genmodel_train import genmodel_train_run
from workers.runners.genmodels import (
    augment_run,
    interpolate_run,
    sample_run,
    variants_run,
)
from workers.runners.intent import intent_train_run
from workers.runners.recommendation import recommendation_run
from workers.runners.reply import reply_run
from workers.runners.sentiment import sentiment_score_run, sentiment_train_run

RUNNERS: dict[str, Runner] = {
    "alert_summary": alert_summary_run,
    "augment": augment_run,
    "brand_example_embed": brand_example_embed_run,
    "copy": copy_run,
    "echo": echo_run,
    "finetune": finetune_run,
    "generate": generate_run,
    "genmodel_train": genmodel_train_run,
    "intent_train": intent_train_run,
    "interpolate": interpolate_run,
    "knowledge_embed": knowledge_embed_run,
    "recommendation": recommendation_run,
    "reply": reply_run,
    "sample": sample_run,
    "sentiment_score": sentiment_score_run,
    "sentiment_train": sentiment_train_run,
    "variants": variants_run,
}


def job_run(*, job_id: str, worker_id: str) -> str:
    """Run one job in this process with the registered runners (the task's body; tests and
    commands that run a job in-process call it too)."""
    return jobs.job_run(job_id=job_id, worker_id=worker_id, runners=RUNNERS)
