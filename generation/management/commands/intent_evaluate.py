import json

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Score the intent classifier (GENAI_INTENT_MODEL, else the promoted, else the newest intent "
        "version; or --model) on any labelled CSV: prints JSON with accuracy, macro-F1 and n. Labels "
        "the model does not know count as errors (reported as unknown_labels)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--csv", required=True)
        parser.add_argument("--text-col", default="text")
        parser.add_argument("--label-col", default="category")
        parser.add_argument("--model", help='"name" or "name@3"; default as replies use it.')
        parser.add_argument("--limit", type=int)

    def handle(self, *args, csv, text_col, label_col, model, limit, **options):
        from workers.ml.metrics import classification_metrics
        from workers.runtime.intent import intent_model_get, intent_predict
        from workers.train.intent import DatasetError, labelled_csv_read

        try:
            texts, labels = labelled_csv_read(csv, text_col=text_col, label_col=label_col)
        except DatasetError as exc:
            raise CommandError(str(exc)) from exc
        if limit:
            texts, labels = texts[:limit], labels[:limit]
        version, classifier = intent_model_get(model)
        if version is None:
            raise CommandError(f"No intent model {model or ''} is registered; train one with `manage.py intent_train`.")
        label, predictions = intent_predict(texts, name=version.label)
        predicted = [p for p, _ in predictions]
        report = {
            "model_version": label,
            **classification_metrics(labels, predicted),
            "unknown_labels": sum(1 for g in labels if g not in set(classifier.labels)),
            "mean_confidence": round(sum(c for _, c in predictions) / len(predictions), 4),
            "csv": csv,
        }
        self.stdout.write(json.dumps(report, indent=1))
