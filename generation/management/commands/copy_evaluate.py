"""Product copy measured by what a reader sees, on any catalogue CSV (one product per row, the
columns are attribute names): the copy service with each model named (default: the promoted copy
adapter and the base model, so the current and the previous serve side by side) and the bare
model, in one run. Figures per system: attribute coverage, the strict checker's unsupported-claim
rate (any claim in the final text), meta-text, template tails, currency mismatches, repetition,
mean words, fluency (perplexity of the descriptions under the base model); `--sample-out` writes
20 random products with every system's text for people to read."""

import json
import random
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from django.core.management.base import BaseCommand, CommandError

from generation.kinds.copy import LENGTHS, TONES


def _mean(values) -> float:
    values = list(values)
    return round(statistics.mean(values), 4) if values else 0.0


def _rate(flags) -> float:
    return _mean(1.0 if f else 0.0 for f in flags)


def figures(checks: list[dict], descriptions: list[str], *, perplexity: float | None) -> dict:
    """The reader's figures of one system's candidates (``checks``: copy_check dicts)."""

    def has(check: dict, kind: str) -> bool:
        return any(u["type"] == kind for u in check["unsupported"])

    return {
        "coverage": _mean(c["coverage"] for c in checks),
        "unsupported_rate": _rate(c["unsupported"] for c in checks),
        "meta_rate": _rate(has(c, "meta") for c in checks),
        "template_tail_rate": _rate(c.get("template_tail") for c in checks),
        "currency_mismatch_rate": _rate(has(c, "currency") for c in checks),
        "repetition_rate": _rate(c["repetition"] for c in checks),
        "passed_rate": _rate(c["passed"] for c in checks),
        "mean_words": _mean(len(d.split()) for d in descriptions),
        "perplexity": None if perplexity is None else round(perplexity, 2),
    }


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--csv", required=True)
        parser.add_argument("--limit", type=int)
        parser.add_argument("--tone", choices=TONES, default="neutral")
        parser.add_argument("--length", choices=LENGTHS, default="medium")
        parser.add_argument("--models", help='Comma-separated copy models for the service ("copy-lora@2,base"); '
                                             "default: the promoted copy adapter (if any) and the base model.")
        parser.add_argument("--max-regenerations", type=int)
        parser.add_argument("--concurrency", type=int, default=16, help="Products generated at once (the engine batches them).")
        parser.add_argument("--cpu-weights", choices=("auto", "int4", "dense"), default="auto",
                            help="auto: dense float32 on CPUs without native bf16 (faster for batches there), else the "
                                 "GENAI_CPU_WEIGHTS setting.")
        parser.add_argument("--no-bare", action="store_true", help="Skip the bare-model baseline.")
        parser.add_argument("--no-fluency", action="store_true", help="Skip the perplexity of the texts.")
        parser.add_argument("--sample-out", help="Write 20 random products with every system's text here (Markdown).")
        parser.add_argument("--sample-size", type=int, default=20)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", dest="json_out", help="Also write the figures and every text here.")
        parser.add_argument("--visibility", type=int, default=0, metavar="K",
                            help="Also write the first K products in every tone and length with the first model: "
                                 "tone identification accuracy (chance 1/4) and mean words per length.")

    def handle(self, *args, csv, limit, tone, length, models, max_regenerations, concurrency, no_bare, no_fluency,
               sample_out, sample_size, seed, json_out, visibility, cpu_weights, **options):
        from generation.selectors import model_version_resolve
        from generation.services.copy import catalogue_read
        from generation.text.copycheck import copy_check
        from workers.evaluation.genmodels import lm_perplexity
        from workers.runners.copy import copy_bare, copy_draft
        from workers.runtime.device import batch_cpu_weights
        from workers.runtime.models import lm_get

        weights = batch_cpu_weights(cpu_weights)  # before the first model loads

        try:
            rows, errors = catalogue_read(csv, limit=limit)
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        if errors:
            raise CommandError("bad rows: " + "; ".join(f"line {e['line']}: {e['errors']}" for e in errors[:20]))
        if not rows:
            raise CommandError(f"{csv}: no products")
        if models:
            names = [m.strip() for m in models.split(",") if m.strip()]
        else:
            promoted = model_version_resolve(family="lm_adapter", purpose="copy")
            names = ([promoted.label] if promoted else []) + ["base"]
        brands = sorted({str(a.get("brand")) for _, a in rows if a.get("brand")})
        attributes = [a for _, a in rows]
        systems: dict[str, dict] = {}
        for name in names:
            params = [{"attributes": a, "tone": tone, "length": length, "model": name} for a in attributes]
            if max_regenerations is not None:
                for p in params:
                    p["max_regenerations"] = max_regenerations
            started = time.monotonic()
            try:
                drafted = copy_draft(params, known_brands=brands, concurrency=concurrency)
            except Exception as exc:  # noqa: BLE001 - an unknown model name, a missing adapter file
                raise CommandError(f"model {name!r}: {exc}") from exc
            candidates = [c[0] for c in drafted]
            checks = [c.metadata["checks"] for c in candidates]
            descriptions = [c.metadata["description"] for c in candidates]
            systems[f"service ({name})"] = {
                "texts": [c.text for c in candidates],
                "descriptions": descriptions,
                "checks": checks,
                "seconds": time.monotonic() - started,
                "extra": {
                    "description_coverage": _mean(c["description_coverage"] for c in checks),
                    "generated_coverage": _mean(c["generated_coverage"] for c in checks),
                    # the model's own text before the service cleaned it: a claim removed, and
                    # a sentence or clause that stated no attribute cut (ungrounded_cut)
                    "generated_with_claims_rate": _rate(
                        any(r["type"] != "ungrounded" for r in c["removed_claims"]) for c in checks
                    ),
                    "ungrounded_cut_rate": _rate(
                        any(r["type"] == "ungrounded" for r in c["removed_claims"]) for c in checks
                    ),
                    "fallback_rate": _rate(c.metadata["fallback"] for c in candidates),
                    # written one sentence at a time: the share of planned sentences the model
                    # wrote (the rest are plain sentences of their facts)
                    "model_sentence_rate": _rate(
                        p["by"] == "model" for c in candidates for p in c.metadata.get("sentences", [])
                    ) if any(c.metadata.get("sentences") for c in candidates) else None,
                },
            }
            self.stderr.write(f"service ({name}): {len(candidates)} products in {systems[f'service ({name})']['seconds']:.0f} s")
        if not no_bare:
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
                texts = list(pool.map(lambda a: copy_bare(a, length=length), attributes))
            systems["bare model"] = {
                "texts": texts,
                "descriptions": texts,
                "checks": [copy_check(t, a, known_brands=brands).as_dict() for t, a in zip(texts, attributes)],
                "seconds": time.monotonic() - started,
                "extra": {},
            }
        report = {"csv": csv, "products": len(rows), "tone": tone, "length": length, "base_model": lm_get().version,
                  "cpu_weights": weights, "concurrency": concurrency, "systems": {}}
        for name, system in systems.items():
            perplexity = None if no_fluency else lm_perplexity(system["descriptions"])
            report["systems"][name] = {
                **figures(system["checks"], system["descriptions"], perplexity=perplexity),
                **system["extra"],
                "seconds_per_product": round(system["seconds"] / len(rows), 2),
            }
        report["failures"] = {
            name: [
                {"line": line, "name": a.get("name", ""), "missing": c["missing"],
                 "unsupported": [f"{u['type']}: {u['claim']}" for u in c["unsupported"]]}
                for (line, a), c in zip(rows, system["checks"]) if not c["passed"]
            ][:50]
            for name, system in systems.items()
        }
        if visibility:
            report["visibility"] = self._visibility(attributes[:visibility], model=names[0], brands=brands,
                                                    concurrency=concurrency)
        if sample_out:
            self._sample_write(sample_out, rows, systems, size=sample_size, seed=seed,
                               visibility=report.get("visibility"))
        if json_out:
            detail = {name: [{"text": t, "checks": c} for t, c in zip(s["texts"], s["checks"])] for name, s in systems.items()}
            with open(json_out, "w", encoding="utf-8") as f:
                json.dump({**report, "detail": detail}, f, indent=1, ensure_ascii=False)
        if "visibility" in report:
            report["visibility"] = {k: v for k, v in report["visibility"].items() if k != "texts"}
        self.stdout.write(json.dumps(report, indent=1, ensure_ascii=False))

    def _visibility(self, attributes: list[dict], *, model: str, brands: list[str], concurrency: int) -> dict:
        """Every tone (medium) and every length (neutral) for each product: is the tone readable
        from the text (workers.evaluation.copy.tone_identification), do lengths differ?"""
        import numpy as np

        from workers.evaluation.copy import tone_identification
        from workers.runners.copy import copy_draft
        from workers.runtime.embeddings import scorer_get

        tones, lengths = list(TONES), list(LENGTHS)
        plan = [(a, t, "medium") for a in attributes for t in tones] + [
            (a, "neutral", n) for a in attributes for n in lengths if n != "medium"]
        drafted = copy_draft([{"attributes": a, "tone": t, "length": n, "model": model} for a, t, n in plan],
                             known_brands=brands, concurrency=concurrency)
        descriptions = [c[0].metadata["description"] for c in drafted]
        by_tone = descriptions[: len(attributes) * len(tones)]
        vectors = scorer_get().encode(by_tone).reshape(len(attributes), len(tones), -1)
        # A second, larger encoder that the service does not use: the copy runner picks tonal
        # sentences with a classifier on the first one's vectors (workers.runners.copy_tone).
        from sentence_transformers import SentenceTransformer

        from workers.runtime.mpnet import mpnet_prepare

        mpnet = SentenceTransformer(str(mpnet_prepare()), device="cpu", local_files_only=True)
        other = mpnet.encode(by_tone, normalize_embeddings=True).reshape(len(attributes), len(tones), -1)
        words = {n: [] for n in lengths}
        for (_, t, n), text in zip(plan, descriptions):
            if t == "neutral":
                words[n].append(len(text.split()))
        examples = [{"tone": t, "description": d} for t, d in zip(tones, by_tone[: len(tones)])]
        texts = [{"product": a.get("name", ""), "tone": t, "length": n, "description": d}
                 for (a, t, n), d in zip(plan, descriptions)]
        return {
            "products": len(attributes),
            "tone": tone_identification(np.asarray(vectors), tones),
            "tone_mpnet": tone_identification(np.asarray(other), tones),
            "mean_words_by_length": {n: _mean(w) for n, w in words.items()},
            "example": examples,
            "texts": texts,
        }

    def _sample_write(self, path, rows, systems, *, size: int, seed: int, visibility: dict | None = None) -> None:
        picked = sorted(random.Random(seed).sample(range(len(rows)), min(size, len(rows))))
        lines = [f"# Copy sample: {len(picked)} random products of {len(rows)}", ""]
        for i in picked:
            line, attributes = rows[i]
            lines += [f"## Line {line}: {attributes.get('name', '')}", "", "Attributes: " + "; ".join(
                f"{k}: {', '.join(v) if isinstance(v, list) else v}" for k, v in attributes.items()), ""]
            for name, system in systems.items():
                check = system["checks"][i]
                flags = [f"{u['type']}: {u['claim']}" for u in check["unsupported"]]
                if check.get("template_tail"):
                    flags.append("template tail")
                if check["repetition"]:
                    flags.append(f"repeats: {check['repetition']}")
                mark = "passed" if check["passed"] else "FLAGGED"
                lines += [f"**{name}** ({mark}; coverage {check['coverage']}"
                          + (f"; {'; '.join(flags)}" if flags else "") + ")", ""]
                lines += ["> " + text_line if text_line else ">" for text_line in system["texts"][i].splitlines()]
                lines.append("")
        if visibility:
            lines += [f"# Tones and lengths: the first {visibility['products']} products", ""]
            for t in visibility["texts"]:
                lines += [f"**{t['product']}**, {t['tone']}, {t['length']}:", "", f"> {t['description']}", ""]
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
