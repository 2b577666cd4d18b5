"""The reply runner: post-processing on crafted texts (placeholders filled, never invented; loops
cut; fallback), the runner in-process with the tiny model on a small real knowledge base, and one
slow test with the shipped SmolLM2."""

import pytest

from generation.kinds.reply import ReplyParamsSerializer
from generation.runner import NullContext
from generation.text.repetition import repeated_ngram
from workers.runners.reply import (
    HOLDING_REPLY,
    ReplyRequest,
    answer_split,
    lead_first,
    replies_draft,
    reply_candidates,
    reply_postprocess,
    reply_run,
)


def _params(**params) -> dict:
    serializer = ReplyParamsSerializer(data=params)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# --- placeholders -----------------------------------------------------------------------------


def test_postprocess_never_fills_a_placeholder_with_a_made_up_value():
    processed = reply_postprocess(
        "I see your order 55501234 is on its way, {{Customer Name}}. Track it at {{Tracking URL}}.",
        finish_reason="stop",
        sources=["Your order {{Order Number}} is on its way."],
        message="where is my order?",
        context={"Customer Name": "Ann"},
    )
    assert processed.text == "I see your order {{Order Number}} is on its way, Ann. Track it at {{Tracking URL}}."
    assert processed.invented == ["55501234"]
    filled = reply_postprocess(
        "Your order {{Order Number}} ships today. Thanks for waiting, we appreciate your patience here.",
        finish_reason="stop", sources=[], message="x", context={"order number": "A-1"},
    )
    assert filled.text.startswith("Your order A-1 ships today.")


def test_a_closing_line_right_after_the_steps_becomes_its_own_paragraph():
    body = "1. Log in to your account.\n2. Click Cancel next to the order.\nIf you need help, contact {{Live Chat}}."
    processed = reply_postprocess("I see you want to cancel your order. Here is how:", finish_reason="stop",
                                  sources=[body], message="cancel my order", context={}, body=body)
    assert "2. Click Cancel next to the order.\n\nIf you need help" in processed.text


# --- loops and fallback -----------------------------------------------------------------------


def test_degenerate_generation_falls_back_to_the_best_answer_with_placeholders_filled():
    processed = reply_postprocess(
        "ok ok ok ok ok ok ok ok ok ok ok ok",
        finish_reason="length",
        sources=["To track order {{Order Number}}, open the Orders page and click Track on the order."],
        message="where is it?",
        context={"Order Number": "A-9"},
        fallback_text="To track order {{Order Number}}, open the Orders page and click Track on the order.",
    )
    assert processed.fallback and processed.text == "To track order A-9, open the Orders page and click Track on the order."


def test_a_whole_written_reply_keeps_phrases_said_twice_and_loses_a_sentence_said_again():
    steps = ("I understand you would like to add products to order {{Order Number}}. Here is how:\n\n"
             "1. Sign in to your account on our {{Website Name}}.\n"
             "2. Look for the order with the code {{Order Number}}.\n"
             "3. Click on the order with the code {{Order Number}} and choose Add.")
    kept = reply_postprocess(steps, finish_reason="stop", sources=[], message="add to my order", context={})
    assert not kept.loop_cut and kept.text == steps  # the team's answers repeat short phrases too

    looping = steps + ("\n4. Follow the on-screen instructions to add the products you want.\n"
                       "5. Follow the on-screen instructions to add the products you want.")
    cut = reply_postprocess(looping, finish_reason="length", sources=[], message="add to my order", context={})
    assert cut.loop_cut and cut.text.endswith("add the products you want.") and cut.text.count("on-screen") == 1


def test_opening_plus_answer_body_without_repeats():
    processed = reply_postprocess(
        "I understand you want to cancel order {{Order Number}}. Here is how to cancel order {{Order Number}}.",
        finish_reason="stop",
        sources=[],
        message="cancel my order",
        context={},
        body="1. Sign in to your account.\n2. Open your orders and cancel order {{Order Number}}.\n3. Confirm.",
        fallback_text="x",
    )
    assert not processed.fallback
    assert processed.text.startswith("I understand you want to cancel order {{Order Number}}.\n\n1. Sign in")
    assert repeated_ngram(processed.text) is None


