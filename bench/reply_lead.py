"""Which retrieved answer a reply should follow: the most relevant one, or the one the other
relevant answers agree with (minimum-Bayes-risk selection). The figures behind the reply settings
GENAI_REPLY_CONSENSUS_POOL and GENAI_REPLY_CONSENSUS_RELEVANCE.

    DJANGO_SETTINGS_MODULE=genai_site.settings.local .venv/bin/python bench/reply_lead.py \
        [--csv FILE] [--offsets 5,15,25,45,55,65]

With an intent model registered, the evidence may also be restricted to the answers of the
message's predicted intent (predicted among the knowledge base's intents, as replies do).

Rows: every 73rd row of the Bitext CSV at each offset (36, the rows `replies_evaluate` reports on,
is not among the defaults). Each row's own message is left out of its retrieval, over the
knowledge base already imported in this database (`kb_import`). Printed per rule: the mean MiniLM
cosine between the chosen answer and the row's reference reply.
"""

import argparse
import csv
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "genai_site.settings.local")

POOLS = (3, 5, 8)
WEIGHTS = (0.0, 0.5, 1.0)
# Candidates: the 8 most relevant; evidence: a larger pool of relevant answers (MBR with the
# hypotheses and the evidence apart), optionally only those of the message's predicted intent.
CANDIDATES = 8
EVIDENCE = (16, 32, 48)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", default=None, help="Default: the Bitext CSV in GENAI_SHARED_DATA_DIR.")
    parser.add_argument("--offsets", default="5,15,25,45,55,65")
    args = parser.parse_args()

    import django

    django.setup()
    import numpy as np
    from django.conf import settings

    from generation.text.placeholders import placeholders_normalise
    from workers.runtime.embeddings import embedder_get
    from workers.runtime.retrieval import knowledge_search_batch

    path = args.csv or Path(settings.SHARED_DATA_DIR) / "customer_support/bitext_support_train.csv"
    offsets = {int(x) for x in args.offsets.split(",")}
    rows = [r for i, r in enumerate(csv.DictReader(open(path, encoding="utf-8"))) if i % 73 in offsets]
    messages, references = [r["instruction"] for r in rows], [r["response"] for r in rows]
    embedder = embedder_get()
    reference_vectors = embedder.encode(references)
    from workers.runners.reply import reply_intent_labels
    from workers.runtime.intent import intent_predict

    model, predictions = intent_predict(messages, labels=reply_intent_labels())
    print(f"intent model: {model or 'none'}")
    chosen: dict[str, list[float]] = {}
    for i, hits in enumerate(knowledge_search_batch(messages, max(EVIDENCE) + 2)):
        hits = [h for h in hits if h.title.strip() != messages[i].strip()]
        vectors = embedder.encode([placeholders_normalise(h.text) for h in hits])
        similarity = vectors @ reference_vectors[i]
        relevance = np.array([h.score for h in hits])
        chosen.setdefault("most relevant", []).append(similarity[0])
        for pool in POOLS:
            agreement = vectors[:pool] @ vectors[:pool].T
            np.fill_diagonal(agreement, 0.0)
            consensus = agreement.sum(axis=1) / (min(pool, len(hits)) - 1)
            for weight in WEIGHTS:
                lead = int((consensus + weight * relevance[:pool]).argmax())
                chosen.setdefault(f"pool {pool}, relevance weight {weight}", []).append(similarity[lead])
        intent = predictions[i][0] if predictions else None
        for size in EVIDENCE:
            for of_intent in (False, True) if intent else (False,):
                evidence = [j for j, h in enumerate(hits[:size]) if not of_intent or h.intent == intent]
                if len(evidence) < 3:
                    evidence = list(range(min(size, len(hits))))
                agreement = vectors[:CANDIDATES] @ vectors[evidence].T
                own = np.array([1.0 if j in evidence else 0.0 for j in range(min(CANDIDATES, len(hits)))])
                consensus = (agreement.sum(axis=1) - own) / np.maximum(1, len(evidence) - own)
                for weight in WEIGHTS:
                    lead = int((consensus + weight * relevance[:CANDIDATES]).argmax())
                    label = f"top {CANDIDATES} by evidence {size}{' of its intent' if of_intent else ''}, weight {weight}"
                    chosen.setdefault(label, []).append(similarity[lead])
        chosen.setdefault("oracle, best of top 3", []).append(similarity[:3].max())
        chosen.setdefault("oracle, best of top 8", []).append(similarity[:8].max())
    print(f"{len(rows)} rows of {path} (offsets {sorted(offsets)}); cosine of the chosen answer to the reference")
    for rule, values in chosen.items():
        print(f"{rule:<58} {np.mean(values):.4f}")


if __name__ == "__main__":
    main()
