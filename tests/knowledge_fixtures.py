"""A small knowledge base from real Bitext rows, and paraphrased questions written by hand
(not taken from the data) with the intent each should retrieve."""

import csv
from pathlib import Path

from django.conf import settings

BITEXT_CSV = Path(settings.SHARED_DATA_DIR) / "customer_support" / "bitext_support_train.csv"

# Intents whose meanings do not overlap (the data also has near-synonyms, e.g. track_order and
# delivery_period, that no retriever can tell apart from a short question).
FIXTURE_INTENTS = (
    "cancel_order", "track_order", "change_shipping_address", "get_refund", "track_refund", "recover_password",
    "delete_account", "contact_human_agent", "newsletter_subscription", "check_payment_methods",
    "delivery_options", "get_invoice", "complaint", "create_account", "check_cancellation_fee", "review",
    "payment_issue", "place_order",
)
ROWS_PER_INTENT = 8

PARAPHRASES = [
    ("I changed my mind, please call off the order I placed yesterday", "cancel_order"),
    ("how do I stop my purchase ORD-44821 before it is shipped?", "cancel_order"),
    ("where is my package right now?", "track_order"),
    ("can you tell me the status of the order I placed last week?", "track_order"),
    ("I moved house, the parcel must go to my new address", "change_shipping_address"),
    ("need to correct the street where my stuff gets delivered", "change_shipping_address"),
    ("this item arrived broken, I want my money returned", "get_refund"),
    ("how can I be reimbursed for my purchase?", "get_refund"),
    ("I was promised a refund two weeks ago, has it been sent yet?", "track_refund"),
    ("what is the status of my reimbursement?", "track_refund"),
    ("I can't remember my login password", "recover_password"),
    ("locked out of my profile, need to reset the passcode", "recover_password"),
    ("please close my profile permanently", "delete_account"),
    ("how do I get rid of my account for good?", "delete_account"),
    ("stop the bot, I want a real human", "contact_human_agent"),
    ("can I speak with an actual person please?", "contact_human_agent"),
    ("sign me up for your email updates", "newsletter_subscription"),
    ("how do I join your mailing list?", "newsletter_subscription"),
    ("which cards do you accept?", "check_payment_methods"),
    ("can I pay with PayPal or only by credit card?", "check_payment_methods"),
    ("what shipping choices do you offer?", "delivery_options"),
    ("is express delivery available?", "delivery_options"),
    ("send me the receipt for my last purchase", "get_invoice"),
    ("I need a copy of my bill for my accountant", "get_invoice"),
    ("your service is terrible and I want to file a formal grievance", "complaint"),
    ("I'm very unhappy with how I was treated and want to complain", "complaint"),
    ("how do I sign up for a new profile?", "create_account"),
    ("I'd like to open an account with your shop", "create_account"),
    ("is there a penalty if I end my contract early?", "check_cancellation_fee"),
    ("how much will it cost me to terminate early?", "check_cancellation_fee"),
    ("I want to leave feedback about your product", "review"),
    ("where can I write a review of your service?", "review"),
    ("my card keeps getting declined at checkout", "payment_issue"),
    ("something went wrong when I tried to pay online", "payment_issue"),
    ("I want to buy a few of your products", "place_order"),
    ("how do I purchase several items from you?", "place_order"),
]


def bitext_rows(intents=FIXTURE_INTENTS, per_intent: int = ROWS_PER_INTENT) -> list[dict]:
    """The first ``per_intent`` rows of each intent, in file order, with all their columns."""
    taken: dict[str, int] = {}
    rows = []
    with open(BITEXT_CSV, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["intent"] in intents and taken.get(row["intent"], 0) < per_intent:
                taken[row["intent"]] = taken.get(row["intent"], 0) + 1
                rows.append(row)
    return rows


def csv_text(rows: list[dict]) -> str:
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
