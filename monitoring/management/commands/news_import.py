import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from generation.exceptions import InvalidInput


class Command(BaseCommand):
    help = (
        "Import news items from a CSV (header row: text or body/content/headline, published_at or date, source, url, "
        "title, entities) or a JSON array / JSONL file. Duplicates (same url or text) are skipped and counted; the "
        "items are scored by a sentiment_score job (queued, or run here with --score now). Prints a JSON report."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--source", default=None, help="Source of rows without one; default: the file name.")
        parser.add_argument("--score", choices=("queue", "now", "none"), default="queue",
                            help="queue: a sentiment_score job for the workers (default); now: score in this process; none.")

    def handle(self, *args, file: Path, source, score, **options):
        from monitoring.inputs import NewsItemInputSerializer
        from monitoring.services.news import news_ingest, news_rows_from_file

        try:
            data = file.read_bytes()
        except OSError as exc:
            raise CommandError(f"{file}: {exc.strerror}") from None
        try:
            rows = news_rows_from_file(data=data, name=file.name, max_rows=settings.GENAI_NEWS_MAX_IMPORT_ROWS)
        except InvalidInput as exc:
            raise CommandError(json.dumps(exc.errors)) from None
        default_source = source or file.stem[:64]
        items, errors = [], []
        for index, row in enumerate(rows):
            serializer = NewsItemInputSerializer(data={**row, "source": row.get("source") or default_source})
            if serializer.is_valid():
                items.append(dict(serializer.validated_data))
            else:
                errors.append({"row": index + 1, "errors": serializer.errors})
        if errors:
            raise CommandError(f"{len(errors)} bad rows, nothing imported: " + json.dumps(errors[:20], default=str))
        totals = {"received": 0, "created": 0, "duplicates": 0, "duplicates_in_batch": 0}
        job_ids = set()
        chunk = settings.GENAI_NEWS_MAX_BULK
        for start in range(0, len(items), chunk):
            report = news_ingest(items=items[start : start + chunk], score=score == "queue")
            for key in totals:
                totals[key] += getattr(report, key)
            if report.score_job_id:
                job_ids.add(report.score_job_id)
        out = {**totals, "score_job_ids": sorted(job_ids)}
        if score == "now":
            out["scoring"] = _score_now()
        self.stdout.write(json.dumps(out, indent=2))


def _score_now() -> dict:
    from monitoring.selectors import news_unscored
    from monitoring.services.alerts import alert_rules_evaluate
    from monitoring.services.scoring import sentiment_scores_store
    from workers.runtime.sentiment import classifier_get

    classifier = classifier_get()
    pending = list(news_unscored(version=classifier.label).values_list("pk", "text"))
    for start in range(0, len(pending), settings.GENAI_SENTIMENT_BATCH):
        rows = pending[start : start + settings.GENAI_SENTIMENT_BATCH]
        predictions = classifier.predict([text for _, text in rows])
        sentiment_scores_store(version=classifier.label, rows=[(pk, p["probabilities"]) for (pk, _), p in zip(rows, predictions)])
    return {"model": classifier.label, "scored": len(pending), "evaluation": alert_rules_evaluate().as_dict()}
