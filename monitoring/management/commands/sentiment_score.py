import csv
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from generation.text.tables import CsvError, csv_read


class Command(BaseCommand):
    help = "Score a CSV: writes its columns plus label, p_negative, p_neutral, p_positive and score (P(pos) - P(neg))."

    def add_arguments(self, parser):
        parser.add_argument("--in", dest="input", type=Path, required=True)
        parser.add_argument("--out", type=Path, required=True)
        parser.add_argument("--text-col", default="text")
        parser.add_argument("--model", default=None, help='"name" or "name@3"; default: the scoring classifier.')
        parser.add_argument("--batch-size", type=int, default=64)

    def handle(self, *args, input: Path, out: Path, text_col, model, batch_size, **options):
        from generation.exceptions import PermanentJobError
        from workers.runtime.sentiment import classifier_get

        try:
            table = csv_read(input, columns=[text_col])
        except CsvError as exc:
            raise CommandError(str(exc)) from None
        columns, rows = table.columns, table.rows
        try:
            classifier = classifier_get(model)
        except PermanentJobError as exc:
            raise CommandError(str(exc)) from None
        started = time.monotonic()
        predictions = classifier.predict([row[text_col] or "" for row in rows], batch_size=batch_size)
        seconds = time.monotonic() - started
        extra = ["label", "p_negative", "p_neutral", "p_positive", "score"]
        with open(out, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns + [c for c in extra if c not in columns])
            writer.writeheader()
            for row, p in zip(rows, predictions):
                probs = p["probabilities"]
                writer.writerow({**row, "label": p["label"], "p_negative": f"{probs['negative']:.4f}", "p_neutral": f"{probs['neutral']:.4f}",
                                 "p_positive": f"{probs['positive']:.4f}", "score": f"{p['score']:.4f}"})
        rate = len(rows) / seconds if seconds else 0.0
        self.stderr.write(f"scored {len(rows)} rows with {classifier.label} in {seconds:.1f} s ({rate:.1f} items/s) -> {out}")
