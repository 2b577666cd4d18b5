import json

from django.core.management.base import BaseCommand, CommandError
from rest_framework.exceptions import ValidationError

from generation.management.commands.replies_batch import csv_rows


class Command(BaseCommand):
    help = (
        "Compare the reply service with two baselines on any CSV of messages and reference replies, "
        "in one run: retrieval only (the best retrieved answer as is) and the bare model without "
        "retrieval. Per system: mean MiniLM cosine to the references, intent match (the share of "
        "replies whose predicted intent equals the reference's; null without an intent model), the "
        "share that says a word 8-gram twice (looping) and the share with a repeated 4-gram, visible {{Placeholders}} per reply without a "
        "company profile and with the demo profile (and how many of those the profile fills: the aim "
        "is none), mean length in words; first-token and whole-draft seconds of single drafts. "
        "Knowledge-base rows whose customer message is exactly the evaluated message are left out of "
        "its retrieval; evaluate on rows the knowledge base does not hold (see docs/benchmarks.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--csv", required=True)
        parser.add_argument("--message-col", default="instruction")
        parser.add_argument("--reference-col", default="response")
        parser.add_argument("--intent-col", help="The references' intent labels (Bitext: intent): intent match "
                                                 "is then against these, not the classifier's reading of the reference.")
        parser.add_argument("--limit", type=int)
        parser.add_argument("-k", type=int, default=3)
        parser.add_argument("--max-new-tokens", type=int, default=256)
        parser.add_argument("--concurrency", type=int, default=8)
        parser.add_argument("--latency-drafts", type=int, default=5,
                            help="Time this many single drafts, one after the other, after the batch (0: none).")
        parser.add_argument("--sample-out", help="Write random messages with the service's draft, the retrieved "
                                                 "answer and the reference here (Markdown).")
        parser.add_argument("--sample-size", type=int, default=20)
        parser.add_argument("--seed", type=int, default=0, help="Which rows the sample shows.")
        parser.add_argument("--json", dest="json_out", help="Also write the figures and every reply here.")
        parser.add_argument("--models", help='Comma-separated reply models to run the service with, each a system '
                                             '("reply-rag@1,base"); default: the one reply jobs use (the promoted adapter).')

    def handle(self, *args, csv, message_col, reference_col, intent_col, limit, k, max_new_tokens, concurrency, latency_drafts,
               sample_out, sample_size, seed, json_out, models, **options):
        from generation.services.company import DEMO_COMPANY_PROFILE, company_profile_placeholder_values
        from workers.evaluation.replies import replies_evaluate, replies_sample_write

        rows = csv_rows(csv, message_col, limit)
        rows = [r for r in rows if (r.get(reference_col) or "").strip()]
        if not rows:
            raise CommandError(f"{csv} has no row with both {message_col!r} and {reference_col!r}.")
        if intent_col and any(intent_col not in r for r in rows):
            raise CommandError(f"{csv} has no column {intent_col!r}.")
        try:
            evaluation = replies_evaluate(
                [r[message_col] for r in rows], [r[reference_col] for r in rows], k=k, max_new_tokens=max_new_tokens,
                concurrency=concurrency, profile=company_profile_placeholder_values(DEMO_COMPANY_PROFILE),
                latency_drafts=latency_drafts, models=[m.strip() for m in models.split(",") if m.strip()] if models else None,
                reference_intents=[r[intent_col] or "" for r in rows] if intent_col else None,
            )
        except ValidationError as exc:  # the reply kind's own limits (k, max_new_tokens, message length, model)
            raise CommandError(f"Invalid reply parameters: {exc.detail}") from None
        report = evaluation.report
        self._table(report, csv)
        if sample_out:
            replies_sample_write(sample_out, evaluation, size=sample_size, seed=seed)
        if json_out:
            replies = [
                {"message": m, "reference": r, **{name: texts[i] for name, texts in evaluation.texts.items() if name != "references"},
                 **{f"{name}_with_profile": evaluation.texts_with_profile[name][i] for name in report["services"]}}
                for i, (m, r) in enumerate(zip(evaluation.messages, evaluation.references))
            ]
            with open(json_out, "w", encoding="utf-8") as f:
                json.dump({**report, "replies": replies}, f, indent=1, ensure_ascii=False)

    def _table(self, report: dict, csv: str) -> None:
        write = self.stdout.write
        write(f"{report['rows']} rows of {csv}; k={report['k']}, max_new_tokens={report['max_new_tokens']}, "
              f"model {report['model']} on {report['device']}; intent model {report['intent_model'] or 'none'}")
        if "intent_match_unavailable" in report:
            write(f"intent match: null, {report['intent_match_unavailable']}")
        elif report.get("intent_references") == "labelled":
            write("intent match: the reply's predicted intent against the reference's labelled intent "
                  "(the references' own row: how often the classifier misreads a written reply)")
        write("columns: similarity to the reference (without / with the demo profile), intent match, looping "
              "(a word 8-gram said twice), repeated word 4-gram (the team's answers have them too), visible placeholders per reply (without / with the profile / of those, ones the "
              "profile has a value for), mean words")
        header = ("system", "similarity", "+profile", "intent", "looping", "4-gram", "{{}}/reply", "+profile", "fillable", "words")
        width = max(16, *(len(name) + 1 for name in report["systems"]))
        write(f"{header[0]:<{width}}" + "".join(f"{h:>11}" for h in header[1:]))

        def cell(value, pattern):
            return f"{'null':>11}" if value is None else f"{value:>11{pattern}}"

        for name, f in report["systems"].items():
            write(f"{name:<{width}}" + cell(f["similarity"], ".4f") + cell(f["similarity_with_profile"], ".4f")
                  + cell(f["intent_match"], ".2%") + cell(f["looping_rate"], ".2%") + cell(f["repeated_4gram_rate"], ".2%")
                  + cell(f["placeholders"], ".2f") + cell(f["placeholders_with_profile"], ".2f")
                  + cell(f["profile_placeholders_visible"], ".2f") + cell(f["mean_words"], ".1f"))
        write("seconds: " + ", ".join(f"{name} {s}" for name, s in report["seconds"].items()))
        latency = report.get("latency")
        if latency and latency["draft_seconds"]:
            first = latency["first_token_seconds"]
            write(f"single drafts ({latency['drafts']}): first token mean "
                  f"{first['mean'] if first else 'n/a'} s (max {first['max'] if first else 'n/a'}), whole draft mean "
                  f"{latency['draft_seconds']['mean']} s (max {latency['draft_seconds']['max']})")