def test_an_answer_whose_first_paragraph_holds_a_list_keeps_the_list_in_its_body():
    """The opening is at most two sentences: a list inside the first paragraph went with it."""
    answer = ("I'm sorry that your code is not working. Here is what usually causes it:\n1. It has expired.\n"
              "2. The basket is under the minimum.\n\nIf none applies, reply with the code.")
    opening, body = answer_split(answer)
    assert opening == "I'm sorry that your code is not working. Here is what usually causes it:"
    assert body.startswith("1. It has expired.\n2. The basket") and body.endswith("reply with the code.")
    assert answer_split("Sure.\n\n1. Log in.\n2. Open it.") == ("Sure.", "1. Log in.\n2. Open it.")
    processed = reply_postprocess(opening, finish_reason="stop", sources=[answer], message="my code fails", context={},
                                  body=body)
    assert "1. It has expired.\n2. The basket is under the minimum." in processed.text


def test_one_line_ending_style_in_a_draft_joined_from_a_model_opening_and_a_windows_answer():
    processed = reply_postprocess(
        "I understand you want to cancel your order.\n",
        finish_reason="stop",
        sources=[],
        message="cancel my order",
        context={},
        body="Please follow these steps:\r\n\r\n1. Sign in to your account.\r\n2. Open your orders and press Cancel.",
        fallback_text="x",
    )
    assert "\r" not in processed.text
    assert processed.text.endswith("steps:\n\n1. Sign in to your account.\n2. Open your orders and press Cancel.")


# --- greeting and the channel's format ---------------------------------------------------------


def _formatted(channel: str, context: dict, tone: str = "neutral", text: str = "") -> str:
    from workers.runners.reply import reply_customer_name

    return reply_postprocess(
        text or "I understand you want to know where order {{Order Number}} is.",
        finish_reason="stop", sources=[], message="where is my order?",
        context={"Company Name": "Acme", **context}, body="1. Sign in to {{Website Name}}.\n2. Open Orders.",
        fallback_text="x", channel=channel, tone=tone, name=reply_customer_name(context),
    ).text


def test_an_email_greets_the_customer_by_name_and_signs_off_with_the_company_name():
    text = _formatted("email", {"Customer Name": "Ann", "Order Number": "A-1"})
    assert text == (
        "Hello Ann,\n\nI understand you want to know where order A-1 is.\n\n1. Sign in to {{Website Name}}.\n"
        "2. Open Orders.\n\nKind regards,\nAcme Customer Support"
    )
    assert _formatted("email", {"customer_name": "Ann"}, tone="formal").startswith("Dear Ann,\n\n")
    assert _formatted("email", {"first name": "Ann"}, tone="friendly").endswith("Best wishes,\nAcme Customer Support")
    # no name: a greeting all the same; no company name in the profile: the placeholder stays visible
    unnamed = reply_postprocess("Thanks for reaching out about your order today, we can help.", finish_reason="stop",
                                sources=[], message="x", context={}, channel="email")
    assert unnamed.text.startswith("Hello,\n\nThanks") and unnamed.text.endswith("Kind regards,\n{{Company Name}} Customer Support")
    assert unnamed.unfilled == ["Company Name"]


def test_a_chat_message_greets_by_name_in_one_line_without_a_sign_off():
    text = _formatted("chat", {"Customer Name": "Ann"})
    assert text.startswith("Hi Ann! I understand you want to know where order {{Order Number}} is.\n\n1. Sign in")
    assert text.endswith("2. Open Orders.") and "regards" not in text.lower() and "Acme" not in text
    assert _formatted("chat", {}).startswith("I understand")  # no name: no greeting
    assert _formatted("phone", {"Name": "Ann"}).startswith("Hello Ann. I understand")


def test_a_reply_that_already_greets_is_not_greeted_twice_and_no_masked_value_is_a_name():
    text = _formatted("email", {"Customer Name": "Ann"}, text="Hi Ann, I see you want to know where your order is.")
    assert text.startswith("Hi Ann, I see") and text.count("Ann") == 1
    assert _formatted("chat", {"Customer Name": "[EMAIL]"}).startswith("I understand")


