"""The finetune kind: params validated at the API (400 naming the field), and a few-step run on
the tiny model that registers an adapter, logs its curves and becomes nameable by requests."""

import json

import pytest

from generation.kinds.generate import GenerateParamsSerializer
from generation.models import JobMetric, ModelVersion
from generation.services.jobs import JobContext
from tests.factories import JobFactory

CHATS = [
    {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "We are sorry, your refund is on its way."}]}
    for q in ("where is my refund", "refund please", "my money back?", "refund status", "did you refund me", "refund?")
]


@pytest.fixture
def jsonl(tmp_path, settings):
    settings.GENAI_FINETUNE_DATA_DIRS = [str(tmp_path)]
    path = tmp_path / "approved.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in CHATS))
    return path


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"dataset_jsonl": "/etc/passwd"}, "dataset_jsonl"),
        ({"brand": "Acme"}, "brand"),
        ({"include_bitext": False}, "dataset_jsonl"),
        ({"rank": 1000}, "rank"),
        ({"max_steps": 0}, "max_steps"),
        ({"purpose": "poetry"}, "purpose"),
    ],
)
def test_bad_params_are_400_naming_the_field(api_for, no_broker, params, field):
    response = api_for("admin").post("/api/jobs/", {"kind": "finetune", "params": params}, format="json")
    assert response.status_code == 400, response.content
    assert field in json.dumps(response.json())
    assert not no_broker


def test_only_admins_fine_tune(api_for, no_broker, jsonl):
    params = {"dataset_jsonl": str(jsonl), "include_bitext": False}
    assert api_for("agent").post("/api/jobs/", {"kind": "finetune", "params": params}, format="json").status_code == 403
    created = api_for("admin").post("/api/jobs/", {"kind": "finetune", "params": params}, format="json")
    assert created.status_code == 201 and created.json()["queue"] == "train"


def test_a_few_steps_register_an_adapter_that_requests_can_name(db, jsonl, api_for):
    from workers.runners.finetune import finetune_run

    job = JobFactory(kind="finetune", status="running", worker_id="w1")
    ctx = JobContext(job_id=str(job.id), worker_id="w1", attempt=1, kind="finetune", deadline=1e18)
    params = {"purpose": "reply", "name": "refunds", "dataset_jsonl": str(jsonl), "include_bitext": False,
              "max_steps": 4, "epochs": 10, "batch_size": 2, "lr": 2e-2, "rank": 4, "alpha": 8, "eval_every": 2,
              "validation_fraction": 0.34, "max_validation": 2, "eval_replies": 0, "seed": 0, "max_tokens": 128}
    result = finetune_run(params=params, ctx=ctx)
    version = ModelVersion.objects.get(family="lm_adapter", name="refunds")
    metrics = version.metrics
    assert (version.purpose, version.training_job_id, result.model_version) == ("reply", job.id, "refunds@1")
    assert metrics["validation_loss_after"] < metrics["validation_loss_before"]
    assert metrics["train_examples"] == 4 and metrics["validation_examples"] == 2 and metrics["sources"] == {"jsonl": 6}
    assert metrics["examples_per_second"] > 0 and version.config["lora"]["rank"] == 4
    from django.conf import settings

    assert (settings.GENAI_MODEL_STORE_DIR / version.artifact_path / "adapter_model.safetensors").exists()
    points = JobMetric.objects.filter(job=job)
    assert points.filter(split="train").count() == 4 and points.filter(split="validation").count() >= 2
    assert "validation loss" in result.candidates[0].text

    # The adapter is a model a request may name; an unknown one is refused.
    for name in ("refunds", "refunds@1", "base"):
        assert GenerateParamsSerializer(data={"prompt": "hi", "model": name}).is_valid()
    bad = GenerateParamsSerializer(data={"prompt": "hi", "model": "refunds@2"})
    assert not bad.is_valid() and "refunds@2" in str(bad.errors["model"])
    listed = [m["id"] for m in api_for("agent").get("/v1/models").json()["data"]]
    assert listed[1:] == ["refunds", "refunds@1"]
