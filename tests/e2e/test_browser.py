"""Browser tests: Debian's Chromium driven by Playwright against a live server and a real worker
(the tiny model). Screenshots of every page land in var/test-artifacts/ (GENAI_TEST_ARTIFACTS_DIR)."""

import os
import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings

from generation import roles
from generation.models import Job, JobStatus
from review.models import Feedback
from review.services.reviews import review_item_submit
from tests.factories import CandidateFactory, JobFactory, UserFactory
from tests.web.conftest import copy_kind  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("GENAI_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("GENAI_TEST_ARTIFACTS_DIR", str(settings.BASE_DIR / "var" / "test-artifacts")))
PASSWORD = "pw-secret-123"  # tests.factories.UserFactory's


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # Playwright's sync API keeps an event loop on this thread; the test's ORM calls are still
    # synchronous (Playwright's documented setting for Django).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page_for(browser, live_server):
    """``page_for(user)``: a new browser page logged in as ``user`` through the log-in form."""
    contexts = []

    def make(user, *, viewport=(1280, 800)):
        context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill(user.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(r".*/$"))
        return page

    yield make
    for context in contexts:
        context.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _knowledge_seed() -> None:
    """One past conversation about a late parcel, embedded as the embed job would store it."""
    from generation.models import Conversation
    from generation.services.knowledge import embedding_model_name, knowledge_embeddings_store, knowledge_import_rows
    from workers.runners.embed import knowledge_vectors_encode
    from workers.runtime.embeddings import embedder_get

    knowledge_import_rows(user=UserFactory(role=roles.AGENT), kind="conversations", source="crm", embed=False, rows=[{
        "customer_message": "My parcel has not arrived yet, where is it?",
        "agent_reply": "I'm sorry that your parcel has not arrived yet.\n\nThe tracking link in your dispatch e-mail "
                       "shows where it is. If it has not moved for 3 working days, reply with your order number "
                       "and we will ask the carrier.",
    }])
    rows = list(Conversation.objects.all())
    vectors = knowledge_vectors_encode(embedder_get(), rows, batch_size=8)
    knowledge_embeddings_store(kind="conversations", model_name=embedding_model_name(),
                               vectors=[(r.pk, r.content_hash, v) for r, v in zip(rows, vectors)])


def test_agent_flow_draft_streams_in_then_edit_send_rate(start_worker, page_for, live_server, settings):
    settings.GENAI_WEB_POLL_MS = 100  # the page polls the drafts partial this often (live server: same process)
    start_worker(GENAI_STREAM_FLUSH_SECONDS="0.02")
    agent = UserFactory(role=roles.AGENT)
    page = page_for(agent)
    page.goto(f"{live_server.url}/agent/")
    shot(page, "agent-empty")

    # bad input: a clear message on the page, no job
    page.get_by_role("button", name="Draft replies").click()
    page.get_by_role("alert").wait_for()
    assert "Paste the customer" in page.get_by_role("alert").inner_text()
    assert not Job.objects.exists()

    _knowledge_seed()  # one past conversation to ground the draft (a message nothing answers gets a holding reply)
    seen_streaming = []
    page.on("response", lambda r: "/drafts" in r.url and seen_streaming.append(r.text()))
    page.get_by_label("Customer's message").fill("Hello, my parcel has not arrived yet. Where is it?")
    page.get_by_label("Drafts").fill("1")
    page.get_by_label("Length").select_option("medium")
    page.get_by_role("button", name="Draft replies").click()
    page.locator('[data-streaming="0"]').or_(page.locator("article.draft")).first.wait_for(timeout=90_000)
    shot(page, "agent-streaming")  # text arriving (or, on a fast machine, already final)
    page.locator("article.draft").first.wait_for(timeout=90_000)
    job = Job.objects.get()
    assert job.status == JobStatus.SUCCEEDED
    final_text = job.candidates.get().text
    # the partial showed the draft growing while the job ran (token events, before the result)
    partials = [re.search(r'data-streaming="0">(.*?)</div>', html, re.S) for html in seen_streaming if 'data-status="running"' in html]
    streamed = [m.group(1) for m in partials if m and m.group(1).strip()]
    assert streamed, "no streamed text was shown before the final draft"
    shot(page, "agent-drafts")

    box = page.get_by_label("Reply text")
    assert box.input_value() == final_text
    box.fill("Thanks for waiting! Your parcel is on its way and arrives tomorrow.")
    page.get_by_role("button", name="Send").click()
    page.get_by_text("Sent.", exact=True).wait_for()
    page.get_by_role("button", name="Good draft").click()
    page.get_by_text("Thanks, rating saved.").wait_for()
    shot(page, "agent-sent")
    feedback = Feedback.objects.get(candidate__job=job, user=agent)
    assert (feedback.outcome, feedback.thumb) == ("sent_edited", "up")
    assert feedback.edited_text.startswith("Thanks for waiting!") and feedback.edit_distance > 0


def test_reviewer_approves_copy_with_the_keyboard(page_for, live_server, make_user):
    marketer = make_user(roles.MARKETER)
    job = JobFactory(kind="copy", owner=marketer, status=JobStatus.SUCCEEDED, params={"name": "Desk lamp"},
                     model_version="smollm2")
    candidate = CandidateFactory(job=job, index=0, text="A desk lamp with a steel arm.",
                                 metadata={"checks": {"material": True}})
    item = review_item_submit(candidate=candidate, user=marketer, text="A warm desk lamp with a steel arm.")
    reviewer = UserFactory(role=roles.REVIEWER)
    page = page_for(reviewer, viewport=(820, 1180))  # a tablet
    page.goto(f"{live_server.url}/review/")
    shot(page, "review-queue")
    page.get_by_role("link", name=re.compile("A warm desk lamp")).click()
    page.locator("ins").first.wait_for()
    assert page.locator(".diff ins").first.inner_text().strip() == "warm"
    shot(page, "review-item")
    page.locator("body").press("a")  # keyboard shortcut: approve
    page.wait_for_url(re.compile(rf".*/review/items/{item.pk}/$"))
    page.get_by_text("Approved", exact=True).first.wait_for()
    item.refresh_from_db()
    assert item.status == "approved" and item.decided_by == reviewer
    shot(page, "review-approved")


def test_screenshots_of_the_other_pages(page_for, live_server, copy_kind):  # noqa: F811
    admin = UserFactory(role=roles.ADMIN)
    page = page_for(admin)
    for path, name in (("/marketing/", "marketing"), ("/quality/", "quality"), ("/review/flagged/", "flagged"),
                       ("/staff/jobs/", "staff-jobs"), ("/staff/models/", "staff-models"), ("/staff/training/", "staff-training")):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        assert page.locator("h1").count() == 1
        shot(page, name)
    # CSV with wrong columns: the message names the line
    page.goto(f"{live_server.url}/marketing/")
    page.get_by_label("CSV file").set_input_files(files=[{"name": "p.csv", "mimeType": "text/csv", "buffer": b"name,colour,name\nLamp,red,Lamp\n"}])
    page.get_by_role("button", name="Upload and write copy").click()
    page.get_by_role("alert").wait_for()
    assert "line 1: duplicated column(s) name" in page.get_by_role("alert").inner_text()
    shot(page, "marketing-csv-error")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(".*/accounts/login/$"))
    shot(page, "login")


