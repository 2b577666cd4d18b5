import json

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Score the intent classifier (GENAI_INTENT_MODEL, else the promoted, else the newest intent "
        "version; or --model) on any labelled CSV and, in the same run, its linear baseline (the "
        "logistic regression on the frozen embeddings that intent_train fitted on the same split) "
        "and any --compare versions: prints JSON with accuracy, macro-F1 and n of each. Labels the "
        "model does not know count as errors (reported as unknown_labels). --source: choose among the "
        "intents of that training dataset only (e.g. banking77_train for Banking77 messages)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--csv", required=True)
        parser.add_argument("--text-col", default="text")
        parser.add_argument("--label-col", default="category")
        parser.add_argument("--model", help='"name" or "name@3"; default as replies use it.')
        parser.add_argument("--compare", action="append", default=[], metavar="NAME@V",
                            help="Another version to score in the same run (e.g. the previous one; repeatable).")
        parser.add_argument("--source", help="The training dataset (file name without .csv) whose intents to choose among.")
        parser.add_argument("--limit", type=int)

    def handle(self, *args, csv, text_col, label_col, model, compare, source, limit, **options):
        from workers.runtime.intent import intent_baseline_get, intent_model_get
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
        scored = [(version, classifier)]
        for name in compare:
            other = intent_model_get(name)
            if other[0] is None:
                raise CommandError(f"--compare {name}: no such intent model version.")
            scored.append(other)
        features = _Features(texts)
        try:
            figures = [_figures(v.label, m, features.of(m, v), labels, source) for v, m in scored]
            baseline = intent_baseline_get(version)
            baseline_figures = (_figures(f"{version.label} baseline", baseline, features.of(baseline, version), labels, source)
                                if baseline is not None else None)
        except ValueError as exc:  # a --source the model does not have
            raise CommandError(f"--source: {exc}") from None
        report = {
            **figures[0],
            "source": source,
            "baseline": baseline_figures,
            "compared": figures[1:],
            "csv": csv,
        }
        if baseline_figures is None:
            report["baseline_unavailable"] = f"{version.label} was trained without a baseline (intent_train --no-baseline or before baselines)"
        else:
            report["accuracy_over_baseline"] = round(figures[0]["accuracy"] - baseline_figures["accuracy"], 4)
        self.stdout.write(json.dumps(report, indent=1))


class _Features:
    """The encoder's outputs for the texts, computed once per encoder and kind: sentence
    embeddings, and token states below the top ``k`` layers for a classifier that fine-tuned
    them. Each version reads with the encoder it was trained on (``intent_embedder``)."""

    def __init__(self, texts: list[str]):
        self.texts = texts
        self.computed: dict[tuple[str, int], object] = {}

    def of(self, model, version):
        from workers.runtime.intent import intent_embedder, intent_features

        embedder = intent_embedder(version)
        key = (embedder.name, model.config.encoder_layers)
        if key not in self.computed:
            self.computed[key] = intent_features(model, self.texts, embedder=embedder)
        return self.computed[key]


def _figures(label: str, model, features, gold: list[str], source: str | None) -> dict:
    from workers.ml.metrics import classification_metrics

    predictions = model.predict(features, source=source)
    known = set(model.labels)
    return {
        "model_version": label,
        "encoder_layers": model.config.encoder_layers,
        **classification_metrics(gold, [p for p, _ in predictions]),
        "unknown_labels": sum(1 for g in gold if g not in known),
        "mean_confidence": round(sum(c for _, c in predictions) / max(1, len(predictions)), 4),
    }
