import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from rest_framework.exceptions import ValidationError

from generation.text.tables import CsvError, csv_read


def csv_rows(path: str, column: str, limit: int | None) -> list[dict]:
    """The first ``limit`` rows of a CSV that has ``column`` (a CommandError otherwise)."""
    try:
        table = csv_read(path, columns=[column])
    except CsvError as exc:
        raise CommandError(str(exc)) from None
    return [row for row in table.rows if (row.get(column) or "").strip()][:limit]


class Command(BaseCommand):
    help = (
        "Draft a reply for every message of a CSV through the reply service, in this process (the "
        "knowledge base's embeddings and the LM load here); one JSON object per line."
    )

    def add_arguments(self, parser):
        parser.add_argument("--in", dest="input", required=True, help="CSV with one customer message per row.")
        parser.add_argument("--out", required=True, help="JSONL file to write.")
        parser.add_argument("--message-col", default="instruction")
        parser.add_argument("--limit", type=int)
        parser.add_argument("-k", type=int, default=3, help="Sources per reply.")
        parser.add_argument("--max-new-tokens", type=int, default=256)
        parser.add_argument("--concurrency", type=int, default=8, help="Replies generated at once (the engine batches them).")

    def handle(self, *args, input, out, message_col, limit, k, max_new_tokens, concurrency, **options):
        from workers.runners.reply import replies_draft

        rows = csv_rows(input, message_col, limit)
        params = [{"message": r[message_col], "k": k, "max_new_tokens": max_new_tokens} for r in rows]
        try:
            results = replies_draft(params, concurrency=concurrency)
        except ValidationError as exc:
            raise CommandError(f"invalid message: {exc.detail}") from exc
        from generation.privacy import pii_mask

        with open(Path(out), "w", encoding="utf-8") as f:
            for row, candidates in zip(rows, results):
                best = candidates[0]
                record = {
                    "message": pii_mask(row[message_col]).text,
                    "reply": best.text,
                    "sources": [{"ref": s["ref"], "score": s["score"], "snippet": s["snippet"]} for s in best.metadata["sources"]],
                    "intent": best.metadata["intent"],
                    "finish_reason": best.finish_reason,
                    "grounding": best.metadata["grounding"],
                    "fallback": best.metadata["fallback"],
                }
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.stdout.write(f"Wrote {len(rows)} replies to {out}.")
