import pytest

from generation.runner import CandidateResult
from review.services.safety import candidates_screen, text_screen
from tests.factories import JobFactory


def _categories(verdict):
    return {r["category"] for r in verdict["reasons"]}


def test_clean_text_passes():
    verdict = text_screen("Thanks for your order; it ships tomorrow and arrives within 3 days.")
    assert verdict["flagged"] is False and verdict["reasons"] == [] and verdict["toxicity"] < 0.5


def test_blocked_terms_and_topics_from_settings(settings):
    settings.GENAI_SAFETY_BLOCKED_TERMS = ["MegaMart", "free forever"]
    settings.GENAI_SAFETY_BLOCKED_TOPICS = {"weapons": "firearm|bomb"}
    verdict = text_screen("Cheaper than megamart and free forever, unlike a firearm.")
    assert _categories(verdict) == {"blocked_term", "blocked_topic"}
    assert any("megamart" in r["detail"] for r in verdict["reasons"])
    assert not text_screen("The bombastic MegaMarts sale.", fast=True)["flagged"]  # whole words only


def test_leaked_personal_data_unless_the_input_gave_it():
    verdict = text_screen("Write to jane.doe@example.com or call +44 20 7946 0958.")
    assert _categories(verdict) == {"personal_data"}
    assert "EMAIL" in verdict["reasons"][0]["detail"] and "PHONE" in verdict["reasons"][0]["detail"]
    assert not text_screen("We emailed jane.doe@example.com.", allowed=["jane.doe@example.com"])["flagged"]


def test_toxic_language_by_classifier_and_word_list():
    assert "toxicity" in _categories(text_screen("You are a stupid idiot, shut up and stop wasting my time."))
    assert "toxicity" in _categories(text_screen("what the f*ck is this sh1t", fast=True))  # leetspeak, no classifier


@pytest.mark.django_db
def test_candidates_screen_keeps_metadata_and_adds_the_verdict(settings):
    job = JobFactory(kind="reply", params={"message": "Hi", "context": {"Order Number": "ORD-12345"}})
    screened = candidates_screen(job=job, candidates=[
        CandidateResult(text="Order ORD-12345 ships today.", finish_reason="stop", metadata={"sources": [1]}),
        CandidateResult(text="Call me on +1 415 555 0100, idiot.", finish_reason="stop"),
    ])
    assert screened[0]["sources"] == [1] and screened[0]["safety"]["flagged"] is False
    assert screened[1]["safety"]["flagged"] is True
    assert {"personal_data", "toxicity"} <= _categories(screened[1]["safety"])
    echo = JobFactory(kind="echo")
    assert candidates_screen(job=echo, candidates=[CandidateResult(text="idiot", finish_reason="stop")]) == [{}]
    training = JobFactory(kind="finetune", queue="train")
    assert candidates_screen(job=training, candidates=[CandidateResult(text="eval 0123456789", finish_reason="stop")]) == [{}]


@pytest.mark.django_db
def test_job_succeed_stores_the_verdict_on_every_candidate():
    from generation.runner import JobResult
    from generation.services.jobs import job_succeed

    job = JobFactory(kind="reply", status="running", worker_id="w1", params={"message": "Hi"})
    job_succeed(job_id=str(job.id), worker_id="w1", result=JobResult(candidates=[
        CandidateResult(text="It ships today.", finish_reason="stop", metadata={"intent": "shipping"}),
        CandidateResult(text="Mail me at eve@example.org, you moron.", finish_reason="stop"),
    ]))
    first, second = job.candidates.order_by("index")
    assert first.metadata["intent"] == "shipping" and first.metadata["safety"]["flagged"] is False
    assert second.metadata["safety"]["flagged"] is True
    assert {"personal_data", "toxicity"} <= _categories(second.metadata["safety"])


def test_order_numbers_are_not_personal_data_but_a_phone_still_is():
    text = "Please look for the purchase with the reference number 113542617735902 and order 732201349959."
    assert not text_screen(text, fast=True)["flagged"]
    assert text_screen(text + " Or call me on 0207 946 0958.", fast=True)["flagged"]


def test_one_abusive_sentence_in_a_long_polite_reply_is_caught():
    polite = "Thank you for reaching out about your delivery. " * 8
    verdict = text_screen(polite + "Honestly, you are a pathetic moron. " + polite)
    assert "toxicity" in _categories(verdict) and verdict["toxicity"] >= 0.85
