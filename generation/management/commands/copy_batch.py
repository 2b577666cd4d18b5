import json
import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from generation.kinds.copy import LENGTHS, TONES


class Command(BaseCommand):
    help = (
        "Write product copy for every product of a CSV (one product per row, the columns are attribute names, "
        "empty cells are absent attributes) through the copy service, in this process; one JSON object per line "
        "of the output: line, attributes, and the candidates (title, description, bullets, checks). Every row is "
        "validated first: bad rows are reported with their line numbers and nothing is written; the output "
        "appears only when complete."
    )

    def add_arguments(self, parser):
        parser.add_argument("--in", dest="input", required=True, help="Product CSV with a header row.")
        parser.add_argument("--out", required=True, help="JSONL file to write.")
        parser.add_argument("--tone", choices=TONES, default="neutral")
        parser.add_argument("--length", choices=LENGTHS, default="medium")
        parser.add_argument("-n", type=int, default=1, help="Candidates per product (and segment).")
        parser.add_argument("--segment", action="append", default=[], help="An audience segment (repeatable).")
        parser.add_argument("--max-regenerations", type=int, help="Extra tries of a failing description (default: the setting).")
        parser.add_argument("--limit", type=int)
        parser.add_argument("--concurrency", type=int, default=16, help="Products generated at once (the engine batches them).")
        parser.add_argument("--cpu-weights", choices=("auto", "int4", "dense"), default="auto",
                            help="auto: dense float32 on CPUs without native bf16 (faster for batches there), else the "
                                 "GENAI_CPU_WEIGHTS setting.")

    def handle(self, *args, input, out, tone, length, n, segment, max_regenerations, limit, concurrency, cpu_weights,
               **options):
        from rest_framework.exceptions import ValidationError

        from generation.services.copy import catalogue_read
        from workers.runners.copy import copy_draft
        from workers.runtime.device import batch_cpu_weights

        batch_cpu_weights(cpu_weights)  # before the first model loads

        try:
            rows, errors = catalogue_read(input, limit=limit)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise CommandError(str(exc)) from exc
        if errors:
            listed = "\n".join(
                f"  line {e['line']}: " + "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in e["errors"].items())
                for e in errors
            )
            raise CommandError(f"{len(errors)} bad row(s) in {input}, nothing written:\n{listed}")
        brands = sorted({str(a.get("brand")) for _, a in rows if a.get("brand")})
        params = [
            {"attributes": a, "tone": tone, "length": length, "n": n, "segments": list(segment)} for _, a in rows
        ]
        if max_regenerations is not None:
            for p in params:
                p["max_regenerations"] = max_regenerations
        try:
            results = copy_draft(params, known_brands=brands, concurrency=concurrency)
        except ValidationError as exc:
            raise CommandError(f"invalid options: {exc.detail}") from exc
        target = Path(out)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=str(target.parent.resolve()))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                for (line, attributes), candidates in zip(rows, results):
                    record = {
                        "line": line,
                        "attributes": attributes,
                        "candidates": [
                            {
                                "segment": c.metadata["segment"],
                                "title": c.metadata["title"],
                                "description": c.metadata["description"],
                                "bullets": c.metadata["bullets"],
                                "text": c.text,
                                "checks": {k: c.metadata["checks"][k] for k in (
                                    "coverage", "missing", "unsupported", "repetition", "passed",
                                    "description_coverage", "generated_coverage")},
                                "fallback": c.metadata["fallback"],
                            }
                            for c in candidates
                        ],
                    }
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        passed = sum(1 for cands in results for c in cands if c.metadata["checks"]["passed"])
        total = sum(len(cands) for cands in results)
        self.stdout.write(f"Wrote copy for {len(rows)} products to {out} ({passed}/{total} candidates passed the checks).")
