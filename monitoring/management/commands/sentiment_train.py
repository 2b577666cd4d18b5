import json
import os
import uuid

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Train the sentiment classifier now, in this process, as a sentiment_train job (so it has a job row, loss "
        "curves and a registered model version). Options are the kind's params; see GET /api/kinds/. Runs under "
        "GENAI_TRAIN_JOB_SOFT_TIME_LIMIT_SECONDS (the train queue's limit, 4 h by default)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", default="finsent")
        parser.add_argument("--csv", default="")
        parser.add_argument("--extra-train-csv", default="",
                            help="More labelled rows (text,label) for the training split only, e.g. data/finance_news/train.csv.")
        parser.add_argument("--base", default="", help="all-minilm-l6-v2, all-mpnet-base-v2 or smollm2 (blank: GENAI_SENTIMENT_BASE_MODEL).")
        parser.add_argument("--text-col", default="text")
        parser.add_argument("--label-col", default="label")
        parser.add_argument("--label-map", default="0=negative,1=positive,2=neutral")
        for name, kind in (("epochs", int), ("batch-size", int), ("max-steps", int), ("max-rows", int), ("patience", int),
                           ("evals-per-epoch", int), ("ensemble", int), ("seeds", int), ("augment-per-class", int), ("seed", int),
                           ("max-len", int), ("train-layers", int), ("lr", float), ("head-lr", float), ("fgm-epsilon", float), ("test-fraction", float),
                           ("validation-fraction", float)):
            parser.add_argument(f"--{name}", type=kind, default=None)
        parser.add_argument("--adversarial", action="store_true")
        parser.add_argument("--no-compare-plain", action="store_true")
        parser.add_argument("--promote-if-better", action="store_true",
                            help="Promote the new version when none is promoted or it beats the promoted one's "
                                 "validation macro-F1 on the same split (--user must be a reviewer or admin).")
        parser.add_argument("--user", help="Owner of the job; default: the monitoring system account.")

    def handle(self, *args, **options):
        from django.contrib.auth import get_user_model

        from generation.exceptions import DomainError
        from generation.models import Job
        from generation.services.jobs import job_create
        from monitoring.services.scoring import monitor_system_user
        from workers.runners import job_run

        params = {k: options[k] for k in ("name", "csv", "extra_train_csv", "base", "text_col", "label_col", "label_map")}
        for key in ("epochs", "batch_size", "max_steps", "max_rows", "patience", "evals_per_epoch", "ensemble", "seeds",
                    "augment_per_class", "seed", "max_len", "train_layers", "lr", "head_lr", "fgm_epsilon", "test_fraction", "validation_fraction"):
            if options[key] is not None:
                params[key] = options[key]
        params["adversarial"] = options["adversarial"]
        params["compare_plain"] = not options["no_compare_plain"]
        params["promote_if_better"] = options["promote_if_better"]
        owner = monitor_system_user()
        if options["user"]:
            owner = get_user_model().objects.filter(username=options["user"]).first()
            if owner is None:
                raise CommandError(f"No user {options['user']!r}.")
        try:
            job, _ = job_create(owner=owner, kind="sentiment_train", params=params, priority=5)
        except DomainError as exc:
            raise CommandError(json.dumps(exc.as_payload())) from None
        outcome = job_run(job_id=str(job.id), worker_id=f"cli/{os.getpid()}/{uuid.uuid4().hex[:8]}")
        job = Job.objects.get(pk=job.pk)
        if outcome != "succeeded":
            raise CommandError(f"job {job.id} {job.status}: {job.error_code} {job.error_message}")
        candidate = job.candidates.first()
        self.stdout.write(json.dumps({"job_id": str(job.id), "summary": candidate.text, "metrics": candidate.metadata}, indent=2, default=str))
