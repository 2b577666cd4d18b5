import pytest

from generation import roles, selectors
from generation.exceptions import Conflict, Forbidden, InvalidInput
from generation.models import JobMetric, ModelVersionStatus
from generation.services.jobs import JobContext
from generation.services.model_versions import (
    model_version_archive,
    model_version_artifact_dir,
    model_version_promote,
    model_version_promote_if_better,
    model_version_register,
)
from tests.factories import JobFactory, ModelVersionFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_register_numbers_versions_per_name_and_keeps_the_path_relative(settings, tmp_path):
    settings.GENAI_MODEL_STORE_DIR = tmp_path
    first = model_version_register(family="vae", name="copy-vae", artifact_path=tmp_path / "vae" / "a")
    second = model_version_register(family="vae", name="copy-vae", artifact_path="vae/b", metrics={"elbo": -3.2})
    assert (first.version, second.version) == (1, 2)
    assert first.artifact_path == "vae/a"
    assert second.metrics == {"elbo": -3.2}
    with pytest.raises(Conflict):
        model_version_register(family="vae", name="copy-vae", version=2, artifact_path="x")


def test_register_rejects_an_unknown_family_or_bad_name():
    with pytest.raises(InvalidInput) as exc:
        model_version_register(family="nope", name="x", artifact_path="x")
    assert "family" in exc.value.errors
    with pytest.raises(InvalidInput) as exc:
        model_version_register(family="vae", name="Bad Name", artifact_path="x")
    assert "name" in exc.value.errors


def test_artifact_dir_is_under_the_store(settings, tmp_path):
    settings.GENAI_MODEL_STORE_DIR = tmp_path
    path = model_version_artifact_dir(family="gan", name="g", version=3)
    assert path == tmp_path / "gan" / "g" / "v3" and path.is_dir()


def test_promote_keeps_one_default_per_family_and_purpose():
    reviewer = UserFactory(role=roles.REVIEWER)
    old = ModelVersionFactory(name="support", version=1, is_default=True)
    new = ModelVersionFactory(name="support", version=2)
    other_purpose = ModelVersionFactory(name="copy", purpose="copy", is_default=True)
    model_version_promote(version=new, user=reviewer)
    old.refresh_from_db(), new.refresh_from_db(), other_purpose.refresh_from_db()
    assert (old.is_default, new.is_default, other_purpose.is_default) == (False, True, True)
    assert new.promoted_by == reviewer and new.promoted_at is not None


def test_promote_needs_a_reviewer_and_a_ready_version():
    version = ModelVersionFactory()
    with pytest.raises(Forbidden):
        model_version_promote(version=version, user=UserFactory(role=roles.AGENT))
    admin = UserFactory(role=roles.ADMIN)
    model_version_archive(version=version, user=admin)
    assert version.status == ModelVersionStatus.ARCHIVED
    with pytest.raises(Conflict):
        model_version_promote(version=version, user=admin)


def test_a_training_promotes_its_version_only_over_a_worse_one_measured_on_the_same_split():
    admin = UserFactory(role=roles.ADMIN)
    split = {"csv": "tweets.csv", "seed": 0, "test_fraction": 0.15}
    keys = ("csv", "seed", "test_fraction")

    def classifier(name: str, macro_f1: float, **config) -> object:
        return ModelVersionFactory(family="sentiment", purpose="sentiment", name=name,
                                   config={**split, **config}, metrics={"validation": {"macro_f1": macro_f1}})

    quick = classifier("finsent", 0.80)
    assert model_version_promote_if_better(version=quick, user=admin, metric="macro_f1", split_keys=keys) == (
        True, "promoted: no version was promoted before")
    worse = classifier("worse", 0.79)
    promoted, why = model_version_promote_if_better(version=worse, user=admin, metric="macro_f1", split_keys=keys)
    assert not promoted and "0.7900 does not beat finsent@1's 0.8000" in why
    other_split = classifier("other", 0.95, seed=1)
    promoted, why = model_version_promote_if_better(version=other_split, user=admin, metric="macro_f1", split_keys=keys)
    assert not promoted and "not comparable (seed differs" in why
    agents_model = classifier("agents", 0.90)
    promoted, why = model_version_promote_if_better(
        version=agents_model, user=UserFactory(role=roles.AGENT), metric="macro_f1", split_keys=keys)
    assert not promoted and "reviewer" in why
    better = classifier("finsent-mpnet", 0.85)
    assert model_version_promote_if_better(version=better, user=admin, metric="macro_f1", split_keys=keys)[0]
    assert selectors.sentiment_model_resolve().label == "finsent-mpnet@1"