def test_marketer_writes_copy_through_a_real_worker_and_sees_each_check(start_worker, page_for, live_server, settings):
    """The copy kind end to end: the form, a real worker (the tiny model: whatever it writes, what
    is shown states every attribute and invents nothing) and the marks on the batch page."""
    settings.GENAI_WEB_POLL_MS = 100
    start_worker()
    marketer = UserFactory(role=roles.MARKETER)
    page = page_for(marketer)
    page.goto(f"{live_server.url}/marketing/")
    for label, value in (("Name", "Metro Sling"), ("Brand", "Urbano"), ("Category", "Sling bag"), ("Colour", "Black"),
                         ("Price", "45 EUR")):
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_label("Features").fill("adjustable strap; front zip pocket")
    page.get_by_role("button", name="Write copy", exact=True).click()
    page.wait_for_url(re.compile(r".*/marketing/batches/[^/]+/$"))
    marks = page.get_by_role("list", name="Attribute checks").first
    marks.wait_for(timeout=120_000)
    job = Job.objects.get(kind="copy")
    assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_message)
    checks = job.candidates.first().metadata["checks"]
    assert checks["passed"] and checks["coverage"] == 1.0
    shown = marks.inner_text()
    assert "all checks: passed" in shown
    for fact in ("colour: Black", "price: 45 EUR", "features: front zip pocket"):
        assert f"{fact}: passed" in shown
    shot(page, "marketing-copy-checks")