# --- the runner -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_runner_with_the_tiny_model_cites_sources(load_kb, tiny_lm, settings):
    load_kb("conversations")
    params = _params(
        message="where is my package ORD-55512? mail me at a@b.example",
        n=2, max_new_tokens=24, k=3, seed=3, context={"Order Number": "ORD-55512"},
    )
    assert "ORD-55512" not in params["message"] and "a@b.example" not in params["message"]
    result = reply_run(params=params, ctx=NullContext())
    assert len(result.candidates) == 2
    for candidate in result.candidates:
        meta = candidate.metadata
        assert len(meta["sources"]) == 3 and all(s["ref"].startswith("conversations:") for s in meta["sources"])
        assert meta["intent"] == "track_order"
        assert -1.0 <= meta["grounding"] <= 1.0 and candidate.score == meta["grounding"]
        assert repeated_ngram(candidate.text) is None
        assert "a@b.example" not in candidate.text
        assert candidate.finish_reason in ("stop", "length")
    assert result.usage["sources"] == 3


@pytest.mark.django_db
def test_replies_draft_excludes_exact_duplicates_of_the_message(load_kb, bitext_fixture):
    load_kb("conversations")
    rows, _ = bitext_fixture
    message = rows["conversations"][0]["instruction"]
    (candidates,) = replies_draft([{"message": message, "max_new_tokens": 16, "k": 3}], exclude_messages=[message])
    from generation.privacy import pii_mask

    assert all(s["title"] != pii_mask(message).text for s in candidates[0].metadata["sources"])


@pytest.mark.slow
@pytest.mark.django_db
def test_smollm2_reply_to_order_tracking_cites_track_order_without_loops(load_kb, smollm2, settings):
    settings.GENAI_LM_MODEL = "smollm2"
    load_kb("conversations")
    params = _params(message="Hi, I would like to track my order ORD-77812, where is it now?", max_new_tokens=160)
    result = reply_run(params=params, ctx=NullContext())
    (candidate,) = result.candidates
    assert candidate.metadata["sources"][0]["ref"].startswith("conversations:")
    assert candidate.metadata["intent"] == "track_order"
    from generation.models import Conversation

    intents = {
        Conversation.objects.get(pk=int(s["ref"].split(":")[1])).intent for s in candidate.metadata["sources"]
    }
    assert "track_order" in intents
    assert repeated_ngram(candidate.text) is None
    assert len(candidate.text.split()) >= 12
    assert "ORD-77812" not in candidate.text  # masked before prompting; no context variable fills it


class _Recording(NullContext):
    def __init__(self):
        super().__init__()
        self.streamed: dict[int, str] = {}

    def text_emit(self, deltas, *, tokens=0):
        for index, text in deltas.items():
            self.streamed[index] = self.streamed.get(index, "") + text


@pytest.mark.django_db
def test_each_candidate_streams_under_its_own_index(load_kb):
    """n = 2 at temperature 0 is two engine requests (greedy, then sampled): their streams must
    not share index 0; each stream is that candidate's opening, prefix first."""
    load_kb("conversations")
    ctx = _Recording()
    result = reply_run(params=_params(message="how do I get a refund?", n=2, max_new_tokens=16, seed=1), ctx=ctx)
    assert set(ctx.streamed) == {0, 1}
    prefix = " ".join(result.candidates[0].metadata["sources"][0]["snippet"].split()[:5])
    assert all(text.startswith(prefix[:10]) for text in ctx.streamed.values())


@pytest.mark.django_db
def test_a_reply_job_runs_through_the_pipeline(load_kb, api_for):
    from generation.models import Job
    from workers.runners import job_run

    load_kb("conversations")
    client = api_for("agent")
    response = client.post(
        "/api/jobs/",
        {"kind": "reply", "params": {"message": "I forgot my password, mail me at x@y.example", "max_new_tokens": 16,
                                     "context": {"Customer Name": "Ann"}}},
        format="json",
    )
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert "x@y.example" not in str(job.params)
    assert job_run(job_id=str(job.id), worker_id="w1") == "succeeded"
    body = client.get(f"/api/jobs/{job.id}").json()
    (candidate,) = body["candidates"]
    assert candidate["metadata"]["intent"] == "recover_password"
    assert candidate["metadata"]["sources"] and candidate["text"]


