"""The VAE/GAN runtime: loading by name, variants with must-keep words, interpolation, samples,
augmentation of labelled data, and the fluency figure under the LM."""

import math
import re

import pytest

from generation.exceptions import PermanentJobError
from generation.text import repetition
from tests.genmodel_fixtures import COLOURS, ITEMS, genmodel, tiny_genmodel  # noqa: F401
from workers.evaluation import genmodels as genmodel_evaluation
from workers.ml.text_metrics import text_key
from workers.runners import genmodel_train
from workers.runners import genmodels as genmodel_runners
from workers.runtime import genmodels

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small models: one thread is faster


def test_resolves_the_vae_with_its_gan_by_name_and_by_default(genmodel):  # noqa: F811
    named = genmodels.genmodel_get(name="tiny@1")
    assert named.vae_label == "tiny@1" and named.gan_label == "tiny-gan@1" and named.gan is not None
    assert genmodels.genmodel_get(name=None) is named  # the newest, from the process cache
    with pytest.raises(PermanentJobError) as error:
        genmodels.genmodel_get(name="nope")
    assert error.value.code == "unknown_model"


@pytest.mark.django_db
def test_no_vae_is_a_clear_permanent_error():
    genmodels._cache.clear()
    with pytest.raises(PermanentJobError, match="No VAE model version exists yet"):
        genmodel_runners.augment_examples(texts=["a red mug"], labels=["x"], per_class=2)


def test_variants_keep_must_keep_words_and_drop_copies(genmodel):  # noqa: F811
    model = genmodels.genmodel_get(name="tiny")
    text = "This red jacket is warm and soft."
    items, removed = genmodel_runners.variants_make(text=text, k=4, must_keep=["jacket"], spread=1.5, seed=3, model=model)
    assert items, removed
    assert all("jacket" in item["text"].lower() for item in items)
    assert all(text_key(item["text"]) != text_key(text) for item in items)
    assert len({text_key(item["text"]) for item in items}) == len(items)
    scores = [item["score"] for item in items]
    assert scores == sorted(scores, reverse=True)
    assert all(0 <= item["novelty"] <= 1 and item["realism"] is not None for item in items)
    # ranked mostly by the meaning kept (MiniLM cosine to the text), as a rewrite should be
    assert all(-1 <= item["similarity"] <= 1 for item in items)
    again, _ = genmodel_runners.variants_make(text=text, k=4, must_keep=["jacket"], spread=1.5, seed=3, model=model)
    assert again == items  # seeded
    none, removed = genmodel_runners.variants_make(text=text, k=3, must_keep=["zebra"], seed=1, model=model)
    assert none == [] and removed["missing_must_keep"] > 0


def test_interpolation_runs_from_one_text_to_the_other(genmodel):  # noqa: F811
    model = genmodels.genmodel_get(name="tiny")
    a, b = "This red jacket is warm and soft.", "A compact grey lamp made for the office."
    for path in ("linear", "slerp"):
        items = genmodel_runners.interpolation_make(text_a=a, text_b=b, steps=5, path=path, model=model)
        assert [item["t"] for item in items] == [0.0, 0.25, 0.5, 0.75, 1.0]
    mu, _ = genmodels.texts_encode(model, [a, b])
    ends = genmodels.latents_decode(model, mu)
    assert [items[0]["text"], items[-1]["text"]] == ends


def test_samples_are_seeded_from_gan_or_prior(genmodel):  # noqa: F811
    model = genmodels.genmodel_get(name="tiny")
    gan = genmodel_runners.samples_make(n=6, source="gan", seed=4, model=model)
    assert gan == genmodel_runners.samples_make(n=6, source="gan", seed=4, model=model)
    prior = genmodel_runners.samples_make(n=6, source="prior", decoding="sample", temperature=0.7, seed=4, model=model)
    assert len(prior) == 6 and prior == genmodel_runners.samples_make(
        n=6, source="prior", decoding="sample", temperature=0.7, seed=4, model=model
    )


def test_a_sample_that_decodes_to_nothing_is_replaced(genmodel, monkeypatch):  # noqa: F811
    model = genmodels.genmodel_get(name="tiny")
    real_decode = genmodel_runners.latents_decode
    calls = []

    def blank_first(model, z, **kwargs):
        texts = real_decode(model, z, **kwargs)
        calls.append(z.size(0))
        return ["", *texts[1:-1], "   "] if len(calls) == 1 else texts

    monkeypatch.setattr(genmodel_runners, "latents_decode", blank_first)
    items = genmodel_runners.samples_make(n=5, source="prior", seed=3, model=model)
    # 2 missing after the first round: the second draws twice as many (broken ones may be dropped too)
    assert calls == [5, 4] and len(items) == 5 and all(item["text"].strip() for item in items)


def test_augment_examples_per_class_with_labels_and_no_copies(genmodel, tiny_genmodel):  # noqa: F811
    texts = [t for t in tiny_genmodel.corpus if "jacket" in t][:12] + [t for t in tiny_genmodel.corpus if "lamp" in t][:12]
    labels = ["jacket" if "jacket" in t else "lamp" for t in texts]
    examples = genmodel_runners.augment_examples(texts=texts, labels=labels, per_class=3, seed=1)
    assert examples == genmodel_runners.augment_examples(texts=texts, labels=labels, per_class=3, seed=1)
    counts = {label: sum(1 for _, lab in examples if lab == label) for label in ("jacket", "lamp")}
    assert all(1 <= n <= 3 for n in counts.values()), counts
    inputs = {text_key(t) for t in texts}
    assert all(text_key(text) not in inputs and text.strip() and not repetition.looping(text) for text, _ in examples)
    assert genmodel_runners.augment_examples(texts=texts, labels=labels, per_class=0) == []
    with pytest.raises(ValueError):
        genmodel_runners.augment_examples(texts=texts, labels=labels[:-1], per_class=1)


