"""Build the reply model's retrieval-augmented training data from a Bitext-format CSV.

Rows are split by position: every ``--heldout-every``-th row from ``--heldout-offset`` is held
back (``heldout.csv``, for ``replies_evaluate``), the others are the knowledge base
(``kb.csv``, for ``kb_import`` when evaluating) and the training examples (``train.jsonl``, for
``manage.py finetune --purpose reply --prompt-format rag1 --no-bitext``). A training example is
the reply runner's ``rag1`` prompt (``workers.runners.reply.reply_rag_messages``) for the row's
customer message with the top-k other knowledge rows retrieved for it as serving retrieves them
(MiniLM cosine of the masked messages, the relevance floor, near duplicates dropped; never the
row itself, nor a row with the same message or answer: ``workers.train.reply_corpus``), and the
row's reference answer as the assistant's turn. Held-back rows are in neither file.
"""

import csv
import json
import random
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Split a Bitext-format CSV and write the reply model's retrieval-augmented training chats."

    def add_arguments(self, parser):
        parser.add_argument("--csv", type=Path, default=None, help="Default: GENAI_FINETUNE_BITEXT_CSV.")
        parser.add_argument("--out", type=Path, required=True, help="Directory for train.jsonl, kb.csv, heldout.csv.")
        parser.add_argument("--heldout-every", type=int, default=73)
        parser.add_argument("--heldout-offset", type=int, default=36)
        parser.add_argument("-k", type=int, default=None, help="Sources per example (default GENAI_REPLY_PROMPT_SOURCES).")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, out: Path, heldout_every: int, heldout_offset: int, k, seed: int, **options):
        from generation.privacy import pii_mask
        from generation.text.sentences import line_ends_normalise
        from workers.runners.reply import PROMPT_FORMAT_RAG, reply_rag_messages
        from workers.runtime.embeddings import embedder_get
        from workers.train.reply_corpus import rag_neighbours, rag_target

        path = options["csv"] or Path(settings.GENAI_FINETUNE_BITEXT_CSV)
        k = k or settings.GENAI_REPLY_PROMPT_SOURCES
        try:
            with open(path, encoding="utf-8", newline="") as handle:
                reader = csv.DictReader(handle)
                fields, rows = list(reader.fieldnames or []), list(reader)
        except OSError as exc:
            raise CommandError(f"{path}: {exc}") from None
        if not {"instruction", "response"} <= set(fields):
            raise CommandError(f"{path} needs the columns instruction and response")
        held = [r for i, r in enumerate(rows) if i % heldout_every == heldout_offset]
        kb = [r for i, r in enumerate(rows) if i % heldout_every != heldout_offset]
        kb = [r for r in kb if r["instruction"].strip() and r["response"].strip()]
        out.mkdir(parents=True, exist_ok=True)
        for name, part in (("kb.csv", kb), ("heldout.csv", held)):
            with open(out / name, "w", encoding="utf-8", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=fields)
                writer.writeheader()
                writer.writerows(part)
        # As the knowledge base stores them and the runner sees them: masked, one line-end style.
        messages = [line_ends_normalise(pii_mask(r["instruction"]).text).strip() for r in kb]
        answers = [line_ends_normalise(pii_mask(r["response"]).text).strip() for r in kb]
        vectors = embedder_get().encode(messages, batch_size=settings.GENAI_KB_EMBED_BATCH)
        neighbours = rag_neighbours(vectors, messages=messages, answers=answers, k=k,
                                    min_score=settings.GENAI_REPLY_MIN_SOURCE_SCORE,
                                    dedupe_cosine=settings.GENAI_KB_DEDUPE_COSINE)
        rng = random.Random(seed)
        order = list(range(len(kb)))
        rng.shuffle(order)
        with open(out / "train.jsonl", "w", encoding="utf-8") as handle:
            for i in order:
                sources = [(messages[j], answers[j]) for j, _ in neighbours[i]]
                chat = reply_rag_messages(message=messages[i], history=[], channel="chat", tone="neutral", answers=sources)
                target = rag_target(line_ends_normalise(kb[i]["response"]), message=messages[i],
                                    sources=[a for _, a in sources])
                chat.append({"role": "assistant", "content": target})
                record = {"kb_row": i, "intent": kb[i].get("intent", ""),
                          "sources": [{"kb_row": j, "score": round(s, 4)} for j, s in neighbours[i]], "messages": chat}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        sourced = [len(n) for n in neighbours]
        self.stdout.write(json.dumps({"rows": len(rows), "train": len(kb), "heldout": len(held), "k": k,
                                      "prompt_format": PROMPT_FORMAT_RAG,
                                      "examples_with_k_sources": sum(n == k for n in sourced),
                                      "examples_without_sources": sum(n == 0 for n in sourced), "out": str(out)}))
