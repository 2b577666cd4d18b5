"""Trained model versions: registered by training jobs, promoted by people."""

import re
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from generation import roles
from generation.exceptions import Conflict, Forbidden, InvalidInput
from generation.models import JobMetric, ModelFamily, ModelVersion, ModelVersionStatus

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")


def model_version_artifact_dir(*, family: str, name: str, version: int) -> Path:
    """Where a training job writes the files of ``name@version`` (created on demand)."""
    path = Path(settings.GENAI_MODEL_STORE_DIR) / family / name / f"v{version}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_version_next_number(*, name: str) -> int:
    return (ModelVersion.objects.filter(name=name).aggregate(top=Max("version"))["top"] or 0) + 1


def model_version_register(
    *,
    family: str,
    name: str,
    artifact_path: str | Path,
    version: int | None = None,
    purpose: str = "",
    config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    base_model: str = "",
    training_job_id: Any = None,
    created_by: AbstractBaseUser | None = None,
    status: str = ModelVersionStatus.READY,
) -> ModelVersion:
    """Record a trained artefact. ``version`` defaults to the next number for ``name`` (pass the
    one used for ``model_version_artifact_dir``); ``artifact_path`` may be absolute under the
    store or relative to it."""
    if family not in ModelFamily.values:
        raise InvalidInput({"family": [f"Must be one of {', '.join(ModelFamily.values)}."]})
    if not _NAME.match(name):
        raise InvalidInput({"name": ["Lower-case letters, digits, '-' and '_', at most 100 characters."]})
    store = Path(settings.GENAI_MODEL_STORE_DIR)
    path = Path(artifact_path)
    if path.is_absolute():
        path = path.relative_to(store)
    for _ in range(3):  # two trainings of one name finishing together race for the number
        number = version or model_version_next_number(name=name)
        try:
            with transaction.atomic():
                return ModelVersion.objects.create(
                    family=family,
                    name=name,
                    version=number,
                    purpose=purpose,
                    status=status,
                    artifact_path=str(path),
                    base_model=base_model,
                    config=config or {},
                    metrics=metrics or {},
                    training_job_id=training_job_id,
                    created_by=created_by,
                )
        except IntegrityError:
            if version is not None:
                raise Conflict(f"{name}@{version} exists already.", field="version") from None
    raise Conflict(f"Could not allocate a version number for {name!r}.", field="name")


def model_version_promote(*, version: ModelVersion, user: AbstractBaseUser) -> ModelVersion:
    """Make ``version`` the default of its family and purpose, demoting the previous one."""
    if not roles.user_is_reviewer(user):
        raise Forbidden("Promoting a model version needs the reviewer or admin role.")
    if version.status != ModelVersionStatus.READY:
        raise Conflict(f"{version.label} is {version.status}; only ready versions can be promoted.", field="status")
    with transaction.atomic():
        ModelVersion.objects.select_for_update().filter(family=version.family, purpose=version.purpose).exclude(
            pk=version.pk
        ).filter(is_default=True).update(is_default=False)
        ModelVersion.objects.filter(pk=version.pk).update(
            is_default=True, promoted_by=user, promoted_at=timezone.now(), updated_at=timezone.now()
        )
    version.refresh_from_db()
    return version


def model_version_promote_if_better(
    *, version: ModelVersion, user: AbstractBaseUser, metric: str, split_keys: tuple[str, ...]
) -> tuple[bool, str]:
    """Promote ``version`` when its family and purpose have no promoted version yet, or when the
    promoted one was measured on the same split (equal ``config`` values of ``split_keys``: the
    same data, seed and fractions) and scores lower on ``metrics["validation"][metric]``. What a
    training job asked to "promote if better" does; returns (promoted, a sentence saying why)."""
    if not roles.user_is_reviewer(user):
        return False, "not promoted: the job's owner has neither the reviewer nor the admin role"
    current = ModelVersion.objects.filter(
        family=version.family, purpose=version.purpose, is_default=True, status=ModelVersionStatus.READY
    ).exclude(pk=version.pk).first()
    mine = (version.metrics or {}).get("validation", {}).get(metric)
    if mine is None:
        return False, f"not promoted: no validation {metric}"
    if current is None:
        model_version_promote(version=version, user=user)
        return True, "promoted: no version was promoted before"
    theirs = (current.metrics or {}).get("validation", {}).get(metric)
    differs = [key for key in split_keys if (current.config or {}).get(key) != (version.config or {}).get(key)]
    if theirs is None or differs:
        why = f"{', '.join(differs)} {'differs' if len(differs) == 1 else 'differ'}" if differs else f"it has no validation {metric}"
        return False, f"not promoted: {current.label} is not comparable ({why})"
    if mine <= theirs:
        return False, f"not promoted: validation {metric} {mine:.4f} does not beat {current.label}'s {theirs:.4f}"
    model_version_promote(version=version, user=user)
    return True, f"promoted: validation {metric} {mine:.4f} beats {current.label}'s {theirs:.4f}"