def test_training_curves_draw_with_an_axis_per_unit_hover_values_and_a_range_picker(page_for, live_server):
    from generation.kinds import kinds_all
    from generation.models import JobMetric

    train_kind = next(k.name for k in kinds_all() if k.queue == "train")
    job = JobFactory(kind=train_kind, queue="train", status=JobStatus.SUCCEEDED, progress=1.0)
    for step in range(1, 41):
        JobMetric.objects.create(job=job, step=step, split="train", values={"loss": 2.0 / step, "lr": 1e-4})
        if step % 10 == 0:
            JobMetric.objects.create(job=job, step=step, split="validation", values={"accuracy": 0.5 + step / 100})
    page = page_for(UserFactory(role=roles.ADMIN))
    page.goto(f"{live_server.url}/staff/training/")
    figure = page.locator(f'figure[data-chart="chart-job-{job.id}"]')
    figure.locator(".chart-main .uplot").wait_for()
    assert figure.locator(".chart-range .uplot").count() == 1  # the range picker
    shot(page, "training-chart")
    # one y-axis per unit, each series on its unit's scale (uPlot draws the axes on its canvas)
    axes = figure.evaluate("f => f.charts.main.axes.map(a => [a.scale, a.label])")
    assert axes == [["x", "step"], ["loss", "loss"], ["ratio", "accuracy / F1"], ["lr", "learning rate"]], axes
    scales = figure.evaluate("f => f.charts.main.series.slice(1).map(s => [s.label, s.scale])")
    assert ["validation accuracy (accuracy / F1)", "ratio"] in scales and ["train loss (loss)", "loss"] in scales
    # hover: the legend shows the values under the cursor
    over = figure.locator(".chart-main .u-over")
    box = over.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] / 2)
    legend = figure.locator(".chart-main .u-legend").inner_text()
    assert re.search(r"train loss \(loss\)\s*0\.\d+", legend), legend
    # the range picker: dragging across the strip's second half zooms the chart onto it
    strip = figure.locator(".chart-range .u-over").bounding_box()
    y = strip["y"] + strip["height"] / 2
    page.mouse.move(strip["x"] + strip["width"] * 0.5, y)
    page.mouse.down()
    page.mouse.move(strip["x"] + strip["width"] * 0.9, y, steps=5)
    page.mouse.up()
    low, high = figure.evaluate("f => [f.charts.main.scales.x.min, f.charts.main.scales.x.max]")
    assert 18 <= low <= 23 and 34 <= high <= 38, (low, high)
    figure.get_by_role("button", name="Show all").click()
    assert figure.evaluate("f => [f.charts.main.scales.x.min, f.charts.main.scales.x.max]") == [1, 40]
    shot(page, "training-chart-range")


def test_the_monitoring_chart_draws_scores_and_item_counts_on_axes_of_their_own(page_for, live_server):
    from datetime import timedelta

    from django.utils import timezone

    from tests.monitoring.factories import NewsItemFactory

    now = timezone.now()
    for hours, score in ((30, 0.6), (20, 0.2), (10, -0.4), (2, -0.8)):
        for _ in range(2):
            NewsItemFactory(entity="AAPL", sentiment_score=score, sentiment_label="negative" if score < 0 else "positive",
                            published_at=now - timedelta(hours=hours))
    page = page_for(UserFactory(role=roles.ANALYST))
    page.goto(f"{live_server.url}/monitoring/?entity=AAPL&period=7d")
    figure = page.locator('figure[data-chart="sentiment-chart"]')
    figure.locator(".chart-main .uplot").wait_for()
    axes = figure.evaluate("f => f.charts.main.axes.map(a => a.scale)")
    assert axes == ["x", "score", "items"], axes
    assert figure.evaluate("f => [f.charts.main.scales.score.min, f.charts.main.scales.score.max]") == [-1, 1]
    shot(page, "monitoring-chart")
