"""Variants of one product model under several must-keep guidance settings, in one process on the
same held-out sources: how often a variant opens with its must-keep word, how many decodes keep
it, fluency, closeness to the source (docs/benchmarks.md, issue 18).

    .venv/bin/python bench/variants_guidance.py --model NAME --csv copy_test.csv --sources 40 \\
        "ramp=0,hold=0" "ramp=4,hold=1" "ramp=4,hold=0"

Each setting is ``ramp`` (GENAI_GENMODEL_KEEP_RAMP), ``hold`` (GENAI_GENMODEL_KEEP_HOLD, 0/1),
``penalty`` (GENAI_GENMODEL_REPETITION_PENALTY)
and ``pick`` (the evaluation's must-keep word: ``noun``, the default, or ``longest``, the earlier pick). ``--out`` writes every source's variants per
setting (JSON), for people to read side by side.
"""

import argparse
import csv
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "genai_site.settings.local")

FIGURES = ("fluency_ppl", "broken_share", "cosine_to_source", "cosine_at_least_0.6_share", "bleu_to_source",
           "must_keep_retention_decoded", "sources_with_a_variant", "sources_with_k_variants",
           "leads_with_must_keep_share", "sources_naming_a_product", "naming_sources_with_a_variant")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("settings", nargs="+", help='e.g. "ramp=4,hold=1,penalty=1.3"')
    parser.add_argument("--model", required=True, help='A product VAE, "name" or "name@N".')
    parser.add_argument("--csv", required=True, help="Held-out sentences (column --text-col).")
    parser.add_argument("--text-col", default="text")
    parser.add_argument("--sources", type=int, default=40)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default="", help="Write each setting's figures and variants here (JSON).")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings

    from workers.evaluation.genmodels import known_words, longest_word_pick, must_keep_pick, variants_evaluate
    from workers.runtime.genmodels import genmodel_get
    from workers.train.genmodels import corpus_sentences

    with open(args.csv, newline="", encoding="utf-8") as f:
        texts = [row[args.text_col] for row in csv.DictReader(f)]
    sources = random.Random(args.seed).sample(corpus_sentences(texts, max_words=30), args.sources)
    known = known_words(sources)
    model = genmodel_get(name=args.model, domain="product")
    out = {}
    for setting in args.settings:
        values = dict(item.split("=") for item in setting.split(","))
        settings.GENAI_GENMODEL_KEEP_RAMP = int(values.get("ramp", 0))
        settings.GENAI_GENMODEL_KEEP_HOLD = values.get("hold", "0") == "1"
        settings.GENAI_GENMODEL_REPETITION_PENALTY = float(values.get("penalty", 1.3))
        started = time.monotonic()
        pick = {"noun": must_keep_pick, "longest": longest_word_pick}[values.get("pick", "noun")]
        figures, rows = variants_evaluate(model, sources, k=args.k, seed=0, lm_name=None, known=known, pick=pick)
        figures["seconds"] = round(time.monotonic() - started, 1)
        out[setting] = {"figures": figures, "rows": rows}
        print(setting, json.dumps({key: figures.get(key) for key in (*FIGURES, "seconds", "removed")}), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
