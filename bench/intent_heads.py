"""Intent heads against the linear baseline on rows never trained on, one embedding pass.

Embeds the training CSVs and the held-out CSVs once (all-MiniLM-L6-v2, frozen), then trains each
head of ``workers.train.intent`` on the same split (its validation rows cut from the training
CSVs) and scores every head and the logistic-regression baseline on the held-out CSVs, across all
intents and within each dataset's own (``--source``). Which head to keep is chosen on validation;
the held-out figures are only reported.

    python bench/intent_heads.py --train D/train/banking77.csv:text:category --train D/train/bitext.csv:instruction:intent \\
        --heldout D/heldout/banking77.csv:text:category --heldout D/heldout/bitext.csv:instruction:intent
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "genai_site.settings.local")

HEADS = {
    "mlp (the default)": {"hidden": 512},
    "residual mlp from the baseline": {"hidden": 512, "residual": True},
}


def main() -> None:
    import django

    django.setup()
    import numpy as np

    from workers.ml.intent import IntentConfig
    from workers.ml.metrics import classification_metrics
    from workers.runners.intent import dataset_parse, datasets_read
    from workers.runtime.embeddings import embedder_get
    from workers.train.intent import IntentTrainConfig, intent_train

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="append", required=True, metavar="PATH:TEXT_COL:LABEL_COL")
    parser.add_argument("--heldout", action="append", required=True, metavar="PATH:TEXT_COL:LABEL_COL")
    parser.add_argument("--cache", type=Path, help="Keep the embeddings here (.npz) and reuse them.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    texts, labels, sources, _ = datasets_read([dataset_parse(s) for s in args.train])
    held = [(dataset_parse(s), *datasets_read([dataset_parse(s)])[:3]) for s in args.heldout]
    started = time.monotonic()
    if args.cache and args.cache.exists():
        cached = np.load(args.cache)
        x_train, x_held = cached["train"], [cached[f"heldout{i}"] for i in range(len(held))]
    else:
        embedder = embedder_get()
        x_train = embedder.encode(texts, batch_size=256)
        x_held = [embedder.encode(t, batch_size=256) for _, t, _, _ in held]
        if args.cache:
            np.savez(args.cache, train=x_train, **{f"heldout{i}": x for i, x in enumerate(x_held)})
    embed_seconds = time.monotonic() - started

    results, baseline = {}, None
    for name, head in HEADS.items():
        started = time.monotonic()
        result = intent_train(x_train, labels, sources=sources,
                              model_config=IntentConfig(hidden=head["hidden"], residual=head.get("residual", False)),
                              config=IntentTrainConfig(epochs=60, patience=4, seed=args.seed, baseline=True))
        results[name] = (result.model, result.metrics, time.monotonic() - started)
        baseline = baseline or (result.baseline, result.metrics["baseline"])

    def scores(model) -> dict:
        out = {}
        for (ds, _, y, src), x in zip(held, x_held):
            source = src[0]
            for scope, restrict in (("all", None), ("own", source)):
                predicted = [label for label, _ in model.predict(x, source=restrict)]
                m = classification_metrics(y, predicted)
                out[f"{Path(ds.path).stem} {scope}"] = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n": len(y)}
        return out

    report = {"embed_seconds": round(embed_seconds, 1), "train_rows": len(texts),
              "baseline": {"validation_accuracy": baseline[1]["validation_accuracy"],
                           "validation_macro_f1": baseline[1]["validation_macro_f1"], "C": baseline[1]["C"],
                           "heldout": scores(baseline[0])}}
    for name, (model, metrics, seconds) in results.items():
        report[name] = {"validation_accuracy": metrics["validation_accuracy"],
                        "validation_macro_f1": metrics["validation_macro_f1"], "best_epoch": metrics["best_epoch"],
                        "seconds": round(seconds, 1), "heldout": scores(model)}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
