"""The reply model's retrieval-augmented training data: an example never sees its own answer
(not its row, not a row with the same message or answer), held-back rows are in neither the
examples nor the knowledge base, and the prompt is the one the runner serves a rag1 adapter with."""

import csv
import json

import numpy as np
import pytest
from django.core.management import call_command

from generation.text.sentences import line_ends_normalise
from tests.knowledge_fixtures import bitext_rows
from workers.train.reply_corpus import rag_neighbours, rag_target


def test_neighbours_are_never_the_row_itself_nor_a_copy_of_its_message_or_answer():
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.96, 0.28], [0.0, 1.0], [0.8, 0.6]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    messages = ["where is my order", "Where is  my ORDER", "track my parcel", "delete my account", "order status"]
    answers = ["A", "B", "A", "C", "D"]  # row 2 gives row 0's answer word for word
    picked = rag_neighbours(vectors, messages=messages, answers=answers, k=3, min_score=0.4, dedupe_cosine=0.999)
    assert [j for j, _ in picked[0]] == [4]  # not 0 (itself), 1 (same message), 2 (same answer); 3 is below the floor
    assert [j for j, _ in picked[3]] == [4]
    for i, hits in enumerate(picked):
        assert i not in [j for j, _ in hits]
        assert all(answers[j] != answers[i] for j, _ in hits)
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


def test_near_duplicate_sources_are_offered_once():
    vectors = np.array([[1.0, 0.0, 0.0], [0.9, 0.43, 0.0], [0.9, 0.43, 0.001], [0.9, 0.0, 0.43]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    picked = rag_neighbours(vectors, messages=list("abcd"), answers=list("wxyz"), k=3, min_score=0.0, dedupe_cosine=0.95)
    assert sorted(j for j, _ in picked[0]) in ([1, 3], [2, 3])


@pytest.mark.django_db
def test_a_target_writes_a_value_the_message_masked_as_its_placeholder():
    message = "I want to change several products of order [ORDER_ID]"
    answer = ("I see you want to change order 00004587345.\r\n\r\n1. Log in on {{WEBSITE URL}}.\r\n"
              "2. Call us at +1 800 555 0199 if order 00004587345 cannot be edited.")
    target = rag_target(answer, message=message, sources=["Call us at +1 800 555 0199."])
    assert "00004587345" not in target and target.count("{{Order Number}}") == 2
    assert "+1 800 555 0199" in target  # a source gives it: kept
    assert "\r\n\r\n1. Log in" in target  # the value ends at the full stop: the steps stay


def test_reply_corpus_writes_rag_examples_without_their_own_answer_and_keeps_held_back_rows_out(tmp_path, settings):
    from workers.runners.reply import reply_rag_messages

    rows = bitext_rows(intents=("cancel_order", "track_order", "get_refund"), per_intent=6)
    source = tmp_path / "bitext.csv"
    with open(source, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "rag"
    call_command("reply_corpus", csv=source, out=out, heldout_every=6, heldout_offset=1, k=2, stdout=open(tmp_path / "log", "w"))

    held = list(csv.DictReader(open(out / "heldout.csv", encoding="utf-8")))
    kb = list(csv.DictReader(open(out / "kb.csv", encoding="utf-8")))
    examples = [json.loads(line) for line in open(out / "train.jsonl", encoding="utf-8")]
    assert len(held) == 3 and len(kb) == 15 and len(examples) == 15
    held_texts = {r["response"].strip() for r in held} | {r["instruction"].strip() for r in held}
    assert not held_texts & {r["response"].strip() for r in kb}
    for example in examples:
        prompt = "\n".join(m["content"] for m in example["messages"][:-1])
        target = example["messages"][-1]["content"]
        assert example["messages"][-1]["role"] == "assistant"
        # the row's own answer, with values neither its message nor a source gives as placeholders
        assert target == rag_target(line_ends_normalise(kb[example["kb_row"]]["response"]), message=prompt, sources=[])
        assert target not in prompt  # never its own answer
        assert not any(text in prompt for text in held_texts)  # nor a held-back row
        assert example["kb_row"] not in [s["kb_row"] for s in example["sources"]]
        assert 1 <= len(example["sources"]) <= 2
        # The runner's rag1 prompt, built from the same sources, is what was trained on.
        kb_row = kb[example["kb_row"]]
        assert example["intent"] == kb_row["intent"]
    first = examples[0]
    assert first["messages"][0] == reply_rag_messages(message="x", history=[], channel="chat", tone="neutral",
                                                      answers=[])[0]
    assert first["messages"][-2]["content"].startswith("Similar messages and our answers:\n\n[1] Customer: ")
