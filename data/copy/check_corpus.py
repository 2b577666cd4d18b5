"""Self-check of a corpus file: python3 data/copy/check_corpus.py data/copy/corpus/PART.jsonl"""
import json
import re
import sys

LENGTHS = {"short": (25, 50), "medium": (55, 90), "long": (95, 140)}
TONES = {"neutral", "playful", "premium", "technical"}
BANNED = re.compile(r"\b(best|ultimate|perfect|#1|number one|renowned|world[- ]class|unbeatable|finest|top[- ]quality|"
                    r"award|discount|sale|offer|deal|cheap|bargain|guarantee|warranty|eco[- ]friendly|sustainable|"
                    r"organic|recycled|waterproof|breathable|durable|lightweight|premium quality|handmade|hand[- ]crafted|"
                    r"information provided|this description|as an ai|the list|the facts|product facts|better than|"
                    r"more than most|unlike other)\b", re.I)
bad = 0
ids = set()
for n, line in enumerate(open(sys.argv[1]), 1):
    if not line.strip():
        continue
    r = json.loads(line)
    problems = []
    for k in ("id", "group", "tone", "length", "attributes", "description"):
        if k not in r: problems.append(f"missing {k}")
    if problems: print(n, problems); bad += 1; continue
    if r["id"] in ids: problems.append("duplicate id")
    ids.add(r["id"])
    if r["tone"] not in TONES: problems.append("tone")
    if r["length"] not in LENGTHS: problems.append("length")
    words = len(r["description"].split())
    lo, hi = LENGTHS.get(r["length"], (0, 999))
    if not lo <= words <= hi: problems.append(f"{words} words for {r['length']} ({lo}-{hi})")
    text = r["description"].lower()
    for key, value in r["attributes"].items():
        items = value if isinstance(value, list) else [value]
        for item in items:
            item = str(item)
            if key.lower() in ("name",) or len(item) < 2:
                pass
            if item.lower() not in text:
                problems.append(f"attribute {key}={item!r} not stated verbatim")
    for m in BANNED.finditer(r["description"]):
        # allowed when the attributes say it
        if m.group(0).lower() not in json.dumps(r["attributes"]).lower():
            problems.append(f"banned/unsupported word {m.group(0)!r}")
    if re.search(r"(Price|Colour|Color|Material|Sizes?)\s*:", r["description"]):
        problems.append("template-style 'Key: value' in the prose")
    if problems:
        bad += 1
        print(f"line {n} {r.get('id')}: " + "; ".join(problems))
print(f"{n} lines, {bad} with problems")
