"""manage.py copy_corpus and copy_evaluate: the corpus split by id, the reader's figures of every
system in one run, and a sample for people to read."""

import io
import json

import pytest
from django.core.management import call_command

from generation.services.copy import catalogue_read

pytestmark = pytest.mark.django_db


def _record(i: int) -> dict:
    return {
        "id": f"t-{i:03d}", "group": "bags", "tone": "neutral", "length": "short",
        "attributes": {"name": f"Sling {i}", "brand": "Urbano", "category": "Sling bag", "colour": "Black",
                       "features": ["adjustable strap", "front zip pocket"], "price": f"{40 + i} EUR"},
        "description": f"The Urbano Sling {i} is a black sling bag with an adjustable strap and a front zip pocket, "
                       f"yours for {40 + i} EUR.",
    }


def test_the_corpus_becomes_training_chats_and_a_held_back_catalogue(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "bags.jsonl").write_text("\n".join(json.dumps(_record(i)) for i in range(40)) + "\n")
    out = tmp_path / "out"
    stdout = io.StringIO()
    call_command("copy_corpus", "--corpus", str(corpus), "--out", str(out), "--test-every", "4", stdout=stdout)
    report = json.loads(stdout.getvalue())
    assert report["train"] + report["test"] == 40 and 0 < report["test"] < 20
    chats = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    test_ids = {json.loads(line)["id"] for line in (out / "test.jsonl").read_text().splitlines()}
    assert not {c["id"] for c in chats} & test_ids  # a product is in one split only
    assert all(c["messages"][-1]["role"] == "assistant" and c["messages"][-1]["content"].startswith("The Urbano")
               for c in chats)
    assert "Product facts:" in chats[0]["messages"][-2]["content"]
    rows, errors = catalogue_read(str(out / "test.csv"))
    assert not errors and len(rows) == len(test_ids)
    assert rows[0][1]["features"] == "adjustable strap; front zip pocket"
    # splits are stable: the same ids land in the same split when the corpus grows
    (corpus / "more.jsonl").write_text(json.dumps({**_record(99), "id": "t-099"}) + "\n")
    call_command("copy_corpus", "--corpus", str(corpus), "--out", str(tmp_path / "out2"), "--test-every", "4",
                 stdout=io.StringIO())
    again = {json.loads(line)["id"] for line in (tmp_path / "out2" / "test.jsonl").read_text().splitlines()}
    assert test_ids <= again


def test_training_texts_are_what_the_service_would_keep_unless_asked_as_written(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rambling = [{**_record(i), "description": _record(i)["description"] + " Take it anywhere the day leads."}
                for i in range(12)]
    (corpus / "bags.jsonl").write_text("\n".join(json.dumps(r) for r in rambling) + "\n")
    for flags, expect_tail in (((), False), (("--as-written",), True)):
        out = tmp_path / ("out" + "".join(flags))
        call_command("copy_corpus", "--corpus", str(corpus), "--out", str(out), "--test-every", "4", *flags,
                     stdout=io.StringIO())
        targets = [json.loads(line)["messages"][-1]["content"] for line in (out / "train.jsonl").read_text().splitlines()]
        assert targets and all(t.endswith("the day leads.") == expect_tail for t in targets)
        assert all("front zip pocket" in t for t in targets)


def test_sentence_rows_state_their_facts_and_continue_the_sentences_before(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    records = [{**_record(i), "description": f"Meet the Metro Sling {i} by Urbano, a sling bag. It comes in black. "
                f"It has an adjustable strap and a front zip pocket. It costs {40 + i} EUR."} for i in range(12)]
    (corpus / "bags.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    out = tmp_path / "out"
    stdout = io.StringIO()
    call_command("copy_corpus", "--corpus", str(corpus), "--out", str(out), "--test-every", "4", "--format", "sentences",
                 "--voice-share", "0", stdout=stdout)
    report = json.loads(stdout.getvalue())
    chats = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert report["format"] == "sentences" and report["rows"] == len(chats) == 4 * report["train"]
    by_product: dict[str, list[dict]] = {}
    for chat in chats:
        by_product.setdefault(chat["id"].split("#")[0], []).append(chat)
    for rows in by_product.values():
        prompts = [r["messages"][1]["content"] for r in rows]
        targets = [r["messages"][-1]["content"] for r in rows]
        assert "So far: (this is the first sentence)" in prompts[0]
        assert targets[1] == "It comes in black." and "- Colour: black" in prompts[1]
        assert "- Features: adjustable strap, front zip pocket" in prompts[2] and "Colour" not in prompts[2]
        for prompt, target in zip(prompts[1:], targets):  # the sentence before is context, never the answer
            assert f"So far: {target}" in prompt or f" {target}" in prompt.split("Next sentence")[0]
        assert all(t not in p for p, t in zip(prompts, targets))


def test_evaluate_prints_the_figures_of_each_system_and_writes_a_sample(tmp_path, one_torch_thread):
    source = tmp_path / "catalogue.csv"
    source.write_text(
        "name,brand,category,colour,price,features\n"
        "Metro Sling,Urbano,Sling bag,Black,45 EUR,adjustable strap; front zip pocket\n"
        "Court Classic,Brightside,Sneakers,White,63 USD,padded collar\n"
    )
    sample = tmp_path / "sample.md"
    stdout = io.StringIO()
    call_command("copy_evaluate", "--csv", str(source), "--models", "base", "--length", "short", "--no-fluency",
                 "--max-regenerations", "0", "--sample-out", str(sample), "--visibility", "2",
                 stdout=stdout, stderr=io.StringIO())
    report = json.loads(stdout.getvalue())
    visibility = report["visibility"]
    assert visibility["products"] == 2 and visibility["tone"]["chance"] == 0.25
    assert visibility["tone_mpnet"]["chance"] == 0.25 and "texts" not in visibility  # the texts are the sample's
    assert 0.0 <= visibility["tone"]["accuracy"] <= 1.0 and set(visibility["mean_words_by_length"]) == {
        "short", "medium", "long"}
    assert set(report["systems"]) == {"service (base)", "bare model"}
    for figures in report["systems"].values():
        assert {"coverage", "unsupported_rate", "meta_rate", "template_tail_rate", "currency_mismatch_rate",
                "repetition_rate", "mean_words", "perplexity"} <= set(figures)
    text = sample.read_text()
    assert "Metro Sling" in text and "Court Classic" in text and "**bare model**" in text and "**service (base)**" in text
    assert "# Tones and lengths: the first 2 products" in text and "**Court Classic**, premium, medium:" in text
