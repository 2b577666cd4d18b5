import time

from django.core.management.base import BaseCommand, CommandError

from generation.privacy import pii_mask
from generation.services.knowledge import KINDS


class Command(BaseCommand):
    help = "Search the knowledge base as replies do (loads the embedding model in this process)."

    def add_arguments(self, parser):
        parser.add_argument("query", nargs="+", help="One or more queries.")
        parser.add_argument("-k", type=int, default=5)
        parser.add_argument("--kind", choices=KINDS, action="append", help="Repeatable; default: both.")
        parser.add_argument("--min-score", type=float)

    def handle(self, *args, query, k, kind, min_score, **options):
        from workers.runtime.retrieval import knowledge_search

        kinds = tuple(kind or KINDS)
        try:
            knowledge_search("warm-up", 1, kinds)  # model load and index build, not counted below
            for text in query:
                masked = pii_mask(text).text
                started = time.perf_counter()
                hits = knowledge_search(masked, k, kinds, min_score=min_score)
                ms = (time.perf_counter() - started) * 1000
                self.stdout.write(f"{masked!r}: {len(hits)} hits in {ms:.1f} ms")
                for hit in hits:
                    label = hit.intent or ",".join(hit.tags)
                    self.stdout.write(f"  {hit.score:.3f} {hit.ref:<20} [{label}] {hit.title[:90]!r}")
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