def test_lm_perplexity_is_finite_and_prefers_real_text():
    fluent = ["The red jacket is warm."] * 2
    perplexity = genmodel_evaluation.lm_perplexity(fluent)
    assert 1.0 < perplexity < math.inf
    assert genmodel_evaluation.lm_perplexity(["", "  "]) == math.inf


def test_csv_corpus_and_missing_columns(tmp_path):
    path = tmp_path / "catalogue.csv"
    path.write_text("name,description\nmug,A red mug. Call +44 20 7946 0958 today.\nlamp,A grey lamp.\n")
    texts, source = genmodel_train.corpus_load({"csv": str(path), "text_cols": ["description"]})
    assert texts == ["A red mug. Call [PHONE] today.", "A grey lamp."] and "catalogue.csv" in source
    with pytest.raises(PermanentJobError, match="no column 'text'"):
        genmodel_train.corpus_load({"csv": str(path)})
    texts, _ = genmodel_train.corpus_load({"csv_content": "text\nhello there friend\n"})
    assert texts == ["hello there friend"]
    assert COLOURS and ITEMS


def test_gan_points_are_compared_with_the_prior_at_the_same_fluency():
    curves = {
        "vae_prior": [{"temperature": 0.5, "fluency_ppl": 100.0, "self_bleu": 0.8},
                      {"temperature": 1.0, "fluency_ppl": 400.0, "self_bleu": 0.4}],
        "gan": [{"temperature": 0.5, "fluency_ppl": 80.0, "self_bleu": 0.85},  # more fluent than any prior point
                {"temperature": 1.0, "fluency_ppl": 200.0, "self_bleu": 0.55}],  # half-way in log perplexity
    }
    rows = genmodel_evaluation.fluency_matched_diversity(curves)
    assert rows[0] == {"temperature": 0.5, "gan_fluency_ppl": 80.0, "gan_self_bleu": 0.85, "prior_self_bleu": None,
                       "gan_more_diverse": None}
    assert rows[1]["prior_self_bleu"] == pytest.approx(0.6) and rows[1]["gan_more_diverse"] is True
    curves["gan"][1]["self_bleu"] = 0.65
    assert genmodel_evaluation.fluency_matched_diversity(curves)[1]["gan_more_diverse"] is False


def test_a_new_gan_is_trained_on_an_existing_vae_from_its_own_corpus_only(genmodel, tiny_genmodel, settings):  # noqa: F811
    from tests.genmodel_fixtures import TINY_GAN
    from workers.train.genmodels import GANTrainConfig

    vae_row, old_gan = genmodel
    vae_row.config = {"seed": 0, "max_words": 30, "validation_fraction": 0.15}  # as the tiny VAE was trained
    vae_row.save(update_fields=["config"])
    outcome = genmodel_train.gan_retrain(vae_name="tiny", texts=tiny_genmodel.corpus,
                                    gan_config=GANTrainConfig(**{**TINY_GAN, "steps": 20}, diversity_weight=1.0))
    assert (outcome.vae.pk, outcome.gan.label, outcome.gan.config["vae"]) == (vae_row.pk, "tiny-gan@2", "tiny@1")
    assert outcome.gan.config["diversity_weight"] == 1.0 and outcome.metrics["gan"]["steps"] == 20
    genmodels._cache.clear()
    assert genmodels.genmodel_get(name="tiny").gan_label == "tiny-gan@2"  # the VAE's newest GAN
    assert genmodels.genmodel_get(name="tiny", gan="tiny-gan@1").gan_label == "tiny-gan@1"  # or the one asked for
    with pytest.raises(PermanentJobError, match="not the one tiny@1 was trained on") as error:
        genmodel_train.gan_retrain(vae_name="tiny", texts=tiny_genmodel.corpus[:150], gan_config=GANTrainConfig(**TINY_GAN))
    assert error.value.code == "invalid_input"


def test_length_matched_picks_pool_texts_with_the_given_lengths():
    pool = ["one two three", "one two", "a b c d e", "x y z", "p q r s"]
    assert genmodel_evaluation.length_matched(pool, [3, 5, 3]) == ["x y z", "a b c d e", "one two three"]
    assert genmodel_evaluation.length_matched(pool, [9]) == ["a b c d e"]  # the nearest length left
    assert len(genmodel_evaluation.length_matched(pool[:2], [2, 2, 2])) == 2  # the pool ran out




def test_the_product_domain_corpus_writes_each_product_s_names_as_slots():
    from generation.management.commands.copy_corpus import CORPUS_DIR, corpus_read

    texts, source = genmodel_train.domain_corpus("product")
    assert "names as slots" in source
    assert sum("The {name} from {brand}" in text for text in texts) > len(texts) // 4
    names = {row["attributes"].get("name") or "" for row in corpus_read(CORPUS_DIR)}
    written = re.compile("|".join(rf"\b{re.escape(name)}\b" for name in names if len(name.split()) > 1))
    assert not [text for text in texts if written.search(text)][:1]  # no product's name is learnt