@pytest.mark.django_db
def test_the_company_profile_fills_every_draft_in_the_api_and_the_agent_page(load_kb, api_for, client):
    """Issue 17: drafts showed {{Website Name}}, {{Customer Support Phone Number}} and {{Live Chat}}."""
    from generation.models import Job
    from generation.services.company import company_profile_update
    from tests.factories import UserFactory
    from workers.runners import job_run

    load_kb("conversations")
    company_profile_update(
        user=UserFactory(role="admin"), company_name="Acme", website_name="acme.example",
        support_phone="+1 800 555 0100", live_chat="the live chat at acme.example/chat",
    )
    api = api_for("agent")
    response = api.post("/api/jobs/", {"kind": "reply", "params": {
        "message": "I forgot my password", "max_new_tokens": 16, "context": {"website name": "the Acme app"}}}, format="json")
    job = Job.objects.get(pk=response.json()["id"])
    assert job_run(job_id=str(job.id), worker_id="w1") == "succeeded"
    (candidate,) = api.get(f"/api/jobs/{job.id}").json()["candidates"]
    text = candidate["text"]
    assert "the Acme app" in text and "acme.example." not in text  # the request's context wins over the profile
    assert "+1 800 555 0100" in text and "the live chat at acme.example/chat" in text
    for filled in ("Website Name", "Customer Support Phone Number", "Live Chat"):
        assert "{{" + filled + "}}" not in text
    # what nobody filled stays visible and is listed on the candidate
    assert "{{Customer Support Availability}}" in text
    assert candidate["metadata"]["unfilled_placeholders"] == ["Customer Support Availability"]
    assert not candidate["withheld"] and not candidate["metadata"]["safety"]["flagged"]  # the company's phone is no leak
    client.force_login(api.user)
    page = client.get(f"/agent/jobs/{job.id}/drafts").content.decode()
    assert "+1 800 555 0100" in page and "the Acme app" in page
    assert 'id="unfilled-' in page and "Still to fill before sending: <code>{{Customer Support Availability}}</code>" in page


@pytest.mark.django_db
def test_an_agent_drafts_an_email_on_the_page_greeting_the_customer_and_signed_by_the_company(load_kb, client):
    from generation.models import Job
    from generation.services.company import company_profile_update
    from tests.factories import UserFactory
    from workers.runners import job_run

    load_kb("conversations")
    company_profile_update(user=UserFactory(role="reviewer"), company_name="Acme")
    agent = UserFactory(role="agent")
    client.force_login(agent)
    created = client.post("/agent/", {"message": "I forgot my password\r\nplease help", "channel": "email", "tone": "formal",
                                      "n": "1", "length": "short", "customer_name": "Ann"})
    assert created.status_code == 201
    job = Job.objects.get(owner=agent)
    assert job_run(job_id=str(job.id), worker_id="w1") == "succeeded"
    (candidate,) = job.candidates.all()
    assert candidate.text.startswith("Dear Ann,\n\n") and candidate.text.endswith("\n\nYours sincerely,\nAcme Customer Support")
    assert "\r" not in candidate.text
    page = client.get(f"/agent/jobs/{job.id}/drafts").content.decode()
    assert "Dear Ann," in page and "Acme Customer Support" in page
    assert "No answer in the knowledge base matched" not in page

    # a message nothing in the knowledge base answers: a holding reply, and the page says why
    client.post("/agent/", {"message": "What is the capital of Peru?", "channel": "chat", "n": "1", "length": "short"})
    job = Job.objects.filter(owner=agent).order_by("-created_at").first()
    assert job_run(job_id=str(job.id), worker_id="w1") == "succeeded"
    page = client.get(f"/agent/jobs/{job.id}/drafts").content.decode()
    assert "No answer in the knowledge base matched this message" in page and "looking into your question" in page


@pytest.mark.django_db
def test_a_source_below_the_relevance_setting_is_not_offered(load_kb, settings):
    load_kb("conversations")
    off_topic = reply_run(params=_params(message="What is the capital of Peru?", max_new_tokens=16), ctx=NullContext())
    (candidate,) = off_topic.candidates
    assert candidate.metadata["sources"] == [] and off_topic.usage["sources"] == 0
    assert candidate.metadata["intent"] == ""
    # nothing to ground it in: a holding reply, no model text, and the agent is told
    assert candidate.text == HOLDING_REPLY and candidate.metadata["no_source"] and candidate.completion_tokens == 0
    settings.GENAI_REPLY_WITHOUT_SOURCES = "model"  # the model writes the whole reply unaided
    (unaided,) = reply_run(params=_params(message="What is the capital of Peru?", max_new_tokens=16),
                           ctx=NullContext()).candidates
    assert unaided.text != HOLDING_REPLY and unaided.completion_tokens > 0 and "no_source" not in unaided.metadata
    on_topic = reply_run(params=_params(message="I forgot my password", max_new_tokens=16), ctx=NullContext())
    scores = [s["score"] for s in on_topic.candidates[0].metadata["sources"]]
    assert len(scores) == 3 and min(scores) >= settings.GENAI_REPLY_MIN_SOURCE_SCORE
    settings.GENAI_REPLY_MIN_SOURCE_SCORE = 0.0
    again = reply_run(params=_params(message="What is the capital of Peru?", max_new_tokens=16), ctx=NullContext())
    assert len(again.candidates[0].metadata["sources"]) == 3


