import pytest
from django.core.management import call_command

from generation.models import Conversation, Job, KnowledgeDoc
from monitoring.models import AlertRule, NewsItem
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


def test_demo_setup_seeds_users_knowledge_and_one_training_per_missing_model(settings, tmp_path, capsys):
    csv = tmp_path / "bitext.csv"
    csv.write_text(
        "instruction,response,intent,category\n"
        "where is my order,Your order {{Order Number}} is on its way.,track_order,ORDER\n"
        "cancel my order,I have cancelled order {{Order Number}}.,cancel_order,ORDER\n"
    )
    settings.GENAI_FINETUNE_BITEXT_CSV = str(csv)
    ModelVersionFactory(family="vae", name="copy-vae")  # already trained: not queued again

    call_command("demo_setup")
    out = capsys.readouterr().out
    assert "demo-agent" in out and "demo-admin" in out
    assert Conversation.objects.count() == 2
    # the demo shop's FAQ beside them: what the conversations do not answer (a late parcel, ...)
    assert KnowledgeDoc.objects.filter(source="acme_faq").count() == 13
    assert KnowledgeDoc.objects.filter(external_id="faq-late-delivery", tags__0="track_order").exists()
    trainings = Job.objects.filter(queue="train").order_by("created_at")
    # the quick MiniLM classifier first, the all-mpnet-base-v2 one after it, both promoted if better
    assert list(trainings.values_list("kind", flat=True)) == ["intent_train", "sentiment_train", "sentiment_train"]
    sentiment = [job.params for job in trainings.filter(kind="sentiment_train")]
    assert [params["base"] for params in sentiment] == ["all-minilm-l6-v2", "all-mpnet-base-v2"]
    assert all(params["promote_if_better"] for params in sentiment)
    assert sentiment[1]["extra_train_csv"].endswith("data/finance_news/train.csv")  # and the team's news sentences

    # The monitoring demo: news waiting for the sentiment model, its watch list and rules.
    demo_items = NewsItem.objects.filter(source="demo-tweets").count()
    assert demo_items >= 200 and f"Monitoring demo: {demo_items} news items about BA, TSLA, AMZN, AAPL, OIL" in out
    assert AlertRule.objects.count() == 2 and not Job.objects.filter(kind="sentiment_score").exists()

    call_command("demo_setup")  # idempotent: nothing imported or queued twice
    assert Conversation.objects.count() == 2 and KnowledgeDoc.objects.count() == 13
    assert Job.objects.filter(queue="train").count() == 3
    assert NewsItem.objects.count() == demo_items and AlertRule.objects.count() == 2
    call_command("demo_setup", "--no-seed")
    assert Job.objects.filter(queue="train").count() == 3


def test_demo_setup_fills_an_empty_company_profile_and_keeps_one_that_is_set(settings, tmp_path, capsys):
    from generation.selectors import company_profile_get, company_profile_values
    from generation.services.company import DEMO_COMPANY_PROFILE, company_profile_update
    from generation.text.placeholders import placeholders_fill

    settings.GENAI_FINETUNE_BITEXT_CSV = str(tmp_path / "missing.csv")
    call_command("demo_setup")
    assert "Company profile: the demo shop 'Acme Outdoor'" in capsys.readouterr().out
    values = company_profile_values()
    assert values["Company Name"] == DEMO_COMPANY_PROFILE["company_name"]
    answer = "Call {{Customer Support Phone Number}} or use {{Live Chat}} on {{Website Name}}; {{Order Number}}."
    assert placeholders_fill(answer, values) == (
        "Call +1 800 555 0100 or use live chat (acme-outdoor.example/chat) on Acme Outdoor website; {{Order Number}}."
    )

    admin = company_profile_get().updated_by
    company_profile_update(user=admin, company_name="Zed Ltd", website_name="")
    call_command("demo_setup")
    assert "Company profile" not in capsys.readouterr().out
    assert company_profile_get().company_name == "Zed Ltd"
