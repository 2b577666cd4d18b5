import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from django.core.management.base import BaseCommand

from generation.management.commands.replies_batch import csv_rows

BARE_SYSTEM = "You are a customer support agent. Reply to the customer's message."


class Command(BaseCommand):
    help = (
        "Compare the reply service with two baselines on a CSV of messages and reference replies: "
        "retrieval only (the best retrieved answer) and the bare model without retrieval. Reports mean "
        "MiniLM cosine to the references, the share of replies with a repeated word 4-gram, and mean "
        "length in words. Knowledge-base rows whose customer message is exactly the evaluated message "
        "are left out of its retrieval; evaluate on rows the knowledge base does not hold (see "
        "docs/benchmarks.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--csv", required=True)
        parser.add_argument("--message-col", default="instruction")
        parser.add_argument("--reference-col", default="response")
        parser.add_argument("--limit", type=int)
        parser.add_argument("-k", type=int, default=3)
        parser.add_argument("--max-new-tokens", type=int, default=256)
        parser.add_argument("--concurrency", type=int, default=8)
        parser.add_argument("--json", dest="json_out", help="Also write the figures and every reply here.")

    def handle(self, *args, csv, message_col, reference_col, limit, k, max_new_tokens, concurrency, json_out, **options):
        from generation.lm import chat_input_ids
        from generation.privacy import pii_mask
        from generation.runner import NullContext
        from generation.text.placeholders import placeholders_normalise
        from generation.text.repetition import repeated_ngram, word_count
        from workers.ml.decoding import SamplingParams
        from workers.runners.reply import replies_draft, reply_prepare
        from workers.runtime.completions import completions_run
        from workers.runtime.embeddings import embedder_get
        from workers.runtime.models import lm_get

        rows = csv_rows(csv, message_col, limit)
        rows = [r for r in rows if (r.get(reference_col) or "").strip()]
        messages = [r[message_col] for r in rows]
        references = [r[reference_col] for r in rows]
        params = [{"message": m, "k": k, "max_new_tokens": max_new_tokens} for m in messages]
        timings = {}

        started = time.monotonic()
        prepared = reply_prepare(params, exclude_messages=messages)
        retrieval = [placeholders_normalise(p.hits[0].text) if p.hits else "" for p in prepared]
        timings["retrieval only"] = time.monotonic() - started

        started = time.monotonic()
        service = [c[0].text for c in replies_draft(params, exclude_messages=messages, concurrency=concurrency)]
        timings["service"] = time.monotonic() - started

        started = time.monotonic()
        lm = lm_get()
        sampling = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0, repetition_penalty=1.05)

        def bare_one(message: str) -> str:
            turns = [{"role": "system", "content": BARE_SYSTEM}, {"role": "user", "content": pii_mask(message).text}]
            ids = chat_input_ids(lm.tokenizer, prompt=None, messages=turns)
            return completions_run(lm, ids, sampling, NullContext())[0].text.strip()

        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            bare = list(pool.map(bare_one, messages))
        timings["bare model"] = time.monotonic() - started

        embedder = embedder_get()
        reference_vectors = embedder.encode(references)

        def figures(texts: list[str]) -> dict:
            vectors = embedder.encode([t or " " for t in texts])
            similarity = (vectors * reference_vectors).sum(axis=1)
            return {
                "similarity": round(float(similarity.mean()), 4),
                "repeated_4gram_rate": round(sum(repeated_ngram(t) is not None for t in texts) / len(texts), 4),
                "mean_words": round(statistics.mean(word_count(t) for t in texts), 1),
            }

        report = {
            "rows": len(rows),
            "systems": {
                "service": figures(service),
                "retrieval only": figures(retrieval),
                "bare model": figures(bare),
                "references": {**figures(references), "similarity": 1.0},
            },
            "seconds": {name: round(s, 1) for name, s in timings.items()},
        }
        self.stdout.write(f"{len(rows)} rows of {csv}; k={k}, max_new_tokens={max_new_tokens}, model {lm.version} on {lm.device}")
        self.stdout.write(f"{'system':<16}{'similarity':>12}{'rep. 4-gram':>13}{'words':>8}{'seconds':>9}")
        for name, f in report["systems"].items():
            seconds = timings.get(name, 0.0)
            self.stdout.write(
                f"{name:<16}{f['similarity']:>12.4f}{f['repeated_4gram_rate']:>13.2%}{f['mean_words']:>8.1f}{seconds:>9.1f}"
            )
        if json_out:
            report["replies"] = [
                {"message": pii_mask(m).text, "reference": r, "service": s, "retrieval": t, "bare": b}
                for m, r, s, t, b in zip(messages, references, service, retrieval, bare)
            ]
            with open(json_out, "w", encoding="utf-8") as f:
                json.dump(report, f, indent=1, ensure_ascii=False)
