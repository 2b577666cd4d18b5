"""The four VAE/GAN kinds on the pretrained-parts VAE (tiny), through the API and the pipeline in
this process: the job's domain picks the model (product copy by default, never another domain's),
and variants that fail the copy checker or the fluency filter are dropped, not ranked."""

import pytest
import torch

from generation.models import JobStatus, ModelVersion
from generation.text.product_names import has_slots, names_read
from tests.generation.kinds.test_genmodel_kinds import create, run
from tests.genmodel_fixtures import optimus_genmodel, tiny_optimus  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_four_kinds_run_on_the_product_model(api_for, optimus_genmodel, tiny_optimus, no_broker):  # noqa: F811
    client = api_for("marketer")
    variants = create(client, "variants", {"text": "This red jacket is warm and soft.", "k": 2, "seed": 1, "spread": 2.0})
    interpolate = create(client, "interpolate", {"text_a": "A red mug.", "text_b": "A quiet grey desk.", "steps": 3})
    sample = create(client, "sample", {"n": 3, "seed": 2, "domain": "product"})
    prior = create(client, "sample", {"n": 2, "source": "prior", "decoding": "sample", "seed": 2})
    rows = [{"text": t, "label": "mug" if "mug" in t else "desk"} for t in tiny_optimus.corpus if "mug" in t or "desk" in t]
    augment = create(api_for("analyst"), "augment", {"rows": rows[:12], "per_class": 1})
    for response in (variants, interpolate, sample, prior, augment):
        assert response.status_code == 201, response.json()
    for response in (variants, interpolate, sample, prior, augment):
        job = run(response.json()["id"])
        assert job.status == JobStatus.SUCCEEDED, (job.kind, job.error_message)
        assert job.model_version == "tiny-optimus@1+tiny-optimus-gan@1"
        assert job.candidates.exists()
    job = run(create(client, "variants", {"text": "This red jacket is warm and soft.", "k": 2, "seed": 1,
                                          "spread": 2.0}).json()["id"])
    assert all("perplexity" in c.metadata for c in job.candidates.all())  # the fluency filter measured each


def test_a_domain_without_a_model_is_a_400_and_never_borrows_another_domains(api_for, optimus_genmodel):  # noqa: F811
    client = api_for("marketer")
    response = create(client, "variants", {"text": "Your refund is on its way.", "domain": "support"})
    assert response.status_code == 400
    assert "support domain" in str(response.json())
    # a support model, registered under the reply purpose, serves the support domain only
    vae, _ = optimus_genmodel
    ModelVersion.objects.create(family="vae", name="support-vae", version=1, purpose="reply",
                                artifact_path=vae.artifact_path, metrics=vae.metrics, config=vae.config)
    from generation.kinds.variants import genmodel_versions_resolve

    assert genmodel_versions_resolve(domain="support")[0].name == "support-vae"
    assert genmodel_versions_resolve(domain="product")[0].name == "tiny-optimus"


def test_variants_failing_the_copy_checker_or_the_fluency_filter_are_dropped(optimus_genmodel, settings):  # noqa: F811
    from workers.runners.genmodels import variant_rejection, variants_make
    from workers.runtime.genmodels import genmodel_get

    attributes = {"name": "Metro Sling", "colour": "black", "material": "recycled nylon"}
    assert variant_rejection("A black sling in recycled nylon.", attributes=attributes, max_perplexity=None,
                             perplexity=None) is None
    assert variant_rejection("A waterproof red sling with a 10-year warranty.", attributes=attributes,
                             max_perplexity=None, perplexity=None) == "copy_check"
    assert variant_rejection("A black sling.", attributes=None, max_perplexity=60.0, perplexity=900.0) == "not_fluent"
    settings.GENAI_GENMODEL_VARIANT_MIN_SIMILARITY = 0.5
    assert variant_rejection("A beige knit scarf.", attributes=None, max_perplexity=None, perplexity=None,
                             similarity=0.31, bleu=0.0) == "drifted"
    assert variant_rejection("A black sling bag.", attributes=None, max_perplexity=None, perplexity=None,
                             similarity=0.97, bleu=0.8) == "too_close"
    assert variant_rejection("A sling in black.", attributes=None, max_perplexity=None, perplexity=None,
                             similarity=0.9, bleu=0.2) is None
    # a product variant with no attributes states nothing its source does not
    source = "A black sling in recycled nylon."
    assert variant_rejection("A beige knit scarf.", attributes=None, max_perplexity=None, perplexity=None,
                             source=source, grounded=True) == "ungrounded"
    assert variant_rejection("This sling is 59 EUR.", attributes=None, max_perplexity=None, perplexity=None,
                             source=source, grounded=True) == "ungrounded"
    assert variant_rejection("In black, this sling is made of recycled nylon.", attributes=None, max_perplexity=None,
                             perplexity=None, source=source, grounded=True) is None
    bomber = "The Jetset Bomber from Vantle is a bomber jacket in cherry red, made from satin."
    assert variant_rejection("The Jetset Satin is a bomber jacket in cherry red.", attributes=None, max_perplexity=None,
                             perplexity=None, source=bomber, grounded=True) == "ungrounded"  # a renamed product
    assert variant_rejection("The Jetset Bomber is a satin jacket in cherry red.", attributes=None, max_perplexity=None,
                             perplexity=None, source=bomber, grounded=True) is None
    stool = "The Bop Bar Stool from Zingle brings a pop of cherry red to the kitchen counter."
    assert variant_rejection("The Bop Bar Stool from Zingle is a floor mat in red.", attributes=None,
                             max_perplexity=None, perplexity=None, source=stool, grounded=True) == "ungrounded"
    assert variant_rejection("A beige knit scarf.", attributes=None, max_perplexity=None, perplexity=None,
                             source=source) is None  # the support domain's variants are not product claims
    model = genmodel_get(domain="product")
    # the tests' random LM scores every text far above 60: nothing passes, everything is counted
    items, removed = variants_make(text="This red jacket is warm and soft.", k=2, seed=0, max_perplexity=60.0,
                                   model=model)
    assert items == [] and removed["not_fluent"] > 0
    items, removed = variants_make(text="This red jacket is warm and soft.", k=2, seed=0, max_perplexity=1e12,
                                   attributes={"name": "Aster Jacket"}, model=model)
    assert removed["copy_check"] + len(items) > 0
    assert all(variant_rejection(i["text"], attributes={"name": "Aster Jacket"}, max_perplexity=None,
                                 perplexity=None) is None for i in items)


