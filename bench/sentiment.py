"""Sentiment classifier figures: quality on the held-out test split of its training data (rebuilt
from the model version's recorded split: same CSV, label map, seed and fractions, so these rows
were never trained on), quality on finance news sentences (``bench/data/finance_news_heldout.csv``: 300 newswire-style
sentences, 100 per class, a third of them hard cases such as "net loss narrowed", written for this
and never trained or tuned on; and the 60 sentences of the tests' small check), and scoring
throughput batched (length-sorted batches, as the scoring job runs) against one item at a time,
measured in the same run.

    .venv/bin/python bench/sentiment.py [--model finsent] [--news bench/data/finance_news_heldout.csv,...]
        [--write-test-csv var/finsent-test.csv] [--throughput-items 512] [--single-items 128]

``--model`` takes several versions, comma-separated (``--model finsent,finsent-mpnet``: the
MiniLM and the all-mpnet-base-v2 classifier), measured one after the other in the same process
and printed side by side (``side_by_side``) after each one's figures.

Prints one JSON object. ``--write-test-csv`` also writes the held-out rows (text,label as in the
source CSV) so ``manage.py sentiment_evaluate --csv ...`` can be run on exactly them.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "genai_site.settings.local")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None,
                        help='"name" or "name@3", several comma-separated; default: the scoring classifier.')
    parser.add_argument(
        "--news", default=f"{ROOT / 'bench/data/finance_news_heldout.csv'},{ROOT / 'tests/monitoring/data/finance_news_sentences.csv'}",
        help="CSVs of news sentences (text,label), comma-separated; the first is the side-by-side figure.",
    )
    parser.add_argument("--write-test-csv", default=None)
    parser.add_argument("--throughput-items", type=int, default=512)
    parser.add_argument("--single-items", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    import django

    django.setup()
    names = [n.strip() for n in args.model.split(",")] if args.model else [None]
    results = [measure(name, args) for name in names]
    out = results[0] if len(results) == 1 else {"models": results}
    if len(results) > 1:
        out["side_by_side"] = [
            {"model": r["model"], "base": r["base"], "held_out_accuracy": r["held_out_tweets"]["accuracy"],
             "held_out_macro_f1": r["held_out_tweets"]["macro_f1"], "news_accuracy": r["news_sentences"]["accuracy"],
             "news_macro_f1": r["news_sentences"]["macro_f1"],
             "batched_items_per_s": r["throughput"]["batched_items_per_s"],
             "one_at_a_time_items_per_s": r["throughput"]["one_at_a_time_items_per_s"]}
            for r in results
        ]
    print(json.dumps(out, indent=2))


def measure(name: str | None, args) -> dict:
    import torch

    from generation.selectors import sentiment_model_resolve
    from generation.sentiment_labels import LABELS, label_map_parse
    from workers.ml.metrics import classification_metrics
    from workers.runtime.sentiment import classifier_get
    from workers.train.sentiment import dataset_read, rows_subset, split_stratified

    classifier = classifier_get(name)
    version = sentiment_model_resolve(name)
    config = version.config
    label_map = label_map_parse(config.get("label_map", "0=negative,1=positive,2=neutral"))
    texts, labels = dataset_read(config["csv"], text_col=config.get("text_col", "text"), label_col=config.get("label_col", "label"), label_map=label_map)
    texts, labels = rows_subset(texts, labels, max_rows=config.get("max_rows", 0), seed=config["seed"])
    _, _, test_idx = split_stratified(
        labels, test_fraction=config["test_fraction"], validation_fraction=config["validation_fraction"], seed=config["seed"]
    )
    test_texts, test_labels = [texts[i] for i in test_idx], [labels[i] for i in test_idx]
    out: dict = {"model": classifier.label, "base": version.base_model, "members": len(classifier.members),
                 "device": classifier.device, "amp_dtype": classifier.amp_dtype or "float32",
                 "torch_threads": torch.get_num_threads()}

    if args.write_test_csv and not getattr(args, "_test_csv_written", False):
        args._test_csv_written = True
        inverse = {v: k for k, v in label_map.items()}
        with open(args.write_test_csv, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow([config.get("text_col", "text"), config.get("label_col", "label")])
            writer.writerows((t, inverse.get(label, label)) for t, label in zip(test_texts, test_labels))
        out["test_csv"] = args.write_test_csv

    started = time.monotonic()
    predictions = classifier.predict(test_texts, batch_size=args.batch_size)
    test_seconds = time.monotonic() - started
    report = classification_metrics(test_labels, [p["label"] for p in predictions], LABELS, detail=True)
    out["held_out_tweets"] = {k: report[k] for k in ("n", "accuracy", "macro_f1", "per_class", "confusion_matrix")}

    for i, path in enumerate(p for p in args.news.split(",") if p):
        news_texts, news_labels = dataset_read(path, text_col="text", label_col="label", label_map={})
        news = classification_metrics(news_labels, [p["label"] for p in classifier.predict(news_texts)], LABELS, detail=True)
        figures = {"file": Path(path).name, **{k: news[k] for k in ("n", "accuracy", "macro_f1", "confusion_matrix")}}
        out.setdefault("news_sets", []).append(figures)
        if i == 0:
            out["news_sentences"] = figures

    # Throughput: batched vs one at a time, same texts order, same process, after a warm-up.
    pool = (test_texts * (args.throughput_items // max(1, len(test_texts)) + 1))[: args.throughput_items]
    classifier.predict(pool[:16], batch_size=16)
    started = time.monotonic()
    classifier.predict(pool, batch_size=args.batch_size)
    batched = len(pool) / (time.monotonic() - started)
    single_pool = pool[: args.single_items]
    started = time.monotonic()
    for text in single_pool:
        classifier.predict([text], batch_size=1)
    single = len(single_pool) / (time.monotonic() - started)
    out["throughput"] = {
        "batched_items_per_s": round(batched, 1),
        "one_at_a_time_items_per_s": round(single, 1),
        "ratio": round(batched / single, 2),
        "batch_size": args.batch_size,
        "held_out_eval_items_per_s": round(len(test_texts) / test_seconds, 1),
    }
    return out


if __name__ == "__main__":
    main()
