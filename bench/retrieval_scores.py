"""How relevant retrieved sources are, by MiniLM cosine: the figures behind the reply settings
GENAI_REPLY_MIN_SOURCE_SCORE (sources below it are not offered) and GENAI_REPLY_INTENT_BOOST
(sources of a confidently predicted intent rank this much higher).

    .venv/bin/python bench/retrieval_scores.py [--csv FILE] [--threads 1]

The knowledge base is the CSV's messages, masked as kb_import stores them (the shipped Bitext
CSV by default), embedded in this process (about 15 s on one core). Queries: the hand-written
in-domain paraphrases of tests/knowledge_fixtures.py (none is a row of the CSV), 60 Banking77
questions (a neighbouring domain) and 16 off-topic messages. Printed per group: the best hit's
cosine, and how many of the top-5 hits each candidate floor would drop; for the paraphrases whose
best hit is of another intent, how far below it the best hit of the right intent lies.
"""

import argparse
import csv
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "genai_site.settings.local")

OFF_TOPIC = [
    "What's the weather in Paris tomorrow?", "Write me a poem about cats.", "asdfgh qwerty", "hello", "thanks!",
    "Who won the football match last night?", "Can you recommend a good pizza recipe?", "What is the capital of Peru?",
    "I love your new logo", "How tall is Mount Everest?", "Tell me a joke", "ok", "My dog ate my homework",
    "What time is it in Tokyo?", "Translate 'good morning' into German", "Is it going to rain?",
]
FLOORS = (0.35, 0.40, 0.45, 0.50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", default=str(ROOT.parent / "shared/data/customer_support/bitext_support_train.csv"))
    parser.add_argument("--message-col", default="instruction")
    parser.add_argument("--intent-col", default="intent")
    parser.add_argument("--banking-csv", default=str(ROOT.parent / "shared/data/customer_support/banking77_train.csv"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import django

    django.setup()
    import numpy as np
    import torch

    from generation.privacy import pii_mask
    from tests.knowledge_fixtures import PARAPHRASES
    from workers.runtime.embeddings import embedder_get

    torch.set_num_threads(args.threads)
    with open(args.csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    intents = [r[args.intent_col] for r in rows]
    embedder = embedder_get()
    kb = embedder.encode([pii_mask(r[args.message_col]).text for r in rows])
    with open(args.banking_csv, newline="", encoding="utf-8") as f:
        banking = random.Random(0).sample([r["text"] for r in csv.DictReader(f)], 60)
    groups = {"in-domain paraphrases": [q for q, _ in PARAPHRASES], "Banking77 questions": banking, "off-topic": OFF_TOPIC}
    print(f"knowledge base: {len(rows)} messages of {args.csv}")
    print(f"{'queries':<24}{'n':>4}{'best min':>10}{'p10':>7}{'median':>8}" + "".join(f"{'<' + str(f):>9}" for f in FLOORS))
    for name, queries in groups.items():
        scores = embedder.encode([pii_mask(q).text for q in queries]) @ kb.T
        top5 = -np.sort(-scores, axis=1)[:, :5]
        best = top5[:, 0]
        dropped = "".join(f"{np.mean(top5 < floor):>9.1%}" for floor in FLOORS)
        print(f"{name:<24}{len(queries):>4}{best.min():>10.3f}{np.percentile(best, 10):>7.3f}{np.median(best):>8.3f}{dropped}")
        if name == "off-topic":
            for floor in FLOORS:
                print(f"  off-topic messages left without any source at {floor}: {int(np.sum(best < floor))} of {len(queries)}")
    print("(columns <F: share of the top-5 hits a floor of F drops)")
    scores = embedder.encode([pii_mask(q).text for q, _ in PARAPHRASES]) @ kb.T
    for (query, want), row in zip(PARAPHRASES, scores):
        order = np.argsort(-row)
        if intents[order[0]] != want:
            right = next((row[j] for j in order[:50] if intents[j] == want), None)
            gap = "none of the right intent in the top 50" if right is None else f"right intent {row[order[0]] - right:.3f} below"
            print(f"  best hit {intents[order[0]]} ({row[order[0]]:.3f}) for {want}: {gap}  <- {query[:60]!r}")


if __name__ == "__main__":
    main()
