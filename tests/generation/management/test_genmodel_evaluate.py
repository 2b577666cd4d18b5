"""``manage.py genmodel_evaluate`` on any CSV with a text column prints the VAE's validation
figures and the quality/diversity figures of prior, GAN and data samples as JSON."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.genmodel_fixtures import (  # noqa: F401
    genmodel,
    optimus_genmodel,
    product_corpus,
    tiny_genmodel,
    tiny_optimus,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small models: one thread is faster


def test_prints_the_figures_as_json(genmodel, tmp_path):  # noqa: F811
    path = tmp_path / "held_out.csv"
    rows = product_corpus(300, seed=9)[-40:]
    path.write_text("id,body\n" + "".join(f'{i},"{text}"\n' for i, text in enumerate(rows)))
    out = StringIO()
    call_command("genmodel_evaluate", "--model", "tiny", "--csv", str(path), "--text-col", "body", "--samples", "24",
                 "--json", str(tmp_path / "report.json"), stdout=out)
    report = json.loads(out.getvalue())
    assert report == json.loads((tmp_path / "report.json").read_text())
    assert report["model"] == "tiny@1+tiny-gan@1" and report["evaluated_sentences"] == 40
    validation = report["validation"]
    assert {"elbo", "recon_nll", "recon_bleu", "kl", "active_units", "latent_dim"} <= set(validation)
    assert validation["elbo"] == pytest.approx(-(validation["recon_nll"] + validation["kl"]), abs=1e-3)
    assert set(report["samples"]) == {"vae_prior", "gan", "data", "variants"}
    for figures in report["samples"].values():
        assert {"distinct_1", "distinct_2", "self_bleu", "novelty", "fluency_ppl", "broken_share"} <= set(figures)
        assert 0 <= figures["self_bleu"] <= 1 and 0 <= figures["novelty"] <= 1 and figures["fluency_ppl"] > 1
    assert report["samples"]["gan"]["n"] == 24 and len(report["samples"]["gan"]["examples"]) == 5
    assert set(report["aims"]) >= {"kl_positive", "most_units_active", "gan_more_diverse_than_prior"}
    assert report["decoding"] == "greedy" and report["temperature"] is None


def test_sampled_decoding_at_a_temperature_is_reported_with_it(genmodel, tmp_path):  # noqa: F811
    path = tmp_path / "held_out.csv"
    path.write_text("text\n" + "".join(f'"{text}"\n' for text in product_corpus(300, seed=9)[-20:]))
    runs = {}
    for temperature in ("0.5", "1.5"):
        out = StringIO()
        call_command("genmodel_evaluate", "--model", "tiny", "--csv", str(path), "--samples", "40",
                     "--decoding", "sample", "--temperature", temperature, stdout=out)
        runs[temperature] = json.loads(out.getvalue())
    assert [r["temperature"] for r in runs.values()] == [0.5, 1.5]
    # hotter sampling spreads the samples out: more distinct bigrams
    assert runs["1.5"]["samples"]["vae_prior"]["distinct_2"] > runs["0.5"]["samples"]["vae_prior"]["distinct_2"]


def test_bad_arguments_are_command_errors(genmodel, tmp_path):  # noqa: F811
    path = tmp_path / "x.csv"
    path.write_text("text\nA red mug.\n")
    with pytest.raises(CommandError, match="no column 'body'"):
        call_command("genmodel_evaluate", "--csv", str(path), "--text-col", "body", stdout=StringIO())
    with pytest.raises(CommandError, match="No ready VAE model version named 'nope'"):
        call_command("genmodel_evaluate", "--model", "nope", "--csv", str(path), stdout=StringIO())
    with pytest.raises(CommandError, match="No ready GAN model version 'tiny-gan@9' trained on tiny@1"):
        call_command("genmodel_evaluate", "--model", "tiny", "--gan", "tiny-gan@9", "--csv", str(path), stdout=StringIO())
    with pytest.raises(CommandError, match="at least 2 sentences"):
        call_command("genmodel_evaluate", "--csv", str(path), stdout=StringIO())
    with pytest.raises(CommandError, match="--temperature must be between 0.1 and 2"):
        call_command("genmodel_evaluate", "--csv", str(path), "--decoding", "sample", "--temperature", "0",
                     stdout=StringIO())


def test_a_temperature_sweep_compares_the_gan_with_the_prior_at_equal_fluency(genmodel, tmp_path):  # noqa: F811
    path = tmp_path / "held_out.csv"
    path.write_text("text\n" + "".join(f'"{text}"\n' for text in product_corpus(300, seed=9)[-20:]))
    out = StringIO()
    call_command("genmodel_evaluate", "--model", "tiny", "--csv", str(path), "--samples", "30",
                 "--sweep", "1.5,0.5,1.0", "--length-matched", "3", stdout=out)
    sweep = json.loads(out.getvalue())["sweep"]
    for source in ("vae_prior", "gan"):
        points = sweep["curves"][source]
        assert [p["temperature"] for p in points] == [0.5, 1.0, 1.5]
        # hotter sampling spreads the samples out (the tests' LM is too small for a fluency trend)
        assert points[-1]["self_bleu"] < points[0]["self_bleu"]
        assert all(p["fluency_ppl"] > 1 and 0 <= p["novelty"] <= 1 for p in points)
    assert [row["temperature"] for row in sweep["at_equal_fluency"]] == [0.5, 1.0, 1.5]
    comparable = [row for row in sweep["at_equal_fluency"] if row["prior_self_bleu"] is not None]
    assert sweep["gan_more_diverse_at_equal_fluency"] == (bool(comparable) and all(r["gan_more_diverse"] for r in comparable))
    report = json.loads(out.getvalue())
    assert report["aims"]["gan_more_diverse_at_equal_fluency"] == sweep["gan_more_diverse_at_equal_fluency"]
    # the prior's texts picked to the GAN's lengths: nearer the GAN's mean length than the plain prior's
    for gan, matched, prior in zip(sweep["curves"]["gan"], sweep["curves"]["vae_prior_length_matched"], sweep["curves"]["vae_prior"],
                                   strict=True):
        assert abs(gan["mean_words"] - matched["mean_words"]) <= abs(gan["mean_words"] - prior["mean_words"]) + 1e-9
    assert len(sweep["at_equal_fluency_and_length"]) == 3
    assert report["aims"]["gan_more_diverse_at_equal_fluency_and_length"] == sweep["gan_more_diverse_at_equal_fluency_and_length"]
    # and at the main decoding (greedy): a length-matched prior sample set with its two aims
    samples = report["samples"]
    assert samples["vae_prior_length_matched"]["n"] == samples["gan"]["n"] == 30
    assert abs(samples["vae_prior_length_matched"]["mean_words"] - samples["gan"]["mean_words"]) <= abs(
        samples["vae_prior"]["mean_words"] - samples["gan"]["mean_words"]) + 1e-9
    assert report["aims"]["gan_more_diverse_than_length_matched_prior"] == (
        samples["gan"]["self_bleu"] < samples["vae_prior_length_matched"]["self_bleu"])
    assert "gan_at_least_as_fluent_as_length_matched_prior" in report["aims"]


def test_bad_sweeps_are_command_errors(genmodel, tmp_path):  # noqa: F811
    path = tmp_path / "x.csv"
    path.write_text("text\nA red mug.\n")
    for sweep, message in (("0.5,hot", "--sweep must be temperatures"), ("0.5,3", "--sweep temperatures must be between")):
        with pytest.raises(CommandError, match=message):
            call_command("genmodel_evaluate", "--csv", str(path), "--sweep", sweep, stdout=StringIO())
    with pytest.raises(CommandError, match="--length-matched must be between"):
        call_command("genmodel_evaluate", "--csv", str(path), "--sweep", "0.5", "--length-matched", "50", stdout=StringIO())


def test_the_pretrained_vae_against_the_gru_baseline_in_one_run_with_a_sample_file(
    genmodel, optimus_genmodel, tiny_genmodel, tiny_optimus, tmp_path, settings  # noqa: F811
):
    import shutil

    store = tmp_path / "store"  # both fixtures' files in one store
    shutil.copytree(tiny_genmodel.directory, store)
    shutil.copytree(tiny_optimus.directory, store, dirs_exist_ok=True)
    settings.GENAI_MODEL_STORE_DIR = store
    path = tmp_path / "held_out.csv"
    path.write_text("text\n" + "".join(f'"{text}"\n' for text in product_corpus(300, seed=9)[-12:]))
    out = StringIO()
    call_command("genmodel_evaluate", "--model", "tiny-optimus", "--baseline", "tiny", "--csv", str(path),
                 "--samples", "10", "--variants", "4", "--k", "2", "--interpolations", "2",
                 "--sample-out", str(tmp_path / "sample.md"), stdout=out)
    report = json.loads(out.getvalue())
    assert report["model"] == "tiny-optimus@1+tiny-optimus-gan@1" and report["architecture"] == "optimus"
    assert report["baseline"]["model"] == "tiny@1+tiny-gan@1" and report["baseline"]["architecture"] == "gru"
    for part in (report, report["baseline"]):
        assert {"elbo", "kl", "active_units", "recon_bleu"} <= set(part["validation"])
        variants = part["samples"]["variants"]
        assert variants["sources"] == 4 and 0 <= variants["cosine_to_source"] <= 1
        assert {"bleu_to_source", "must_keep_retention_decoded", "removed", "broken_share"} <= set(variants)
        assert 0 <= variants["leads_with_must_keep_share"] <= 1
        interpolation = part["interpolation"]
        assert interpolation["pairs"] == 2 and len(interpolation["similarity_to_a"]) == 5
        # the ends are the held-out sentences' own posterior means: each end's text is nearer its own end
        assert interpolation["similarity_to_a"][0] >= interpolation["similarity_to_b"][0] - 0.5
        assert "variants_perplexity_at_most_1.5x_held_out" in part["aims"]
    sample = (tmp_path / "sample.md").read_text()
    assert "## Model: tiny-optimus@1" in sample and "## Baseline: tiny@1" in sample
    for heading in ("Held-out sentences", "Prior samples", "GAN samples", "Variants", "Interpolation"):
        assert sample.count(f"### {heading}") == 2
