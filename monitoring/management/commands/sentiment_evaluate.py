import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Evaluate the sentiment classifier on any labelled CSV: prints JSON with accuracy, macro-F1, per-class "
        "precision/recall/F1, the confusion matrix (rows gold, columns predicted) and n."
    )

    def add_arguments(self, parser):
        parser.add_argument("--csv", type=Path, required=True)
        parser.add_argument("--text-col", default="text")
        parser.add_argument("--label-col", default="label")
        parser.add_argument("--label-map", default="0=negative,1=positive,2=neutral",
                            help='VALUE=LABEL pairs; labels already named negative/neutral/positive pass as they are.')
        parser.add_argument("--model", default=None, help='"name" or "name@3"; default: the scoring classifier.')
        parser.add_argument("--batch-size", type=int, default=64)

    def handle(self, *args, csv: Path, text_col, label_col, label_map, model, batch_size, **options):
        from generation.exceptions import PermanentJobError
        from generation.sentiment_labels import DatasetError, label_map_parse
        from workers.ml.metrics import classification_metrics
        from workers.runtime.sentiment import classifier_get
        from workers.train.sentiment import dataset_read

        try:
            texts, labels = dataset_read(csv, text_col=text_col, label_col=label_col, label_map=label_map_parse(label_map))
        except (DatasetError, OSError) as exc:
            raise CommandError(f"{csv}: {exc}") from None
        try:
            classifier = classifier_get(model)
        except PermanentJobError as exc:
            raise CommandError(str(exc)) from None
        started = time.monotonic()
        predictions = classifier.predict(texts, batch_size=batch_size)
        seconds = time.monotonic() - started
        report = classification_metrics(labels, [p["label"] for p in predictions], classifier.members[0].config.labels, detail=True)
        report |= {"model": classifier.label, "items_per_second": round(len(texts) / seconds, 1) if seconds else None}
        self.stdout.write(json.dumps(report, indent=2))