def _intent_of(source: dict) -> str:
    from generation.models import Conversation

    return Conversation.objects.get(pk=int(source["ref"].split(":")[1])).intent


@pytest.mark.django_db
def test_a_confident_intent_ranks_sources_of_that_intent_first(load_kb, monkeypatch, settings):
    """"sign up for a new profile" retrieves a password reset first; a classifier that is sure
    the message is create_account puts an account-creation answer first."""
    load_kb("conversations")
    confidence = {"value": 0.9}
    monkeypatch.setattr("workers.runtime.intent.intent_predict",
                        lambda texts, **kw: ("intent-test@1", [("create_account", confidence["value"])] * len(texts)))
    params = _params(message="how do I sign up for a new profile?", max_new_tokens=16)
    meta = reply_run(params=params, ctx=NullContext()).candidates[0].metadata
    assert (meta["intent"], meta["intent_source"], meta["intent_boost"]) == ("create_account", "classifier", True)
    assert _intent_of(meta["sources"][0]) == "create_account" and meta["sources"][0]["boosted"]
    assert all(s["boosted"] == (_intent_of(s) == "create_account") for s in meta["sources"])
    confidence["value"] = settings.GENAI_REPLY_INTENT_CONFIDENCE - 0.01  # not sure enough: the cosine order
    meta = reply_run(params=params, ctx=NullContext()).candidates[0].metadata
    assert (meta["intent"], meta["intent_boost"]) == ("create_account", False)
    assert _intent_of(meta["sources"][0]) == "recover_password" and not any(s["boosted"] for s in meta["sources"])


@pytest.mark.django_db
def test_messages_drafted_together_keep_their_own_intent_chosen_among_the_knowledge_bases(load_kb, monkeypatch, settings):
    """A batch of messages (replies_batch, replies_evaluate) gets one intent per message, each
    predicted among the intents the knowledge base answers, not among every label the
    classifier knows (a Banking77 label would boost nothing here)."""
    from generation.models import Conversation

    load_kb("conversations")
    seen = {}

    def predict(texts, **kw):
        seen["labels"] = kw.get("labels")
        return "intent-test@1", [("track_order", 0.9), ("recover_password", 0.8)][: len(texts)]

    monkeypatch.setattr("workers.runtime.intent.intent_predict", predict)
    first, second = replies_draft([{"message": "where is my parcel?", "max_new_tokens": 16},
                                   {"message": "I forgot my password", "max_new_tokens": 16}])
    assert first[0].metadata["intent"] == "track_order" and second[0].metadata["intent"] == "recover_password"
    known = set(Conversation.objects.values_list("intent", flat=True))
    assert seen["labels"] == known and {"track_order", "recover_password"} <= known
    settings.GENAI_REPLY_INTENTS_FROM_KB = False
    replies_draft([{"message": "where is my parcel?", "max_new_tokens": 16}])
    assert seen["labels"] is None


@pytest.mark.django_db
def test_history_over_the_prompt_limit_loses_its_oldest_turns(load_kb, settings):
    load_kb("conversations")
    settings.GENAI_MAX_PROMPT_TOKENS = 600
    history = [{"role": "customer" if i % 2 == 0 else "agent", "content": f"turn {i} " + "words " * 150} for i in range(6)]
    result = reply_run(params=_params(message="cancel my order", history=history, max_new_tokens=16), ctx=NullContext())
    assert result.usage["prompt_tokens"] <= 600
    assert result.candidates[0].text


# --- the retrieval-augmented reply model ---------------------------------------------------------


