"""Build the copy model's training data from the team's corpus of faithful product texts.

The corpus (``data/copy/corpus/*.jsonl``, one product per line: attributes, tone, length and a
description that states every attribute and nothing else) is split by a hash of each id, so a
product never moves between splits when the corpus grows: one in ``--test-every`` is held back
for evaluation (``test.csv`` for ``copy_evaluate``, ``test.jsonl`` with the references), the rest
become chat examples in the copy runner's own prompt (``train.jsonl`` for ``manage.py finetune
--purpose copy``). A share of the training chats carry one other product of the same group as a
few-shot turn, as the runner's prompt carries brand examples.
"""

import csv
import hashlib
import json
import random
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from generation.kinds.copy import LENGTHS, TONES

CORPUS_DIR = Path(__file__).resolve().parents[3] / "data" / "copy" / "corpus"
TEST_EVERY = 8  # one product in 8 held back: the split the copy adapter, VAE and tone scorer were trained on


def corpus_read(directory: Path) -> list[dict]:
    rows, seen = [], set()
    for path in sorted(directory.glob("*.jsonl")):
        for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CommandError(f"{path.name}, line {line_number}: {exc.msg}") from None
            missing = {"id", "attributes", "description", "tone", "length"} - set(row)
            if missing or row["tone"] not in TONES or row["length"] not in LENGTHS:
                raise CommandError(f"{path.name}, line {line_number}: bad record ({', '.join(sorted(missing)) or 'tone/length'})")
            if row["id"] in seen:
                raise CommandError(f"{path.name}, line {line_number}: id {row['id']!r} is used twice")
            seen.add(row["id"])
            rows.append(row)
    if not rows:
        raise CommandError(f"no corpus files in {directory}")
    return rows


def split_of(record_id: str, *, test_every: int) -> str:
    return "test" if int(hashlib.sha256(record_id.encode()).hexdigest(), 16) % test_every == 0 else "train"


def sentence_rows(row: dict, group_rows: list[dict], *, rng: random.Random, voice_share: float) -> list[dict]:
    """One chat per sentence of ``row``'s description that states a fact: the prompt the copy
    runner gives for the next sentence (the sentences before it, the facts it states), the
    sentence as the answer. A share quote another product of the group as the brand voice."""
    from generation.text.copycheck import attribute_facts, facts_stated
    from generation.text.sentences import sentences_split
    from workers.runners.copy import copy_sentence_messages, voice_excerpt

    facts = attribute_facts(row["attributes"])
    others = [o for o in group_rows if o["id"] != row["id"]]
    voice = voice_excerpt(rng.choice(others)["description"]) if others and rng.random() < voice_share else ""
    out, before = [], ""
    for index, sentence in enumerate(sentences_split(row["description"])):
        stated = facts_stated(sentence, facts)
        if stated:
            messages = copy_sentence_messages(attributes=row["attributes"], tone=row["tone"], length=row["length"],
                                              before=before, facts=stated, voice=voice)
            messages.append({"role": "assistant", "content": sentence.strip()})
            out.append({"id": f"{row['id']}#{index}", "messages": messages})
        before = f"{before} {sentence.strip()}".strip()
    return out


