"""Which tone a sentence of product copy reads in: a logistic regression on sentence embeddings of
the team's copy corpus (``data/copy/corpus``), fitted on the sentences that state a fact, each
labelled with its text's tone; the held-back products (``copy_corpus``'s split) are left out.

The copy runner draws several sentences for a fact group and, for a tone other than neutral,
keeps the clean draw that reads most like that tone (``workers.runners.copy``). Fitting takes
about 15 s on 2 cores (encoding 1,500 sentences); the weights are cached under
``GENAI_MODEL_CACHE_DIR`` by the corpus's digest and the encoder's name, so a worker fits once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

logger = logging.getLogger(__name__)

def corpus_split(record_id: str) -> str:
    """``copy_corpus``'s split of a corpus record: "test" (held back) or "train"."""
    from generation.management.commands.copy_corpus import TEST_EVERY, split_of

    return split_of(record_id, test_every=TEST_EVERY)


def tone_sentences(directory: Path | None = None, *, split: str = "train") -> tuple[list[str], list[str]]:
    """``(sentences, tones)``: the corpus's sentences that state at least one attribute, of the
    records in ``split`` ("train", "test" or "all"). A sentence that a held-back record also
    writes ("Sizes are S, M and L.") is not a training sentence."""
    from generation.management.commands.copy_corpus import CORPUS_DIR
    from generation.text.copycheck import attribute_facts, facts_stated
    from generation.text.sentences import sentences_split

    stated: list[tuple[str, str, str]] = []  # (sentence, tone, split)
    for path in sorted((directory or CORPUS_DIR).glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            facts = attribute_facts(row["attributes"])
            record_split = corpus_split(row["id"])
            for sentence in sentences_split(row["description"]):
                if facts_stated(sentence, facts):
                    stated.append((sentence.strip(), row["tone"], record_split))
    held_back = {sentence for sentence, _, record_split in stated if record_split == "test"}
    chosen = [(sentence, tone) for sentence, tone, record_split in stated
              if split == "all" or (record_split == split and (split != "train" or sentence not in held_back))]
    return [sentence for sentence, _ in chosen], [tone for _, tone in chosen]


@dataclass
class ToneScorer:
    tones: list[str]
    coef: np.ndarray  # (tones, dim)
    intercept: np.ndarray  # (tones,)

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """``(len(vectors), len(tones))``: each row's tone distribution."""
        logits = vectors @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def score(self, texts: list[str], tone: str) -> list[float]:
        """The probability that each text reads in ``tone`` (0 for a tone the corpus lacks)."""
        from workers.runtime.embeddings import scorer_get

        if not texts or tone not in self.tones:
            return [0.0] * len(texts)
        column = self.tones.index(tone)
        return [float(p) for p in self.probabilities(scorer_get().encode(list(texts)))[:, column]]


def tone_fit(texts: list[str], tones: list[str], vectors: np.ndarray, *, c: float = 1.0) -> ToneScorer:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=2000).fit(vectors, tones)
    return ToneScorer(tones=[str(t) for t in model.classes_], coef=model.coef_.astype(np.float32),
                      intercept=model.intercept_.astype(np.float32))


def _cache_key(directory: Path, encoder: str) -> str:
    """What the cached weights depend on: the corpus files and the encoder."""
    digest = hashlib.sha256(encoder.encode())
    for path in sorted(directory.glob("*.jsonl")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


_scorer: tuple[str, ToneScorer] | None = None  # (the encoder's name, its scorer)
_lock = threading.Lock()


def tone_scorer_get() -> ToneScorer:
    """The process's tone scorer for the embedding model: loaded from the cache, or fitted on the
    corpus and cached."""
    global _scorer
    from workers.runtime.embeddings import scorer_get

    embedder = scorer_get()
    with _lock:
        if _scorer is not None and _scorer[0] == embedder.name:
            return _scorer[1]
        from generation.management.commands.copy_corpus import CORPUS_DIR

        path = Path(settings.GENAI_MODEL_CACHE_DIR) / f"copy-tone-{_cache_key(CORPUS_DIR, embedder.name)}.npz"
        if path.is_file():
            with np.load(path) as saved:
                scorer = ToneScorer(tones=[str(t) for t in saved["tones"]], coef=saved["coef"], intercept=saved["intercept"])
        else:
            texts, tones = tone_sentences()
            scorer = tone_fit(texts, tones, embedder.encode(texts))
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")  # workers may fit at once
            np.savez(partial, tones=np.asarray(scorer.tones), coef=scorer.coef, intercept=scorer.intercept)
            partial.replace(path)
            logger.info("copy tone scorer fitted on %d corpus sentences, cached in %s", len(texts), path)
        _scorer = (embedder.name, scorer)
        return scorer