def test_resolve_by_name_exact_version_default_and_newest():
    ModelVersionFactory(name="support", version=1)
    promoted = ModelVersionFactory(name="support", version=2, is_default=True)
    newest = ModelVersionFactory(name="support", version=3)
    ModelVersionFactory(name="support", version=4, status=ModelVersionStatus.FAILED)
    assert selectors.model_version_resolve(family="lm_adapter", name="support") == promoted
    assert selectors.model_version_resolve(family="lm_adapter", name="support@3") == newest
    assert selectors.model_version_resolve(family="lm_adapter", name="support@4") is None  # failed
    assert selectors.model_version_resolve(family="lm_adapter", name="support@x") is None
    assert selectors.model_version_resolve(family="lm_adapter", purpose="reply") == promoted
    assert selectors.model_version_resolve(family="lm_adapter", purpose="copy") is None
    assert selectors.model_version_resolve(family="vae", name="support") is None


def test_metrics_log_records_curve_points_up_to_the_limit(settings):
    settings.GENAI_METRIC_POINTS_MAX = 3
    job = JobFactory()
    ctx = JobContext(job_id=str(job.pk), worker_id="w", attempt=1, kind="echo", deadline=1e18)
    for step in range(5):
        ctx.metrics_log(step, loss=2.0 - step * 0.1, kl=None)
    ctx.metrics_log(9, split="validation", loss=1.5)
    points = list(JobMetric.objects.filter(job=job).order_by("id"))
    assert [p.step for p in points] == [0, 1, 2]
    assert points[1].values == {"loss": pytest.approx(1.9)}


def test_a_shipped_adapter_is_installed_once_and_promoted_when_its_purpose_has_none(tmp_path, settings):
    import json

    from generation.services.model_versions import model_version_install_shipped
    from tests.factories import UserFactory

    settings.GENAI_MODEL_STORE_DIR = tmp_path / "store"
    shipped = tmp_path / "models" / "copy-lora"
    shipped.mkdir(parents=True)
    (shipped / "adapter_model.safetensors").write_bytes(b"weights")
    (shipped / "adapter_config.json").write_text("{}")
    (shipped / "training.json").write_text(json.dumps(
        {"params": {"purpose": "copy"}, "base_model": "SmolLM2", "metrics": {"validation_loss_after": 1.1, "config": {"r": 8}}}
    ))
    admin = UserFactory(role="admin")
    first = model_version_install_shipped(directory=shipped, user=admin)
    assert (first.family, first.name, first.purpose, first.is_default) == ("lm_adapter", "copy-lora", "copy", True)
    assert first.metrics["validation_loss_after"] == 1.1
    assert (settings.GENAI_MODEL_STORE_DIR / first.artifact_path / "adapter_model.safetensors").read_bytes() == b"weights"
    assert model_version_install_shipped(directory=shipped, user=admin).pk == first.pk  # the same files: no new version
    assert model_version_install_shipped(directory=tmp_path / "models" / "nothing", user=admin) is None


def test_a_shipped_sentence_vae_is_installed_with_its_gan_once_and_serves_its_domain(tmp_path, settings):
    import json

    from generation.kinds.variants import genmodel_versions_resolve
    from generation.services.model_versions import model_version_install_shipped
    from tests.factories import UserFactory

    settings.GENAI_MODEL_STORE_DIR = tmp_path / "store"
    shipped = tmp_path / "models" / "product-vae"
    shipped.mkdir(parents=True)
    (shipped / "vae.pt").write_bytes(b"vae")
    (shipped / "gan.pt").write_bytes(b"gan")
    (shipped / "training.json").write_text(json.dumps({
        "family": "vae", "params": {"purpose": "copy"}, "config": {"architecture": "optimus"}, "metrics": {"steps": 9},
        "gan": {"trained_as": "product-vae-gan@1", "config": {"vae": "product-vae@1"}, "metrics": {"steps": 5}},
    }))
    admin = UserFactory(role="admin")
    vae = model_version_install_shipped(directory=shipped, user=admin)
    assert (vae.family, vae.label, vae.purpose, vae.is_default) == ("vae", "product-vae@1", "copy", True)
    assert vae.config["architecture"] == "optimus" and vae.metrics["steps"] == 9
    resolved, gan = genmodel_versions_resolve(domain="product")
    assert resolved.pk == vae.pk and gan.label == "product-vae-gan@1" and gan.config["vae"] == "product-vae@1"
    assert (settings.GENAI_MODEL_STORE_DIR / gan.artifact_path / "gan.pt").read_bytes() == b"gan"
    assert model_version_install_shipped(directory=shipped, user=admin).pk == vae.pk
    assert genmodel_versions_resolve(domain="support") == (None, None)
