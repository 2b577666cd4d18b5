"""The sentiment classifier: a few training steps through the sentiment_train job improve
validation accuracy and register a model version; scoring jobs and the commands use it."""

import csv
import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from genai_site.celery import app as celery_app
from generation.exceptions import InvalidInput
from generation.models import Job, JobMetric
from generation.services.jobs import job_create
from monitoring.models import Alert, NewsItem, SentimentScore
from monitoring.services.news import news_ingest
from tests.factories import UserFactory
from tests.monitoring.factories import AlertRuleFactory
from workers.runners import job_run

pytestmark = pytest.mark.django_db

NEWS = [
    ("Shares plunge after the company slashes its profit forecast and warns of layoffs", "negative"),
    ("Regulators open a fraud probe into the lender; stock tumbles 20%", "negative"),
    ("The board will hold its annual meeting on Thursday", "neutral"),
    ("Profit jumps 40% as record sales beat estimates; shares surge", "positive"),
]


def test_a_few_training_steps_improve_validation_accuracy(trained_classifier):
    metrics = trained_classifier.candidate.metadata
    history = metrics["history"]
    assert history[0]["step"] == 0  # the untrained model with its new head
    best = max(h["accuracy"] for h in history[1:])
    assert best >= history[0]["accuracy"] + 0.15, history
    assert metrics["validation"]["accuracy"] == best
    version = trained_classifier.version
    assert (version.family, version.purpose, version.name, version.status) == ("sentiment", "sentiment", "test-finsent", "ready")
    assert version.metrics["validation"]["n"] == 36 and set(version.metrics["validation"]["per_class"]) == {"negative", "neutral", "positive"}
    splits = set(JobMetric.objects.filter(job=trained_classifier.job).values_list("split", flat=True))
    assert {"train", "validation"} <= splits
    assert "validation accuracy" in trained_classifier.candidate.text


def test_seeds_train_several_runs_and_pool_them(small_training_csv, no_broker, make_user):
    job, _ = job_create(
        owner=make_user("analyst"), kind="sentiment_train",
        params={"csv": str(small_training_csv), "seeds": 2, "max_steps": 4, "batch_size": 16, "head_lr": 2e-2, "train_layers": 0,
                "evals_per_epoch": 1, "test_fraction": 0.0, "validation_fraction": 0.2, "name": "test-seeds", "max_len": 48,
                "evaluate_initial": False},
    )
    assert job_run(job_id=str(job.id), worker_id="test-worker") == "succeeded"
    metrics = job.candidates.get().metadata
    assert metrics["options"]["seeds"] == 2 and {h["run"] for h in metrics["history"]} == {0, 1}
    assert metrics["validation_ensemble"]["n"] == 36  # the two runs' best checkpoints, averaged
    splits = set(JobMetric.objects.filter(job=job).values_list("split", flat=True))
    assert {"validation_seed0", "validation_seed1"} <= splits


def test_a_training_asked_to_promote_if_better_replaces_only_a_worse_classifier(small_training_csv, no_broker, make_user):
    from generation.selectors import sentiment_model_resolve

    admin = make_user("admin")
    common = {"csv": str(small_training_csv), "batch_size": 16, "train_layers": 0, "evals_per_epoch": 1,
              "test_fraction": 0.0, "validation_fraction": 0.2, "max_len": 48, "promote_if_better": True}
    summaries = []
    for name, params in (("test-good", {"max_steps": 6, "head_lr": 2e-2}),
                         ("test-untrained", {"max_steps": 1, "head_lr": 1e-7, "evaluate_initial": False})):
        job, _ = job_create(owner=admin, kind="sentiment_train", params={**common, **params, "name": name})
        assert job_run(job_id=str(job.id), worker_id="test-worker") == "succeeded"
        summaries.append(job.candidates.get().text)

    assert "promoted: no version was promoted before" in summaries[0]
    assert "not promoted: validation macro_f1" in summaries[1] and "does not beat test-good@1" in summaries[1]
    assert sentiment_model_resolve().label == "test-good@1"  # the newer, worse one does not score


def test_extra_training_rows_join_the_training_split_only(small_training_csv, no_broker, make_user, settings, tmp_path):
    settings.GENAI_SENTIMENT_DATA_DIRS = [str(small_training_csv.parent), str(tmp_path)]
    extra = tmp_path / "news.csv"
    extra.write_text("text,label\n" + "".join(
        f"Operating profit rose to EUR {n + 5} mn from EUR {n} mn.,positive\n"
        f"Operating profit fell to EUR {n} mn from EUR {n + 5} mn.,negative\n" for n in range(10)))
    params = {"csv": str(small_training_csv), "batch_size": 16, "train_layers": 0, "max_steps": 2, "evals_per_epoch": 1,
              "test_fraction": 0.1, "validation_fraction": 0.2, "max_len": 48, "name": "test-extra"}
    plain, _ = job_create(owner=make_user("analyst"), kind="sentiment_train", params=params)
    more, _ = job_create(owner=make_user("analyst"), kind="sentiment_train",
                         params={**params, "extra_train_csv": str(extra)})
    for job in (plain, more):
        assert job_run(job_id=str(job.id), worker_id="test-worker") == "succeeded"
    plain_rows, more_rows = (job.candidates.get().metadata["rows"] for job in (plain, more))
    assert more_rows == {**plain_rows, "train": plain_rows["train"] + 20, "extra_train": 20}

    with pytest.raises(InvalidInput) as refused:  # a file outside GENAI_SENTIMENT_DATA_DIRS, named by its field
        job_create(owner=make_user("analyst"), kind="sentiment_train", params={**params, "extra_train_csv": "/etc/hosts"})
    assert "extra_train_csv" in str(refused.value.errors)


