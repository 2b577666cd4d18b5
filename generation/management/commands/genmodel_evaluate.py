import json

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Evaluate a sentence VAE (+ its GAN) on any CSV with a text column; prints JSON: validation ELBO, "
        "reconstruction NLL and BLEU, KL, active units; and for --samples samples each from the VAE prior and "
        "the GAN (and as many of the CSV's own sentences), and for --variants sentences' variants: distinct-1/2, "
        "self-BLEU, novelty (share not a training sentence), share with broken tokens and fluency as perplexity "
        "under the LM (SmolLM2); for variants also similarity and BLEU to the source and must-keep retention; for "
        "--interpolations paths, similarity to both ends. --baseline evaluates another VAE (the earlier GRU one) in "
        "the same run; --sample-out writes 10 texts of each kind to read."
    )

    def add_arguments(self, parser):
        parser.add_argument("--model", default="", help='VAE "name" or "name@3"; blank: the promoted/newest.')
        parser.add_argument("--gan", default="", help='A GAN version of that VAE, "name-gan" or "name-gan@2"; blank: its promoted, else newest.')
        parser.add_argument("--csv", required=True)
        parser.add_argument("--text-col", default="text")
        parser.add_argument("--samples", type=int, default=500)
        parser.add_argument("--max-rows", type=int, default=5000, help="CSV rows read.")
        parser.add_argument("--max-words", type=int, default=30, help="Longer sentences are left out.")
        parser.add_argument("--decoding", choices=("greedy", "sample", "beam"), default="greedy")
        parser.add_argument("--temperature", type=float, default=1.0, help="Of --decoding sample (0.1 to 2).")
        parser.add_argument(
            "--sweep", default="",
            help='Temperatures, e.g. "0.5,0.7,1.0": sampled decoding of prior and GAN at each, their quality/diversity '
                 'curves and the GAN against the prior at equal fluency ("Language GANs Falling Short").',
        )
        parser.add_argument(
            "--length-matched", type=int, default=0, metavar="K",
            help="Also draw K x --samples prior texts (at the decoding given, and at each --sweep temperature), keep as "
                 "many as the GAN made with the GAN's sentence lengths, and compare the GAN with that length-matched prior.",
        )
        parser.add_argument("--lm", default=None, help="The LM of the fluency figure (default GENAI_LM_MODEL).")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", dest="json_out", help="Also write the JSON here.")
        parser.add_argument("--baseline", default="", help='Another VAE ("name" or "name@N") evaluated the same way in this run.')
        parser.add_argument("--variants", type=int, default=30, help="Held-out sentences to make variants of (0: none).")
        parser.add_argument("--k", type=int, default=3, help="Variants per sentence.")
        parser.add_argument("--interpolations", type=int, default=10, help="Pairs of held-out sentences to interpolate.")
        parser.add_argument("--max-sentences", type=int, default=0, help="Cap on the held-out sentences (a seeded draw).")
        parser.add_argument("--sample-out", default="", help="Write 10 texts of each kind (Markdown) here.")

    def handle(self, *args, model, csv, text_col, samples, max_rows, max_words, decoding, temperature, sweep, lm, seed, json_out,
               length_matched=0, gan="", baseline="", variants=30, k=3, interpolations=10, max_sentences=0, sample_out="",
               **options):
        from generation.exceptions import PermanentJobError
        from workers.evaluation.genmodels import genmodel_evaluate, sample_markdown
        from workers.runners.genmodel_train import csv_rows
        from workers.runtime.genmodels import genmodel_get

        if samples < 2:
            raise CommandError("--samples must be at least 2.")
        if not 0.1 <= temperature <= 2.0:
            raise CommandError("--temperature must be between 0.1 and 2.")
        try:
            temperatures = [float(value) for value in sweep.split(",") if value.strip()]
        except ValueError:
            raise CommandError(f"--sweep must be temperatures separated by commas, got {sweep!r}.") from None
        if any(not 0.1 <= value <= 2.0 for value in temperatures):
            raise CommandError("--sweep temperatures must be between 0.1 and 2.")
        if not 0 <= length_matched <= 10:
            raise CommandError("--length-matched must be between 0 and 10.")
        if not (0 <= variants <= 1000 and 1 <= k <= 20 and 0 <= interpolations <= 500):
            raise CommandError("--variants must be 0 to 1000, --k 1 to 20, --interpolations 0 to 500.")
        try:
            rows, header = csv_rows(path=csv, max_rows=max_rows)
        except PermanentJobError as exc:
            raise CommandError(str(exc)) from exc
        if text_col not in header:
            raise CommandError(f"{csv} has no column {text_col!r}; its columns: {', '.join(header)}.")
        try:
            loaded = genmodel_get(name=model or None, gan=gan or None)
            other = genmodel_get(name=baseline) if baseline else None
            report = genmodel_evaluate(
                model=loaded,
                texts=[row[text_col] or "" for row in rows],
                samples=samples,
                seed=seed,
                lm_name=lm,
                decoding=decoding,
                max_words=max_words,
                temperature=temperature,
                sweep=temperatures,
                length_matched_pool=length_matched,
                variants=variants,
                k=k,
                interpolations=interpolations,
                max_sentences=max_sentences,
                baseline=other,
            )
        except (PermanentJobError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        report["csv"] = csv
        if sample_out:
            with open(sample_out, "w") as handle:
                handle.write(sample_markdown(report))
        text = json.dumps(report, indent=2)
        if json_out:
            with open(json_out, "w") as handle:
                handle.write(text + "\n")
        self.stdout.write(text)
