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
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

logger = logging.getLogger(__name__)

TEST_EVERY = 8  # copy_corpus's default: one product in 8 held back


def corpus_split(record_id: str) -> str:
    """``copy_corpus``'s split of a corpus record: "test" (held back) or "train"."""
    from generation.management.commands.copy_corpus import split_of

    return split_of(record_id, test_every=TEST_EVERY)


def tone_sentences(directory: Path | None = None, *, split: str = "train") -> tuple[list[str], list[str]]:
    """``(sentences, tones)``: the corpus's sentences that state at least one attribute, of the
    records in ``split`` ("train", "test" or "all")."""
    from generation.management.commands.copy_corpus import CORPUS_DIR
    from generation.text.copycheck import attribute_facts, facts_stated
    from generation.text.sentences import sentences_split

    texts, tones = [], []
    for path in sorted((directory or CORPUS_DIR).glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            if split != "all" and corpus_split(row["id"]) != split:
                continue
            facts = attribute_facts(row["attributes"])
            for sentence in sentences_split(row["description"]):
                if facts_stated(sentence, facts):
                    texts.append(sentence.strip())
                    tones.append(row["tone"])
    return texts, tones


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
        from workers.runtime.embeddings import embedder_get

        if not texts or tone not in self.tones:
            return [0.0] * len(texts)
        column = self.tones.index(tone)
        return [float(p) for p in self.probabilities(embedder_get().encode(list(texts)))[:, column]]


def tone_fit(texts: list[str], tones: list[str], vectors: np.ndarray, *, c: float = 1.0) -> ToneScorer:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=2000).fit(vectors, tones)
    return ToneScorer(tones=[str(t) for t in model.classes_], coef=model.coef_.astype(np.float32),
                      intercept=model.intercept_.astype(np.float32))


def _corpus_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.jsonl")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


_scorer: ToneScorer | None = None
_lock = threading.Lock()


def tone_scorer_get() -> ToneScorer:
    """The process's tone scorer: loaded from the cache, or fitted on the corpus and cached."""
    global _scorer
    with _lock:
        if _scorer is not None:
            return _scorer
        from generation.management.commands.copy_corpus import CORPUS_DIR
        from workers.runtime.embeddings import embedder_get

        embedder = embedder_get()
        encoder = re_safe(embedder.name)
        path = Path(settings.GENAI_MODEL_CACHE_DIR) / f"copy-tone-{_corpus_digest(CORPUS_DIR)}-{encoder}.npz"
        if path.is_file():
            with np.load(path) as saved:
                _scorer = ToneScorer(tones=[str(t) for t in saved["tones"]], coef=saved["coef"],
                                     intercept=saved["intercept"])
            return _scorer
        texts, tones = tone_sentences()
        _scorer = tone_fit(texts, tones, embedder.encode(texts))
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp.npz")
        np.savez(partial, tones=np.asarray(_scorer.tones), coef=_scorer.coef, intercept=_scorer.intercept)
        partial.replace(path)
        logger.info("copy tone scorer fitted on %d corpus sentences, cached in %s", len(texts), path)
        return _scorer


def re_safe(name: str) -> str:
    """A model name as a file-name part."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[-60:]