def test_an_option_is_reported_against_plain_training_on_both_splits(small_training_csv, no_broker, make_user):
    job, _ = job_create(
        owner=make_user("analyst"), kind="sentiment_train",
        params={"csv": str(small_training_csv), "adversarial": True, "max_steps": 2, "batch_size": 16, "evals_per_epoch": 1,
                "test_fraction": 0.2, "validation_fraction": 0.2, "name": "test-fgm", "max_len": 32, "evaluate_initial": False},
    )
    assert job_run(job_id=str(job.id), worker_id="test-worker") == "succeeded"
    candidate = job.candidates.get()
    metrics = candidate.metadata
    assert metrics["options"]["adversarial"] is True
    assert metrics["validation_plain"]["n"] == metrics["validation"]["n"] > 0
    assert metrics["test_plain"]["n"] == metrics["test"]["n"] > 0  # the same held-out rows for both
    assert "plain training: validation macro-F1" in candidate.text and "held-out" in candidate.text
    splits = set(JobMetric.objects.filter(job=job).values_list("split", flat=True))
    assert {"validation_plain", "validation"} <= splits


def test_scoring_job_scores_new_items_in_batches_then_evaluates_rules(
    trained_classifier, no_broker, django_capture_on_commit_callbacks, monkeypatch
):
    rule = AlertRuleFactory(entity="", aggregate=True, condition="mean_score", threshold=0.99, min_count=2)
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        report = news_ingest(items=[{"source": "wire", "text": t, "published_at": now - timedelta(minutes=3)} for t, _ in NEWS])
    job = Job.objects.get(pk=report.score_job_id)
    assert (job.kind, job.queue) == ("sentiment_score", "cpu")
    job.params = {**job.params, "batch_size": 3}
    job.save(update_fields=["params"])
    # The rule evaluation the scoring queues after commit runs here as a cpu worker would run it.
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    with django_capture_on_commit_callbacks(execute=True):
        assert job_run(job_id=str(job.id), worker_id="test-worker") == "succeeded"
    job.refresh_from_db()
    assert job.usage["items"] == 4 and job.model_version == trained_classifier.version.label
    for item in NewsItem.objects.all():
        score = SentimentScore.objects.get(item=item)
        assert abs(sum(score.probabilities.values()) - 1.0) < 1e-3
        assert score.score == pytest.approx(score.p_positive - score.p_negative, abs=1e-5)
        assert (item.sentiment_label, item.scored_version) == (score.label, trained_classifier.version.label)
    assert Alert.objects.filter(rule=rule, entity="*").exists()  # mean score <= 0.99: the rules ran after scoring

    # A second job finds nothing left to score.
    again, _ = job_create(owner=UserFactory(role="analyst"), kind="sentiment_score", params={})
    assert job_run(job_id=str(again.id), worker_id="test-worker") == "succeeded"
    assert Job.objects.get(pk=again.pk).usage["items"] == 0


def test_evaluate_and_score_commands_take_any_csv(trained_classifier, tmp_path):
    path = tmp_path / "news.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence", "gold"])
        writer.writerows([(t, {"negative": "bad", "neutral": "meh", "positive": "good"}[label]) for t, label in NEWS])
    out = StringIO()
    call_command("sentiment_evaluate", csv=path, text_col="sentence", label_col="gold", label_map="bad=negative,meh=neutral,good=positive", stdout=out)
    report = json.loads(out.getvalue())
    assert report["n"] == 4 and 0.0 <= report["accuracy"] <= 1.0
    assert len(report["confusion_matrix"]) == 3 and sum(map(sum, report["confusion_matrix"])) == 4
    assert set(report["per_class"]["negative"]) >= {"precision", "recall"}
    with pytest.raises(CommandError, match="label"):
        call_command("sentiment_evaluate", csv=path, text_col="sentence", label_col="gold", label_map="0=negative", stdout=StringIO())

    scored = tmp_path / "scored.csv"
    call_command("sentiment_score", input=path, out=scored, text_col="sentence", stderr=StringIO())
    rows = list(csv.DictReader(open(scored)))
    assert len(rows) == 4 and rows[0]["sentence"] == NEWS[0][0]
    assert {r["label"] for r in rows} <= {"negative", "neutral", "positive"}
    assert all(-1.0 <= float(r["score"]) <= 1.0 for r in rows)


