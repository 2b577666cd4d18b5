import pytest

from generation import roles
from generation.exceptions import Forbidden, InvalidInput
from review.models import Feedback, Outcome
from review.services.feedback import candidate_send, feedback_submit

pytestmark = pytest.mark.django_db


def test_feedback_is_one_row_per_person_updated_field_by_field(draft):
    candidate = draft()
    agent = candidate.job.owner
    feedback_submit(candidate=candidate, user=agent, thumb="up", stars=4)
    feedback_submit(candidate=candidate, user=agent, reason="incomplete", comment="No tracking link.")
    row = Feedback.objects.get()
    assert (row.thumb, row.stars, row.reason, row.comment, row.outcome) == ("up", 4, "incomplete", "No tracking link.", "")


def test_send_as_is_and_edited_store_the_edit_distance(draft):
    candidate = draft(text="Your order ships tomorrow.")
    agent = candidate.job.owner
    feedback, item = candidate_send(candidate=candidate, user=agent)
    assert item is None and feedback.outcome == Outcome.SENT_AS_IS and feedback.edit_distance == 0
    other = draft(text="Your order ships tomorrow.", owner=agent)
    feedback, _ = candidate_send(candidate=other, user=agent, text="Your order ships today.")
    assert feedback.outcome == Outcome.SENT_EDITED and feedback.edited_text == "Your order ships today."
    assert feedback.edit_distance == 6  # "morrow" -> "day": 3 substitutions, 3 deletions
    assert feedback.decided_at is not None


def test_discard_and_invalid_values(draft):
    candidate = draft()
    agent = candidate.job.owner
    assert feedback_submit(candidate=candidate, user=agent, outcome="discarded").edit_distance is None
    with pytest.raises(InvalidInput) as error:
        feedback_submit(candidate=candidate, user=agent, stars=6, reason="rude", thumb="sideways", outcome="kept")
    assert set(error.value.errors) == {"stars", "reason", "thumb", "outcome"}
    with pytest.raises(InvalidInput):
        candidate_send(candidate=candidate, user=agent, text="   ")


def test_nobody_acts_on_another_agents_draft_but_reviewers(draft, make_user, reviewer):
    candidate = draft()
    with pytest.raises(Forbidden):
        feedback_submit(candidate=candidate, user=make_user(roles.AGENT), thumb="up")
    assert feedback_submit(candidate=candidate, user=reviewer, thumb="down").thumb == "down"


def test_flagged_drafts_cannot_be_sent_by_agents(draft):
    candidate = draft(metadata={"safety": {"flagged": True, "reasons": [{"category": "toxicity", "detail": "x"}]}})
    with pytest.raises(Forbidden):
        candidate_send(candidate=candidate, user=candidate.job.owner)