def test_a_product_variant_is_nudged_towards_what_its_source_says_the_product_is():
    from workers.runners.genmodels import variant_anchors

    source = "The Sunday Linen Shirt by Larkspun is made from linen in sage green, and it's yours for 45 GBP."
    anchors = variant_anchors(source, must_keep=["Larkspun", "linen"])
    assert {"shirt", "sage", "green"} <= {a.lower() for a in anchors}
    assert "linen" not in {a.lower() for a in anchors}  # a must-keep word is guided already
    assert variant_anchors("Sunday plans, sorted.") == []


def test_variants_job_with_attributes_validates_them(api_for, optimus_genmodel):  # noqa: F811
    response = create(api_for("marketer"), "variants", {"text": "A black sling.", "attributes": {"colour": {"x": 1}}})
    assert response.status_code == 400 and "attributes" in str(response.json())


def test_decoded_texts_with_words_the_model_never_saw_are_dropped_and_counted(optimus_genmodel, settings):  # noqa: F811
    """An invented name ("Vergo") is a broken word: samples and variants drop such texts and
    decode others; the model knows its training sentences' words and its tokenizers' whole words."""
    from tests.genmodel_fixtures import product_corpus
    from workers.ml.text_metrics import text_words
    from workers.runners.genmodels import samples_make, variant_rejection
    from workers.runtime.genmodels import genmodel_get, text_broken

    settings.GENAI_GENMODEL_DROP_BROKEN = True
    model = genmodel_get(domain="product")
    trained_on = text_words(product_corpus(120, seed=4))
    assert model.known_words is not None and "jacket" in model.known_words
    assert len(trained_on - model.known_words) < len(trained_on) // 2  # the validation split's words need not be known
    assert text_broken(model, "A warm jacket in red.") is None
    assert text_broken(model, "The Vergoxq jacket.") == "non_word"
    assert text_broken(model, "A warm {{jacket.") == "brackets"
    assert text_broken(model, "A warm jacket made from 100% ster") == "unfinished"  # cut off mid-sentence
    assert text_broken(model, "A warm jacket in red. Jacket.") == "fragment"  # a must-keep word left over
    assert text_broken(model, "A warm jacket. It comes in red.") is None
    assert text_broken(model, "The Vergoxq jacket.", words=["Vergoxq's coat"]) is None  # a variant's source named it
    assert variant_rejection("The Vergoxq jacket.", attributes=None, max_perplexity=None, perplexity=None,
                             model=model) == "broken"
    removed: dict[str, int] = {}
    items = samples_make(n=6, source="prior", decoding="sample", seed=1, model=model, removed=removed)
    assert removed["decoded"] == len(items) + removed["broken"]
    assert removed["broken"] > 0  # the tiny decoder writes pieces of words
    assert all(text_broken(model, item["text"]) is None for item in items)
    settings.GENAI_GENMODEL_DROP_BROKEN = False
    assert text_broken(model, "The Vergoxq jacket.") is None


def test_a_model_trained_with_name_slots_writes_the_source_s_names_and_invents_none(optimus_genmodel, settings):  # noqa: F811
    """A product model trained on "The {name} from {brand} is ..." (its checkpoint says ``slots``)
    reads a source with its names as slots and gives its variants the source's names back; a
    sample, which has no product, reads "this product" where a name would go."""
    from workers.runners.genmodels import samples_make, variants_make
    from workers.runtime.genmodels import genmodel_get, latents_decode, model_output, text_broken

    settings.GENAI_GENMODEL_DROP_BROKEN = False
    settings.GENAI_GENMODEL_VARIANT_MIN_SIMILARITY = -1.0
    settings.GENAI_GENMODEL_VARIANT_MAX_BLEU = 1.0
    model = genmodel_get(domain="product")
    model.slots = True  # as loaded from a checkpoint trained on the product corpus (the cache is cleared after)
    source = "The Linnet Wrap Dress from Brackenlea is a warm red jacket."
    items, removed = variants_make(text=source, k=2, seed=0, must_keep=["Linnet"], model=model, spread=2.0)
    assert removed["decoded"] > 0
    for item in items:
        assert "Linnet Wrap Dress" in item["text"] and not has_slots(item["text"])
    # the decoder is guided to write the slot of a must-keep word of the name, and the slot gets the name back
    raw = latents_decode(model, torch.zeros(2, model.latent_dim), keep_words=["{name}"])
    assert all("{name}" in text for text in raw), raw
    assert all("Linnet Wrap Dress" in model_output(model, text, names_read(source)) for text in raw)
    for item in samples_make(n=3, source="prior", seed=1, model=model):
        assert not has_slots(item["text"])
    # a bracket word the model wrote of its own is no slot to show ("retails at {then}")
    settings.GENAI_GENMODEL_DROP_BROKEN = True
    assert text_broken(model, "This product retails at {then} now.", words=[source]) == "slot"
    assert text_broken(model, "The Shell Yeah Tote from [brand] is a tote.", words=[source]) == "slot"
