import os
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from generation.exceptions import DomainError, InvalidInput
from generation.services.knowledge import (
    FORMATS,
    KINDS,
    ImportRejected,
    knowledge_embed_enqueue,
    knowledge_import_file,
    knowledge_system_user,
)


class Command(BaseCommand):
    help = (
        "Import knowledge docs or past conversations from a CSV (with a header row) or JSONL file. "
        "The Bitext customer-support CSV works as it is. Re-importing is idempotent; if any row is "
        "bad, nothing is imported (unless --skip-bad) and the bad rows are listed with their lines."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", choices=FORMATS, help="Default: from the file name (.jsonl/.ndjson: jsonl).")
        parser.add_argument("--kind", choices=KINDS, default="conversations")
        parser.add_argument("--source", help="Names the rows' origin; default: the file name without extension.")
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="COLUMN=FIELD",
            help="Map a column to a field (repeatable), e.g. --map question=title --map answer=body.",
        )
        parser.add_argument("--skip-bad", action="store_true", help="Import the good rows, list the bad ones.")
        parser.add_argument("--prune", action="store_true", help="Deactivate rows of the source the file no longer has.")
        parser.add_argument(
            "--embed",
            choices=("queue", "now", "none"),
            default="queue",
            help="queue: a knowledge_embed job for the workers (default); now: embed in this process; none.",
        )
        parser.add_argument("--user", help="Owner of the import's embedding job; default: the system account.")

    def handle(self, *args, file: Path, format, kind, source, map, skip_bad, prune, embed, user, **options):
        mapping = {}
        for item in map:
            column, sep, target = item.partition("=")
            if not sep or not column.strip() or not target.strip():
                raise CommandError(f"--map {item!r}: expected COLUMN=FIELD")
            mapping[column.strip()] = target.strip()
        owner = self._owner(user)
        try:
            with open(file, "rb") as stream:
                report = knowledge_import_file(
                    user=owner,
                    file=stream,
                    name=file.name,
                    kind=kind,
                    format=format,
                    source=source,
                    mapping=mapping,
                    skip_bad=skip_bad,
                    prune=prune,
                    embed=embed == "queue",
                )
        except OSError as exc:
            raise CommandError(f"{file}: {exc.strerror}") from exc
        except ImportRejected as exc:
            for error in exc.row_errors:
                self.stderr.write(f"  line {error.line}: {_errors_text(error.errors)}")
            raise CommandError(exc.message) from exc
        except InvalidInput as exc:
            raise CommandError(_errors_text(exc.errors)) from exc
        except DomainError as exc:
            raise CommandError(exc.message) from exc

        for error in report.errors:
            self.stderr.write(f"  skipped line {error.line}: {_errors_text(error.errors)}")
        masked = ", ".join(f"{n} {k}" for k, n in report.masked.items()) or "nothing"
        self.stdout.write(
            f"{report.kind} from {file.name} (source {report.source!r}): {report.rows} rows read, "
            f"{report.created} created, {report.updated} updated, {report.unchanged} unchanged, "
            f"{report.duplicates} duplicates, {report.skipped} skipped, {report.deactivated} deactivated; "
            f"personal data masked: {masked}."
        )
        for note in report.notes:
            self.stdout.write(note)
        if report.embed_job_id:
            self.stdout.write(f"Embedding job {report.embed_job_id} queued.")
        if embed == "now":
            self._embed_now(owner, kind)

    def _owner(self, username: str | None):
        if not username:
            return knowledge_system_user()
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"--user {username!r}: no such user")
        return user

    def _embed_now(self, owner, kind: str) -> None:
        from workers.runners import job_run

        job = knowledge_embed_enqueue(owner=owner, kinds=[kind])
        outcome = job_run(job_id=str(job.id), worker_id=f"kb_import/{os.getpid()}")
        job.refresh_from_db()
        if outcome != "succeeded":
            raise CommandError(f"Embedding job {job.id} {outcome}: {job.error_message}")
        self.stdout.write(job.candidates.get().text)


def _errors_text(errors: dict) -> str:
    return "; ".join(f"{name}: {' '.join(map(str, messages))}" for name, messages in errors.items())