def test_train_params_are_checked_and_augment_needs_the_vae(trained_classifier, tmp_path, no_broker, monkeypatch, api_for):
    analyst = api_for("analyst")
    outside = analyst.post("/api/jobs/", {"kind": "sentiment_train", "params": {"csv": "/etc/passwd"}}, format="json")
    assert outside.status_code == 400 and "csv" in outside.json()["errors"]["params"]
    bad_map = analyst.post("/api/jobs/", {"kind": "sentiment_train", "params": {"label_map": "0=angry"}}, format="json")
    assert bad_map.status_code == 400 and "label_map" in bad_map.json()["errors"]["params"]
    many_seeds = analyst.post("/api/jobs/", {"kind": "sentiment_train", "params": {"seeds": 9}}, format="json")
    assert many_seeds.status_code == 400 and "seeds" in many_seeds.json()["errors"]["params"]
    bad_base = analyst.post("/api/jobs/", {"kind": "sentiment_train", "params": {"base": "/tmp/weights"}}, format="json")
    assert bad_base.status_code == 400 and "base" in bad_base.json()["errors"]["params"]

    import sys

    monkeypatch.setitem(sys.modules, "workers.runners.genmodels", None)  # not importable
    job, _ = job_create(owner=analyst.user, kind="sentiment_train", params={"augment_per_class": 5, "max_steps": 1})
    assert job_run(job_id=str(job.id), worker_id="test-worker") == "failed"
    job.refresh_from_db()
    assert job.error_code == "augment_unavailable" and "augment_examples" in job.error_message


def test_beat_queues_scoring_for_items_left_unscored(trained_classifier, no_broker):
    from monitoring.tasks import alert_rules_evaluate as beat

    news_ingest(items=[{"source": "wire", "text": "Unscored story", "published_at": timezone.now()}], score=False)
    beat()
    assert Job.objects.filter(kind="sentiment_score", status="queued").count() == 1
    beat()  # the queued job is reused
    assert Job.objects.filter(kind="sentiment_score", status="queued").count() == 1


@pytest.mark.timeout(900)  # loads the 110M encoder three times and saves two 440 MB models; minutes on 2 shared cores
def test_a_few_steps_on_all_mpnet_base_v2_train_its_top_layer_over_cached_states(small_training_csv, no_broker, make_user, settings, tmp_path):
    """The stronger encoder: its lower layers frozen and encoded once into the state cache, the top
    layer and the head trained from the frozen baseline's head; the saved model, run whole as the
    scoring job runs it, agrees with the figures training reported from the cached states."""
    from workers.runtime.mpnet import EncoderMissing, mpnet_part_files

    try:
        mpnet_part_files()
    except EncoderMissing as exc:
        pytest.skip(f"all-mpnet-base-v2's packages are not installed here ({exc}); CI installs them (make install)")
    settings.GENAI_SENTIMENT_STATE_CACHE_DIR = tmp_path / "states"
    params = {"csv": str(small_training_csv), "base": "all-mpnet-base-v2", "train_layers": 1, "max_steps": 3, "batch_size": 16,
              "evals_per_epoch": 1, "test_fraction": 0.2, "validation_fraction": 0.2, "name": "test-mpnet", "max_len": 32}
    job, _ = job_create(owner=make_user("analyst"), kind="sentiment_train", params=params)
    assert job_run(job_id=str(job.id), worker_id="test-worker") == "succeeded", Job.objects.get(pk=job.pk).error_message
    metrics = job.candidates.get().metadata
    version = job.model_versions.get()
    assert version.base_model == "all-mpnet-base-v2" and version.config["train"]["train_layers"] == 1
    assert metrics["encoding"]["layer"] == 11 and metrics["encoding"]["encoded"] == metrics["encoding"]["texts"] == 180
    baseline = metrics["baseline"]
    assert baseline["test"]["n"] == metrics["test"]["n"] == 36 and baseline["test"]["accuracy"] >= 0.8  # mpnet separates these
    assert metrics["test"]["accuracy"] >= baseline["test"]["accuracy"] - 0.1  # three steps from its head do not wreck it
    assert len(list((tmp_path / "states").rglob("*.npz"))) == 180

    from workers.train.sentiment import artifact_load, dataset_read, evaluate, label_map_parse, split_stratified

    texts, labels = dataset_read(small_training_csv, label_map=label_map_parse("0=negative,1=positive,2=neutral"))
    _, _, test_idx = split_stratified(labels, test_fraction=0.2, validation_fraction=0.2, seed=0)
    members, tokenizer, _ = artifact_load(settings.GENAI_MODEL_STORE_DIR / version.artifact_path)
    whole = evaluate(members, tokenizer, [texts[i] for i in test_idx], [labels[i] for i in test_idx])
    assert whole["accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1 / 36 + 1e-9)  # float16 cache: one row at most

    again, _ = job_create(owner=make_user("analyst"), kind="sentiment_train", params={**params, "name": "test-mpnet-again"})
    assert job_run(job_id=str(again.id), worker_id="test-worker") == "succeeded"
    assert again.candidates.get().metadata["encoding"]["encoded"] == 0  # a re-run reads every state from the cache
    import shutil

    for done in (job, again):  # 440 MB each
        shutil.rmtree(settings.GENAI_MODEL_STORE_DIR / done.model_versions.get().artifact_path, ignore_errors=True)