def test_a_few_rag_fine_tuning_steps_change_replies_which_keep_after_reload(load_kb, bitext_fixture, tmp_path,
                                                                             settings, make_user):
    """reply_corpus's examples, a rag1 adapter trained for a few steps on the tiny model and
    promoted: reply jobs get the prompt it was trained on and write differently from the base
    model, and the same after the merged copy is dropped and rebuilt from its files."""
    import csv
    import dataclasses
    import io

    from django.core.management import call_command

    from generation.services.model_versions import model_version_promote
    from workers.runners.finetune import finetune_run
    from workers.runtime.adapters import adapters_clear
    from workers.runtime.models import lm_get

    load_kb("conversations")
    rows, _ = bitext_fixture
    source = tmp_path / "bitext.csv"
    with open(source, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows["conversations"][0]))
        writer.writeheader()
        writer.writerows(rows["conversations"][:24])
    call_command("reply_corpus", csv=source, out=tmp_path / "rag", k=2, stdout=io.StringIO())
    settings.GENAI_FINETUNE_DATA_DIRS = [str(tmp_path)]
    params = {"purpose": "reply", "name": "reply-rag", "dataset_jsonl": str(tmp_path / "rag" / "train.jsonl"),
              "include_bitext": False, "prompt_format": "rag1", "max_steps": 4, "batch_size": 2, "lr": 5e-2,
              "rank": 4, "alpha": 8, "top_layers": 1, "eval_every": 2, "max_validation": 2, "eval_replies": 0,
              "max_tokens": 384}
    result = finetune_run(params=params, ctx=NullContext())
    from generation.models import ModelVersion

    version = ModelVersion.objects.get(family="lm_adapter", name="reply-rag")
    assert result.model_version == "reply-rag@1" and version.config["prompt_format"] == "rag1"

    message = {"message": "I want to cancel the order I placed yesterday", "max_new_tokens": 24, "k": 3}
    # The base model given the same rag1 prompt: what the weights change is measured against it.
    base_lm = dataclasses.replace(lm_get(), prompt_format="rag1")
    (base,) = replies_draft([message], lm=base_lm)[0]
    assert base.metadata["prompt_format"] == "rag1"
    assert reply_run(params=_params(**message), ctx=NullContext()).candidates[0].metadata["prompt_format"] == "opening"
    model_version_promote(version=version, user=make_user("reviewer"))
    adapters_clear()
    tuned = reply_run(params=_params(**message), ctx=NullContext())
    assert tuned.model_version.endswith("+reply-rag@1")
    (candidate,) = tuned.candidates
    assert candidate.metadata["prompt_format"] == "rag1" and candidate.metadata["sources"]
    assert candidate.metadata.get("generated", candidate.text) != base.metadata.get("generated", base.text)
    adapters_clear()  # the merged copy rebuilt from the stored files writes the same
    again = reply_run(params=_params(**message), ctx=NullContext()).candidates[0]
    assert (again.text, again.metadata.get("generated")) == (candidate.text, candidate.metadata.get("generated"))
    adapters_clear()


def _hit(number: int, score: float, text: str):
    from workers.runtime.retrieval import KnowledgeHit

    return KnowledgeHit(kind="conversation", id=number, score=score, title=f"message {number}", text=text,
                        source="test", external_id=str(number), language="en")


def test_the_draft_follows_the_answer_its_neighbours_agree_with_not_an_odd_best_match(settings):
    refund = "To request a refund, open {{Order History}}, choose the order and click Request refund. It takes 5 days."
    hits = [
        _hit(1, 0.71, "Our opening hours are Monday to Friday, 9:00 to 17:00. You can call us then."),
        _hit(2, 0.70, refund),
        _hit(3, 0.69, refund.replace("click", "press")),
        _hit(4, 0.68, "Open {{Order History}}, pick the order and press Request refund; the money is back in 5 days."),
    ]
    settings.GENAI_REPLY_CONSENSUS_POOL = 8
    lead = lead_first(hits, 3)
    assert "refund" in lead[0].text and len(lead) == 3
    assert [h.id for h in lead][1:] == [h.id for h in hits if h.id != lead[0].id][:2]  # the odd best match stays offered

    settings.GENAI_REPLY_CONSENSUS_POOL = 0
    assert [h.id for h in lead_first(hits, 3)] == [1, 2, 3]


def test_a_doc_that_ranks_first_leads_as_it_is(settings):
    from dataclasses import replace

    refund = "To request a refund, open {{Order History}}, choose the order and click Request refund."
    hits = [replace(_hit(9, 0.60, "Refunds reach your card within 5 working days of the return arriving."), kind="docs"),
            _hit(2, 0.70, refund), _hit(3, 0.69, refund.replace("click", "press")), _hit(4, 0.68, refund + " Done.")]
    settings.GENAI_REPLY_CONSENSUS_POOL = 8
    assert [h.id for h in lead_first(hits, 3)] == [9, 2, 3]  # the conversations agreeing do not outvote it
    assert lead_first(hits[1:], 3)[0].kind == "conversation"