def model_version_archive(*, version: ModelVersion, user: AbstractBaseUser) -> ModelVersion:
    if not roles.user_is_reviewer(user):
        raise Forbidden("Archiving a model version needs the reviewer or admin role.")
    ModelVersion.objects.filter(pk=version.pk).update(
        status=ModelVersionStatus.ARCHIVED, is_default=False, updated_at=timezone.now()
    )
    version.refresh_from_db()
    return version


def job_metric_log(*, job_id: Any, step: int, split: str = "train", values: dict[str, float]) -> None:
    """Append a point to a training job's curves (bounded per job by GENAI_METRIC_POINTS_MAX)."""
    if JobMetric.objects.filter(job_id=job_id).count() >= settings.GENAI_METRIC_POINTS_MAX:
        return
    clean = {str(k): float(v) for k, v in values.items() if v is not None}
    JobMetric.objects.create(job_id=job_id, step=max(int(step), 0), split=split[:16], values=clean)


def _vae_install_shipped(*, directory: Path, user: AbstractBaseUser) -> ModelVersion:
    """A shipped sentence VAE (``vae.pt``) and its GAN (``gan.pt``, when shipped): both versions
    registered, the VAE promoted when its purpose has no promoted VAE yet; idempotent by the
    checkpoint's digest."""
    import hashlib
    import json
    import shutil

    digest = hashlib.sha256((directory / "vae.pt").read_bytes()).hexdigest()[:16]
    existing = ModelVersion.objects.filter(family=ModelFamily.VAE, config__shipped_sha=digest).first()
    if existing is not None:
        return existing
    training = json.loads((directory / "training.json").read_text())
    name, purpose = directory.name, training["params"]["purpose"]
    version = model_version_next_number(name=name)
    target = model_version_artifact_dir(family=ModelFamily.VAE, name=name, version=version)
    shutil.copy2(directory / "vae.pt", target / "vae.pt")
    registered = model_version_register(
        family=ModelFamily.VAE, name=name, version=version, purpose=purpose, artifact_path=target,
        config={**training.get("config", {}), "shipped_from": str(directory), "shipped_sha": digest},
        metrics=training.get("metrics", {}), created_by=user,
    )
    gan = training.get("gan")
    if gan and (directory / "gan.pt").is_file():
        gan_name = f"{name}-gan"
        gan_number = model_version_next_number(name=gan_name)
        gan_dir = model_version_artifact_dir(family=ModelFamily.GAN, name=gan_name, version=gan_number)
        shutil.copy2(directory / "gan.pt", gan_dir / "gan.pt")
        model_version_register(
            family=ModelFamily.GAN, name=gan_name, version=gan_number, purpose=purpose, artifact_path=gan_dir,
            config={**gan.get("config", {}), "vae": registered.label}, metrics=gan.get("metrics", {}),
            base_model=registered.label, created_by=user,
        )
    if not ModelVersion.objects.filter(family=ModelFamily.VAE, purpose=purpose, is_default=True).exists():
        registered = model_version_promote(version=registered, user=user)
    return registered


def model_version_install_shipped(*, directory: Path, user: AbstractBaseUser) -> ModelVersion | None:
    """Register a model version the repository ships (``models/<name>/``: a LoRA adapter with the
    ``training.json`` of the run that made it) by copying its files into the model store; the
    first version of its purpose is promoted. Installing the same files again returns the version
    they made the first time. None when ``directory`` holds no shipped adapter."""
    import hashlib
    import json
    import shutil

    weights, manifest = directory / "adapter_model.safetensors", directory / "training.json"
    if (directory / "vae.pt").is_file() and manifest.is_file():
        return _vae_install_shipped(directory=directory, user=user)
    if not weights.is_file() or not manifest.is_file():
        return None
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    existing = ModelVersion.objects.filter(family=ModelFamily.LM_ADAPTER, config__shipped_sha=digest).first()
    if existing is not None:
        return existing
    training = json.loads(manifest.read_text())
    name, purpose = directory.name, training["params"]["purpose"]
    version = model_version_next_number(name=name)
    target = model_version_artifact_dir(family=ModelFamily.LM_ADAPTER, name=name, version=version)
    for path in directory.iterdir():
        if path.is_file():
            shutil.copy2(path, target / path.name)
    registered = model_version_register(
        family=ModelFamily.LM_ADAPTER,
        name=name,
        version=version,
        purpose=purpose,
        artifact_path=target,
        base_model=training.get("base_model", ""),
        config={"lora": training["metrics"].get("config", {}), "shipped_from": str(directory), "shipped_sha": digest},
        metrics={k: v for k, v in training["metrics"].items() if k != "config"},
        created_by=user,
    )
    if not ModelVersion.objects.filter(family=ModelFamily.LM_ADAPTER, purpose=purpose, is_default=True).exists():
        registered = model_version_promote(version=registered, user=user)
    return registered
