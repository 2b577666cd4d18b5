"""Export sent and approved drafts as chat-format JSONL for fine-tuning."""

from datetime import datetime, time
from datetime import timezone as dt_timezone

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from review.services.export import feedback_export


def since_parse(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--since: {value!r} is not a date (YYYY-MM-DD) or an ISO date-time.")
        moment = datetime.combine(day, time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, dt_timezone.utc)
    return moment


class Command(BaseCommand):
    help = (
        "Write feedback of one job kind as chat-format JSONL ({\"messages\": [...]} per line) for fine-tuning: "
        "drafts sent as is or edited and approved review items; personal data masked; discarded, rejected, "
        "unapproved and safety-flagged content excluded."
    )

    def add_arguments(self, parser):
        parser.add_argument("--kind", default="reply", help="Job kind (reply, copy, ...). Default: reply.")
        parser.add_argument("--since", help="Only decisions on or after this date (YYYY-MM-DD) or date-time.")
        parser.add_argument("--out", required=True, help="Output .jsonl file.")

    def handle(self, *args, kind, since, out, **options):
        try:
            report = feedback_export(kind=kind, since=since_parse(since), out=out)
        except OSError as exc:
            raise CommandError(f"--out: cannot write {out}: {exc}") from exc
        self.stdout.write(
            f"Wrote {report.examples} examples to {report.path}"
            + (f" ({report.skipped_flagged} flagged by the safety filter left out)" if report.skipped_flagged else "")
        )