@pytest.mark.django_db
def test_an_opening_that_states_a_figure_no_source_does_is_replaced_by_the_answers_own(minilm):
    from workers.ml.decoding import Completion

    answer = ("Every product has a 2-year warranty against defects, and our tents have a lifetime repair guarantee.\n\n"
              "Reply with your order number and a photo of the fault; we answer within 2 working days.")
    request = ReplyRequest(params=_params(message="My new tent arrived with a torn seam, what now?"),
                           message="My new tent arrived with a torn seam, what now?", history=[],
                           hits=[_hit(1, 0.6, answer)])
    invented = "Every product has a 10-year warranty against defects, and our tents have a lifetime repair guarantee."
    faithful = "I'm sorry your tent arrived with a torn seam; every product has a 2-year warranty against defects."
    candidates = reply_candidates(request, [Completion(invented, "stop", 20, None), Completion(faithful, "stop", 20, None)], 50)
    assert "10-year" not in candidates[0].text and "2-year warranty" in candidates[0].text
    assert candidates[0].metadata["opening"] == "retrieved" and "10-year" in candidates[0].metadata["generated"]
    assert candidates[1].metadata["opening"] == "generated" and candidates[1].text.startswith("I'm sorry your tent")


@pytest.mark.django_db
def test_an_opening_that_guesses_a_cause_no_source_gives_is_replaced_by_the_answers_own(minilm):
    from workers.ml.decoding import Completion

    message = "I was charged for my order but never got a confirmation e-mail."
    answer = ("I understand you were charged but have not received your order confirmation.\n\n"
              "Please check your spam folder first, then open {{Order History}} in your account: every order placed is there.")
    request = ReplyRequest(params=_params(message=message), message=message, history=[], hits=[_hit(1, 0.6, answer)])
    guessed = "I'm sorry; it's possible that the order may have been delayed due to unforeseen circumstances."
    faithful = "I'm sorry you were charged and have not received your order confirmation."
    candidates = reply_candidates(request, [Completion(guessed, "stop", 20, None), Completion(faithful, "stop", 20, None)], 50)
    assert "unforeseen" not in candidates[0].text and candidates[0].metadata["opening"] == "retrieved"
    assert candidates[1].metadata["opening"] == "generated" and candidates[1].text.startswith("I'm sorry you were charged")


@pytest.mark.django_db
def test_a_late_delivery_is_answered_by_the_shops_faq_not_the_order_tracking_steps(load_kb, minilm):
    """The issue's example: with only past conversations the draft gave the order-tracking steps;
    with the demo shop's FAQ in the knowledge base, its late-delivery answer leads."""
    from django.conf import settings as django_settings

    from generation.models import KnowledgeDoc
    from generation.services.knowledge import embedding_model_name, knowledge_embeddings_store, knowledge_import_file
    from tests.factories import UserFactory
    from workers.runners.embed import knowledge_vectors_encode

    load_kb("conversations")
    with open(django_settings.BASE_DIR / "data/demo/acme_faq.csv", "rb") as file:
        knowledge_import_file(user=UserFactory(role="agent"), file=file, name="acme_faq.csv", kind="docs")
    docs = list(KnowledgeDoc.objects.all())
    knowledge_embeddings_store(kind="docs", model_name=embedding_model_name(), vectors=[
        (d.pk, d.content_hash, v) for d, v in zip(docs, knowledge_vectors_encode(minilm, docs, batch_size=16))])
    message = "I ordered a jacket two weeks ago (order ORD-77812) and it still has not arrived"
    (candidate,) = reply_run(params=_params(message=message, max_new_tokens=24), ctx=NullContext()).candidates
    lead = KnowledgeDoc.objects.get(pk=int(candidate.metadata["sources"][0]["ref"].split(":")[1]))
    assert candidate.metadata["sources"][0]["ref"].startswith("docs:") and lead.external_id == "faq-late-delivery"
    assert candidate.metadata["intent"] == "track_order"  # the doc's first tag, without a classifier
    assert "within 3 to 5 working days" in candidate.text and "{{Order Tracking}}" not in candidate.text