class Command(BaseCommand):
    help = "Split the copy corpus and write the fine-tuning chats and the held-back test catalogue."

    def add_arguments(self, parser):
        parser.add_argument("--corpus", type=Path, default=CORPUS_DIR)
        parser.add_argument("--out", type=Path, required=True, help="Directory for train.jsonl, test.csv, test.jsonl.")
        parser.add_argument("--test-every", type=int, default=TEST_EVERY, help="One product in this many is held back.")
        parser.add_argument("--few-shot-share", type=float, default=0.4)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--all", action="store_true",
                            help="Train on every text; by default only those the strict copy checker passes.")
        parser.add_argument("--format", choices=("whole", "sentences"), default="whole", dest="row_format",
                            help="whole: one chat per product (the whole description); sentences: one chat per "
                                 "sentence, its facts and the sentences before it (adapters trained with "
                                 "prompt_format 'sentences' write one sentence at a time).")
        parser.add_argument("--voice-share", type=float, default=0.25,
                            help="sentences: share of rows whose prompt quotes another product's text as the brand voice.")
        parser.add_argument("--as-written", action="store_true",
                            help="Train on the texts as written; by default each is cleaned as the service cleans "
                                 "what the model writes (flagged sentences removed, sentences and clauses that "
                                 "state no attribute cut), so the model learns the prose the service keeps.")

    def handle(self, *args, corpus: Path, out: Path, test_every: int, few_shot_share: float, seed: int, **options):
        from generation.text.copycheck import claims_filter, copy_check, ungrounded_cut

        rows = corpus_read(corpus)
        rng = random.Random(seed)
        train = [r for r in rows if split_of(r["id"], test_every=test_every) == "train"]
        if not options["as_written"]:
            # A 135M model imitates the corpus's tone sentences as nonsense ("a quiet spot to unwind
            # on the weekends" for a shirt); trained on what the service keeps, it writes less to cut.
            cleaned = []
            for row in train:
                text, _ = ungrounded_cut(row["description"], row["attributes"])
                text, _, _ = claims_filter(text, row["attributes"])
                cleaned.append({**row, "description": text})
            train = cleaned
        held_out = 0
        if not options["all"]:  # what the model learns is what the checker lets through
            kept = [r for r in train if copy_check(r["description"], r["attributes"]).passed]
            held_out, train = len(train) - len(kept), kept
        test = [r for r in rows if split_of(r["id"], test_every=test_every) == "test"]
        by_group: dict[str, list[dict]] = {}
        for row in train:
            by_group.setdefault(row.get("group", ""), []).append(row)
        out.mkdir(parents=True, exist_ok=True)
        if options["row_format"] == "sentences":
            with open(out / "train.jsonl", "w", encoding="utf-8") as handle:
                written = 0
                for row in train:
                    for example in sentence_rows(row, by_group[row.get("group", "")], rng=rng,
                                                 voice_share=options["voice_share"]):
                        handle.write(json.dumps(example, ensure_ascii=False) + "\n")
                        written += 1
        else:
            written = self._whole_rows(out, train, by_group, rng, few_shot_share)
        self._test_write(out, test)
        groups = sorted({r.get("group", "") for r in rows})
        self.stdout.write(json.dumps({"products": len(rows), "train": len(train), "train_failing_checker": held_out,
                                      "rows": written, "format": options["row_format"], "test": len(test),
                                      "groups": len(groups), "out": str(out)}))

    @staticmethod
    def _whole_rows(out: Path, train: list[dict], by_group: dict, rng: random.Random, few_shot_share: float) -> int:
        from workers.runners.copy import copy_messages

        with open(out / "train.jsonl", "w", encoding="utf-8") as handle:
            for row in train:
                others = [o for o in by_group[row.get("group", "")] if o["id"] != row["id"]]
                examples = []
                if others and rng.random() < few_shot_share:
                    other = rng.choice(others)
                    examples = [(other["attributes"], other["description"])]
                messages = copy_messages(attributes=row["attributes"], tone=row["tone"], length=row["length"],
                                         examples=examples)
                if not examples:  # copy_messages falls back to its built-in example: train without it
                    messages = [messages[0], messages[-1]]
                messages.append({"role": "assistant", "content": row["description"].strip()})
                handle.write(json.dumps({"id": row["id"], "messages": messages}, ensure_ascii=False) + "\n")
        return len(train)

    @staticmethod
    def _test_write(out: Path, test: list[dict]) -> None:
        keys = list(dict.fromkeys(k for row in test for k in row["attributes"]))
        with open(out / "test.csv", "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(keys)
            for row in test:
                values = row["attributes"]
                writer.writerow(["; ".join(values[k]) if isinstance(values.get(k), list) else values.get(k, "") for k in keys])
        with open(out / "test.jsonl", "w", encoding="utf-8") as handle:
            for row in test:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
