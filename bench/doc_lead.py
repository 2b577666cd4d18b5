"""How often a help-centre doc leads a reply when it should, and when it should not: the figures
behind GENAI_REPLY_DOC_BOOST and the docs' title vectors (``KnowledgeDoc.embedding_texts``).

    GENAI_VAR_DIR=/tmp/bench-docs .venv/bin/python bench/doc_lead.py

The knowledge base is built in this process's database (GENAI_VAR_DIR: use a scratch one) as a
fresh ``make run`` seeds it: the shipped Bitext conversations and the demo FAQ
(data/demo/acme_faq.csv), both embedded here (about 20 s). Then two groups of hand-written
messages, none a row of either file: 23 that one FAQ answer is for (a late parcel, a torn tent,
a refund that has not come, ...) and 16 that the conversations answer (password, invoice,
newsletter, ...). For each doc boost: how many of the first group are led by their doc, by
another doc, and how many of the second group are led by any doc; once with the docs searched
by title and whole text (what is stored now), once by their whole text alone (before). The
messages were written for this and the boost chosen on them: 23 + 16 is a sanity check, not a
held-out measurement.
"""

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "genai_site.settings.local")

FAQ_MESSAGES = {  # message -> the external_id of the doc that answers it
    "I ordered a jacket two weeks ago and it still has not arrived": "faq-late-delivery",
    "my parcel is late, it was supposed to come last week": "faq-late-delivery",
    "still waiting for my delivery, tracking hasn't moved in days": "faq-late-delivery",
    "My new tent arrived with a torn seam, what now?": "faq-warranty",
    "the zip on my backpack broke after a month": "faq-warranty",
    "the box was crushed and the stove inside is dented": "faq-damaged-item",
    "my headlamp arrived broken": "faq-damaged-item",
    "you sent me the wrong boots": "faq-wrong-item",
    "I got a size M but ordered L": "faq-wrong-item",
    "can I swap these trousers for a bigger size?": "faq-exchange-size",
    "I'd like the same jacket in blue instead of red": "faq-exchange-size",
    "do you deliver to Canada?": "faq-international-shipping",
    "how much is shipping to Germany?": "faq-international-shipping",
    "I placed an order an hour ago, can I still change the address?": "faq-order-changes",
    "where is my refund? I sent the boots back 2 weeks ago": "faq-refund-time",
    "how long does a refund take to reach my card?": "faq-refund-time",
    # the five docs added on 2026-12-07 for messages an earlier reading got wrong answers to
    "can I return a tent I already used once?": "faq-returns",
    "what is your refund policy": "faq-returns",
    "can I pay in instalments?": "faq-payment-methods",
    "can I pay with PayPal?": "faq-payment-methods",
    "I was charged twice for the same order": "faq-charged-twice",
    "My discount code SAVE10 doesn't work": "faq-discount-code",
    "do you have a store in Berlin?": "faq-stores",
}
OTHER_MESSAGES = [
    "how do I create an account", "I forgot my password", "I want to delete my account", "how do I switch accounts",
    "I need an invoice for order 12345", "how do I subscribe to the newsletter", "I want to speak to a human",
    "I want to leave a review", "how do I cancel my order?", "track my order 5567", "I can't register, it gives an error",
    "how do I change my account details", "change my shipping address", "is there a fee to cancel",
    "how long does delivery take", "what delivery options do you have",
]
BOOSTS = (0.0, 0.05, 0.10, 0.15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args()
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from generation.models import KnowledgeDoc
    from generation.services.knowledge import embedding_model_name, knowledge_embeddings_store
    from workers.runtime.embeddings import embedder_get
    from workers.runtime.retrieval import knowledge_index_clear, knowledge_search_batch

    call_command("migrate", verbosity=0)
    call_command("kb_import", settings.GENAI_FINETUNE_BITEXT_CSV, kind="conversations", skip_bad=True, embed="now")
    call_command("kb_import", str(ROOT / "data/demo/acme_faq.csv"), kind="docs", embed="now")
    embedder = embedder_get()
    docs = list(KnowledgeDoc.objects.filter(source="acme_faq"))
    messages = [*FAQ_MESSAGES, *OTHER_MESSAGES]
    print(f"{len(docs)} FAQ docs; {len(FAQ_MESSAGES)} messages an FAQ answers, {len(OTHER_MESSAGES)} it does not")
    print("| docs searched by | doc boost | FAQ messages led by their doc | by another doc | other messages led by a doc |")
    print("|---|---|---|---|---|")
    for searched in ("title and whole text", "whole text (before)"):
        texts = [d.embedding_texts() if searched.startswith("title") else [d.embedding_text()] for d in docs]
        vectors = [embedder.encode(t).tobytes() for t in texts]
        knowledge_embeddings_store(kind="docs", model_name=embedding_model_name(),
                                   vectors=[(d.pk, d.content_hash, v) for d, v in zip(docs, vectors)])
        knowledge_index_clear()
        for boost in BOOSTS:
            results = knowledge_search_batch(messages, 8, min_score=settings.GENAI_REPLY_MIN_SOURCE_SCORE,
                                             kind_boosts={"docs": boost} if boost else None)
            led = [hits[0] if hits and hits[0].kind == "docs" else None for hits in results]
            right = sum(1 for m, h in zip(messages, led) if m in FAQ_MESSAGES and h and h.external_id == FAQ_MESSAGES[m])
            other_doc = sum(1 for m, h in zip(messages, led) if m in FAQ_MESSAGES and h and h.external_id != FAQ_MESSAGES[m])
            wrong = [m for m, h in zip(messages, led) if m not in FAQ_MESSAGES and h]
            print(f"| {searched} | {boost:.2f} | {right}/{len(FAQ_MESSAGES)} | {other_doc} | {len(wrong)}/{len(OTHER_MESSAGES)}"
                  f"{' (' + '; '.join(wrong) + ')' if wrong else ''} |")
    # leave the docs as the service stores them
    knowledge_embeddings_store(kind="docs", model_name=embedding_model_name(), vectors=[
        (d.pk, d.content_hash, embedder.encode(d.embedding_texts()).tobytes()) for d in docs])


if __name__ == "__main__":
    main()
