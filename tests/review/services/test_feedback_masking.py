from review.models import Outcome
from review.services.feedback import candidate_send, feedback_submit


def test_edited_text_and_comments_are_stored_masked(draft):
    candidate = draft(text="Your order ships tomorrow.")
    agent = candidate.job.owner
    edited = "Your order ships today; card 4111 1111 1111 1111 charged, receipt to jane.doe@example.com."
    feedback, _ = candidate_send(candidate=candidate, user=agent, text=edited)
    feedback.refresh_from_db()
    assert feedback.outcome == Outcome.SENT_EDITED
    assert feedback.edited_text == "Your order ships today; card [CARD] charged, receipt to [EMAIL]."
    feedback = feedback_submit(candidate=candidate, user=agent, comment="call me on +44 20 7946 0958")
    feedback.refresh_from_db()
    assert feedback.comment == "call me on [PHONE]"
