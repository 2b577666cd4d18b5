"""Issue 18: the four VAE/GAN kinds through a real worker process, on the tiny pretrained-parts
VAE (MiniLM encoder, the tests' tiny SmolLM2-shaped decoder with LoRA) of the product domain."""

import pytest

from generation.models import JobStatus, ModelVersion
from tests.e2e.conftest import wait_final
from tests.genmodel_fixtures import tiny_optimus  # noqa: F401

pytestmark = [pytest.mark.e2e]


def test_variants_interpolate_sample_and_augment_through_a_real_worker(start_worker, api_for, tiny_optimus):  # noqa: F811
    import shutil
    import uuid

    from django.conf import settings

    # the worker reads the test settings' store: the tiny model's files go there, under a fresh path
    store, run = settings.GENAI_MODEL_STORE_DIR, f"e2e-{uuid.uuid4().hex[:8]}"
    shutil.copytree(tiny_optimus.directory / "vae" / "tiny-optimus" / "v1", store / "vae" / run)
    shutil.copytree(tiny_optimus.directory / "gan" / "tiny-optimus-gan" / "v1", store / "gan" / run)
    ModelVersion.objects.create(
        family="vae", name="tiny-optimus", version=1, purpose=settings.GENAI_GENMODEL_PURPOSE,
        artifact_path=f"vae/{run}", metrics=tiny_optimus.vae_metrics, is_default=True,
        config={"architecture": "optimus"},
    )
    ModelVersion.objects.create(
        family="gan", name="tiny-optimus-gan", version=1, purpose=settings.GENAI_GENMODEL_PURPOSE,
        artifact_path=f"gan/{run}", config={"vae": "tiny-optimus@1"}, metrics=tiny_optimus.gan_metrics,
    )
    worker = start_worker()
    marketer, analyst = api_for("marketer"), api_for("analyst")
    rows = [{"text": t, "label": "mug" if "mug" in t else "desk"} for t in tiny_optimus.corpus if "mug" in t or "desk" in t]
    requests = [
        (marketer, "variants", {"text": "This red jacket is warm and soft.", "k": 2, "seed": 1, "spread": 2.0,
                                "must_keep": ["jacket"], "attributes": {"category": "jacket", "colour": "red"}}),
        (marketer, "interpolate", {"text_a": "A red mug.", "text_b": "A quiet grey desk.", "steps": 3}),
        (marketer, "sample", {"n": 3, "seed": 2}),
        (analyst, "augment", {"rows": rows[:12], "per_class": 1}),
    ]
    jobs = {}
    for client, kind, params in requests:
        response = client.post("/api/jobs/", {"kind": kind, "params": params}, format="json")
        assert response.status_code == 201, response.content
        jobs[kind] = (client, response.json()["id"])
    for kind, (client, job_id) in jobs.items():
        job = wait_final(job_id, timeout=240, workers=[worker])
        if kind == "variants" and job.status == JobStatus.FAILED:
            # the tiny decoder may find no rewrite that keeps "jacket" and passes the checker: said so, by code
            assert job.error_code == "no_variants", job.error_message
            continue
        assert job.status == JobStatus.SUCCEEDED, (kind, job.error_code, job.error_message, worker.log_tail())
        assert job.model_version == "tiny-optimus@1+tiny-optimus-gan@1"
        candidates = client.get(f"/api/jobs/{job_id}").json()["candidates"]
        # the tiny decoder writes random words: one the safety filter flags is withheld (empty), as for any job
        assert candidates and all(c["text"] or c["withheld"] for c in candidates), (kind, candidates)
        if kind == "variants":
            assert all("jacket" in c["text"].lower() and "perplexity" in c["metadata"] for c in candidates)
        if kind == "interpolate":
            assert [c["metadata"]["t"] for c in candidates] == [0.0, 0.5, 1.0]
    worker.stop()
    for family in ("vae", "gan"):
        shutil.rmtree(store / family / run, ignore_errors=True)
