"""The VAE/GAN job kinds (genmodel_train, variants, interpolate, sample, augment): created through
the API, validated there (bad input is a 400 naming the field), and run through the pipeline in
this process (job_run), as a worker would."""

import pytest
from django.conf import settings

from generation.models import JobMetric, JobStatus, ModelVersion
from tests.genmodel_fixtures import genmodel, product_corpus, tiny_genmodel  # noqa: F401
from workers.runners import job_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small models: one thread is faster


def create(client, kind, params):
    return client.post("/api/jobs/", {"kind": kind, "params": params}, format="json")


def run(job_id):
    from generation.models import Job

    assert job_run(job_id=str(job_id), worker_id="w1") in ("succeeded", "failed")
    return Job.objects.get(pk=job_id)


def test_variants_through_the_pipeline(api_for, genmodel, no_broker):  # noqa: F811
    client = api_for("marketer")
    response = create(client, "variants", {"text": "This red jacket is warm and soft.", "k": 3, "seed": 1, "model": "tiny"})
    assert response.status_code == 201, response.json()
    job = run(response.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    candidates = list(job.candidates.order_by("index"))
    assert 1 <= len(candidates) <= 3 and job.model_version == "tiny@1+tiny-gan@1"
    assert all(c.text and {"realism", "novelty"} <= set(c.metadata) for c in candidates)
    assert [c.score for c in candidates] == sorted((c.score for c in candidates), reverse=True)


def test_variants_whose_must_keep_word_no_candidate_keeps_fail_with_a_code(api_for, genmodel, no_broker):  # noqa: F811
    response = create(api_for("marketer"), "variants", {"text": "A zebra jacket.", "k": 2, "must_keep": ["zebra"], "seed": 0})
    job = run(response.json()["id"])
    assert (job.status, job.error_code) == (JobStatus.FAILED, "no_variants")
    assert "zebra" in job.error_message


def test_interpolate_sample_and_augment_through_the_pipeline(api_for, genmodel, tiny_genmodel, no_broker):  # noqa: F811
    client = api_for("marketer")
    interpolate = create(client, "interpolate", {"text_a": "A red mug.", "text_b": "A quiet grey desk.", "steps": 4})
    gan = create(client, "sample", {"n": 5, "seed": 2})
    prior = create(client, "sample", {"n": 3, "source": "prior", "decoding": "beam", "seed": 2})
    rows = [{"text": t, "label": "mug" if "mug" in t else "desk"} for t in tiny_genmodel.corpus if "mug" in t or "desk" in t]
    augment = create(api_for("analyst"), "augment", {"rows": rows[:30], "per_class": 2})
    for response in (interpolate, gan, prior, augment):
        assert response.status_code == 201, response.json()

    job = run(interpolate.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert [c.metadata["t"] for c in job.candidates.order_by("index")] == [0.0, 0.3333, 0.6667, 1.0]

    job = run(gan.json()["id"])
    assert job.status == JobStatus.SUCCEEDED and job.candidates.count() == 5
    assert all(c.score is not None for c in job.candidates.all())  # the critic's realism
    assert run(prior.json()["id"]).candidates.count() == 3

    job = run(augment.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    labels = [c.metadata["label"] for c in job.candidates.all()]
    assert set(labels) <= {"mug", "desk"} and labels and all(labels.count(lab) <= 2 for lab in set(labels))
    assert job.usage["input_rows"] == len(rows[:30])


def test_augment_from_an_uploaded_csv(api_for, genmodel, no_broker):  # noqa: F811
    content = "review,stars\nA red mug for travel.,good\nA warm black scarf.,good\nA quiet grey desk.,bad\nA soft lamp.,bad\n"
    response = create(api_for("analyst"), "augment", {"csv_content": content, "text_col": "review", "label_col": "stars", "per_class": 1})
    assert response.status_code == 201, response.json()
    job = run(response.json()["id"])
    assert job.status == JobStatus.SUCCEEDED and {c.metadata["label"] for c in job.candidates.all()} <= {"good", "bad"}


def test_genmodel_train_through_the_pipeline_registers_vae_and_gan(api_for, settings, tmp_path, no_broker):
    settings.GENAI_MODEL_STORE_DIR = tmp_path
    params = {
        "name": "shop-copy", "texts": product_corpus(60), "max_steps": 12, "eval_every": 6, "gan_steps": 6,
        "hidden_dim": 16, "embed_dim": 16, "latent_dim": 4, "vocab_size": 400, "batch_size": 16, "n_critic": 2,
    }
    response = create(api_for("marketer"), "genmodel_train", params)
    assert response.status_code == 201, response.json()
    job = run(response.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    vae = ModelVersion.objects.get(family="vae", name="shop-copy")
    gan = ModelVersion.objects.get(family="gan", name="shop-copy-gan")
    assert (vae.version, gan.config["vae"], vae.training_job_id, vae.status) == (1, "shop-copy@1", job.id, "ready")
    assert gan.config["diversity_weight"] == settings.GENAI_GENMODEL_GAN_DIVERSITY_WEIGHT > 0
    assert (tmp_path / vae.artifact_path / "vae.pt").is_file() and (tmp_path / gan.artifact_path / "gan.pt").is_file()
    assert vae.metrics["validation"]["latent_dim"] == 4 and "recon_bleu" in vae.metrics["validation"]
    assert vae.config["slots"] is False  # inline texts name no product as a slot
    candidate = job.candidates.get()
    assert "shop-copy@1" in candidate.text and candidate.metadata["gan_version"] == "shop-copy-gan@1"
    assert candidate.metadata["vae"]["steps"] == 12 and candidate.metadata["gan"]["steps"] == 6
    splits = set(JobMetric.objects.filter(job=job).values_list("split", flat=True))
    assert splits == {"train", "validation", "gan"}
    gan_point = JobMetric.objects.filter(job=job, split="gan").first()
    assert {"critic", "generator", "gradient_penalty"} <= set(gan_point.values)
    # the new model serves the other kinds at once
    response = create(api_for("marketer"), "sample", {"n": 2, "model": "shop-copy", "seed": 0})
    assert response.status_code == 201 and run(response.json()["id"]).status == JobStatus.SUCCEEDED

    # a new GAN for the same VAE, with the mode-seeking term, from the same corpus
    response = create(api_for("marketer"), "genmodel_train", {
        "gan_only_for": "shop-copy", "texts": product_corpus(60), "gan_steps": 4, "n_critic": 2, "gan_diversity_weight": 0.5})
    assert response.status_code == 201, response.json()
    job = run(response.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    gan2 = ModelVersion.objects.get(family="gan", name="shop-copy-gan", version=2)
    assert (gan2.config["vae"], gan2.config["diversity_weight"], gan2.metrics["steps"]) == ("shop-copy@1", 0.5, 4)
    assert ModelVersion.objects.filter(family="vae").count() == 1 and "shop-copy-gan@2" in job.candidates.get().text


@pytest.mark.parametrize(
    "kind, params, field",
    [
        ("variants", {"text": ""}, "text"),
        ("variants", {"text": "   "}, "text"),
        ("variants", {"text": "a red mug", "k": 0}, "k"),
        ("variants", {"text": "a red mug", "k": settings.GENAI_GENMODEL_MAX_VARIANTS + 1}, "k"),
        ("variants", {"text": "a red mug", "model": "no-such-model"}, "model"),
        ("variants", {"text": "a red mug", "model": "tiny@7"}, "model"),
        ("variants", {"text": "a red mug", "must_keep": ["lamp"]}, "must_keep"),
        ("variants", {"text": "x" * (settings.GENAI_GENMODEL_MAX_TEXT_CHARS + 1)}, "text"),
        ("interpolate", {"text_a": "a red mug", "text_b": ""}, "text_b"),
        ("interpolate", {"text_a": "a", "text_b": "b", "steps": 1}, "steps"),
        ("sample", {"n": 0}, "n"),
        ("sample", {"n": settings.GENAI_GENMODEL_MAX_SAMPLES + 1}, "n"),
        ("sample", {"source": "diffusion"}, "source"),
        ("sample", {"model": "unknown"}, "model"),
        ("augment", {}, "csv"),
        ("augment", {"csv": "/etc/passwd"}, "csv"),
        ("augment", {"rows": [{"text": "a", "label": "x"}], "per_class": 0}, "per_class"),
        ("augment", {"csv_content": "body,label\nhi,x\n"}, "csv_content"),
        ("genmodel_train", {"csv": "/etc/hosts"}, "csv"),
        ("genmodel_train", {"texts": ["too", "few"]}, "texts"),
        ("genmodel_train", {"name": "Not A Slug!"}, "name"),
        ("genmodel_train", {"latent_dim": 1}, "latent_dim"),
        ("genmodel_train", {"kl_schedule": "sigmoid"}, "kl_schedule"),
        ("genmodel_train", {"memory": "sometimes"}, "memory"),
        ("genmodel_train", {"free_bits": 6}, "free_bits"),
        ("genmodel_train", {"gan_only_for": "no-such-vae"}, "gan_only_for"),
        ("genmodel_train", {"gan_diversity_weight": -1}, "gan_diversity_weight"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api_for, genmodel, no_broker, kind, params, field):  # noqa: F811
    client = api_for("admin")
    response = create(client, kind, params)
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]["params"], response.json()


@pytest.mark.django_db
def test_without_any_trained_model_inference_kinds_are_a_400(api_for, no_broker):
    client = api_for("admin")
    for kind, params in (
        ("variants", {"text": "a red mug"}),
        ("sample", {"n": 2}),
        ("augment", {"rows": [{"text": "a red mug", "label": "x"}]}),
    ):
        response = create(client, kind, params)
        assert response.status_code == 400
        assert "genmodel_train" in str(response.json()["errors"]["params"]), response.json()


def test_sample_from_gan_needs_a_gan(api_for, genmodel, no_broker):  # noqa: F811
    ModelVersion.objects.filter(family="gan").delete()
    client = api_for("marketer")
    response = create(client, "sample", {"n": 2})
    assert response.status_code == 400 and "source=prior" in str(response.json()["errors"]["params"]["model"])
    assert create(client, "sample", {"n": 2, "source": "prior"}).status_code == 201


def test_roles(api_for, genmodel, no_broker):  # noqa: F811
    assert create(api_for("agent"), "genmodel_train", {}).status_code == 403
    assert create(api_for("analyst"), "variants", {"text": "a red mug"}).status_code == 403
    assert create(api_for("agent"), "variants", {"text": "a red mug"}).status_code == 201
