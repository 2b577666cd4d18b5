import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from django.core.management.base import BaseCommand, CommandError

from generation.kinds.copy import LENGTHS, TONES


def _mean(values) -> float:
    values = list(values)
    return round(statistics.mean(values), 4) if values else 0.0


class Command(BaseCommand):
    help = (
        "Evaluate product copy on a catalogue CSV (one product per row, columns are attributes) against the "
        "bare model in the same run. Prints JSON: attribute coverage (of the whole candidate, of its "
        "description, and of the generated part alone), the share of candidates with an unsupported claim, "
        "the share with a repeated word 4-gram, checks passed, regenerations, and each failing product."
    )

    def add_arguments(self, parser):
        parser.add_argument("--csv", required=True)
        parser.add_argument("--limit", type=int)
        parser.add_argument("--tone", choices=TONES, default="neutral")
        parser.add_argument("--length", choices=LENGTHS, default="medium")
        parser.add_argument("--max-regenerations", type=int)
        parser.add_argument("--concurrency", type=int, default=8, help="Products generated at once (the engine batches them).")
        parser.add_argument("--no-bare", action="store_true", help="Skip the bare-model baseline.")
        parser.add_argument("--json", dest="json_out", help="Also write the figures and every text here.")

    def handle(self, *args, csv, limit, tone, length, max_regenerations, concurrency, no_bare, json_out, **options):
        from generation.services.copy import catalogue_read
        from generation.text.copycheck import copy_check
        from workers.runners.copy import copy_bare, copy_draft
        from workers.runtime.models import lm_get

        try:
            rows, errors = catalogue_read(csv, limit=limit)
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        if errors:
            raise CommandError("bad rows: " + "; ".join(f"line {e['line']}: {e['errors']}" for e in errors[:20]))
        if not rows:
            raise CommandError(f"{csv}: no products")
        brands = sorted({str(a.get("brand")) for _, a in rows if a.get("brand")})
        params = [{"attributes": a, "tone": tone, "length": length} for _, a in rows]
        if max_regenerations is not None:
            for p in params:
                p["max_regenerations"] = max_regenerations
        lm = lm_get()
        timings = {"service": 0.0, "bare model": 0.0}
        service, bare_texts, bare_checks = [], [], []
        # In chunks, the report rewritten after each: a long run killed midway leaves its figures so far.
        chunk = max(1, concurrency) * 2
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            started = time.monotonic()
            drafted = copy_draft(params[start : start + chunk], known_brands=brands, concurrency=concurrency)
            service += [c[0] for c in drafted]
            timings["service"] += time.monotonic() - started
            if not no_bare:
                started = time.monotonic()
                with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
                    texts = list(pool.map(lambda a: copy_bare(a, length=length), [a for _, a in part]))
                timings["bare model"] += time.monotonic() - started
                bare_texts += texts
                bare_checks += [copy_check(t, a, known_brands=brands) for t, (_, a) in zip(texts, part)]
            report = self._report(csv, rows[: len(service)], service, bare_texts, bare_checks, timings,
                                  tone=tone, length=length, lm=lm, total=len(rows))
            if json_out:
                with open(json_out, "w", encoding="utf-8") as f:
                    json.dump(report, f, indent=1, ensure_ascii=False)
            self.stderr.write(f"{len(service)}/{len(rows)} products")
        report.pop("products_detail", None)
        self.stdout.write(json.dumps(report, indent=1, ensure_ascii=False))

    def _report(self, csv, rows, service, bare_texts, bare_checks, timings, *, tone, length, lm, total) -> dict:
        checks = [c.metadata["checks"] for c in service]
        report = {
            "csv": csv,
            "products": len(rows),
            "products_in_file": total,
            "tone": tone,
            "length": length,
            "model": lm.version,
            "device": lm.device,
            "service": {
                "coverage": _mean(c["coverage"] for c in checks),
                "description_coverage": _mean(c["description_coverage"] for c in checks),
                "generated_coverage": _mean(c["generated_coverage"] for c in checks),
                "unsupported_rate": _mean(1.0 if c["unsupported"] else 0.0 for c in checks),
                "repetition_rate": _mean(1.0 if c["repetition"] else 0.0 for c in checks),
                "passed_rate": _mean(1.0 if c["passed"] else 0.0 for c in checks),
                "fallback_rate": _mean(1.0 if c.metadata["fallback"] else 0.0 for c in service),
                "claims_removed_per_candidate": _mean(len(c["removed_claims"]) for c in checks),
                "mean_attempts": _mean(c.metadata["attempts"] for c in service),
            },
            "seconds": {k: round(v, 1) for k, v in timings.items()},
        }
        if bare_checks:
            report["bare model"] = {
                "coverage": _mean(c.coverage for c in bare_checks),
                "unsupported_rate": _mean(1.0 if c.unsupported else 0.0 for c in bare_checks),
                "repetition_rate": _mean(1.0 if c.repetition else 0.0 for c in bare_checks),
                "passed_rate": _mean(1.0 if c.passed else 0.0 for c in bare_checks),
            }
        report["failures"] = [
            {"line": line, "name": attributes.get("name", ""), "missing": c["missing"],
             "unsupported": [f"{u['type']}: {u['claim']}" for u in c["unsupported"]], "repetition": c["repetition"]}
            for (line, attributes), c in zip(rows, checks)
            if not c["passed"]
        ]
        report["products_detail"] = [
            {
                "line": line,
                "attributes": attributes,
                "service": candidate.text,
                "service_checks": candidate.metadata["checks"],
                "generated": candidate.metadata["generated"],
                **({"bare": bare_texts[i], "bare_checks": bare_checks[i].as_dict()} if i < len(bare_checks) else {}),
            }
            for i, ((line, attributes), candidate) in enumerate(zip(rows, service))
        ]
        return report
