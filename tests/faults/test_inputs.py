"""Bad input and data at rest, through the running service on its own PostgreSQL: NUL and deep
nesting are 400s, personal data seeded into every kind's free text and a feedback edit is found
nowhere in a dump of the database or in the service's logs, private webhook targets are refused."""

import json

import pytest

from tests.faults.conftest import FIGURES

pytestmark = [pytest.mark.faults]

EMAIL = "jane.fault@example.com"
CARD = "4111 1111 1111 1111"
PHONE = "+44 20 7946 0958"
SEEDS = (EMAIL, CARD, PHONE, CARD.replace(" ", ""))


def _pii(label: str) -> str:
    return f"{label}: write to {EMAIL}, card {CARD}, call {PHONE}."


# Every kind's free-text params (each JobKind's masked_params), with PII in each.
def kind_bodies() -> list[dict]:
    text = _pii("text")
    return [
        {"kind": "echo", "params": {"text": text}},
        {"kind": "generate", "params": {"messages": [{"role": "user", "content": _pii("chat")}], "max_new_tokens": 4}},
        {"kind": "generate", "params": {"prompt": _pii("prompt"), "max_new_tokens": 4}},
        {"kind": "reply", "params": {"message": _pii("message"), "history": [{"role": "customer", "content": _pii("turn")}],
                                     "context": {"Customer Email": EMAIL, "Card": CARD}}},
        {"kind": "copy", "params": {"attributes": {"name": "Mug", "contact": _pii("attr"), "features": [_pii("item")]},
                                    "segments": [{"name": "students", "description": _pii("segment")}]}},
        {"kind": "recommendation", "params": {"interactions": [{"title": "Mug", "text": _pii("review")}],
                                              "products": [{"id": "p1", "attributes": {"name": "Mug", "note": _pii("p")}}]}},
        {"kind": "variants", "params": {"text": text}},
        {"kind": "interpolate", "params": {"text_a": text, "text_b": _pii("b")}},
        {"kind": "augment", "params": {"rows": [{"text": text, "label": "a"}, {"text": _pii("r2"), "label": "b"}]}},
        {"kind": "genmodel_train", "params": {"texts": [text] * 25}},
    ]


def test_nul_and_deep_nesting_through_the_api_are_400s(fault_site):
    site = fault_site
    session = site.http("admin")
    url = site.web_url + "/api/jobs/"
    cases = {
        "reply context key": {"kind": "reply", "params": {"message": "hi", "context": {"Order\u0000": "1"}}},
        "copy attribute value": {"kind": "copy", "params": {"attributes": {"name": "Mug\u0000"}}},
        "copy list item": {"kind": "copy", "params": {"attributes": {"features": ["a", "b\u0000"]}}},
        "lone surrogate": {"kind": "echo", "params": {"text": "x\ud800"}},
    }
    seen = {}
    for name, body in cases.items():
        response = session.post(url, data=json.dumps(body), headers={"Content-Type": "application/json"}, timeout=30)
        seen[name] = response.status_code
        assert response.status_code == 400, (name, response.text[:300])
        assert response.json()["code"] == "invalid"
    deep = '{"kind": "echo", "params": {"text": "x", "n": ' + "[" * 5000 + "]" * 5000 + "}}"
    response = session.post(url, data=deep, headers={"Content-Type": "application/json"}, timeout=30)
    seen["5,000 levels of nesting"] = response.status_code
    assert response.status_code == 400 and "GENAI_JSON_MAX_DEPTH" in response.text
    FIGURES["bad input through the API"] = seen


def test_personal_data_is_found_nowhere_at_rest(fault_site):
    site = fault_site
    session = site.http("admin")
    created = {}
    for body in kind_bodies():
        response = session.post(site.web_url + "/api/jobs/", json=body, timeout=30)
        assert response.status_code in (201, 400), (body["kind"], response.text[:300])
        created.setdefault(body["kind"], []).append(response.status_code)
    for kind in ("echo", "generate", "reply", "copy"):
        assert 201 in created[kind], (kind, created)

    # A feedback edit on an echo candidate, run by a worker.
    worker = site.worker_start(concurrency=2)
    (job_id,) = site.jobs_post(1, text=_pii("feedback draft"))
    site.jobs_wait([job_id], timeout=60)
    (candidate,) = site.postgres.query("SELECT id FROM generation_candidate WHERE job_id::text = %s", (job_id,))[0]
    response = session.post(site.web_url + "/api/feedback/", json={
        "candidate": candidate, "outcome": "sent_edited", "edited_text": _pii("my edit"), "comment": _pii("comment")},
        timeout=30)
    assert response.status_code in (200, 201), response.text[:300]
    worker.stop()

    dump = site.postgres.dump()
    assert "generation_job" in dump and "review_feedback" in dump
    logs = "\n".join(process.log.read_text(errors="replace") for process in site.processes)
    found = {seed: dump.count(seed) + logs.count(seed) for seed in SEEDS}
    FIGURES["PII seeded into every kind and a feedback edit"] = {
        "kinds": {kind: codes for kind, codes in created.items()}, "found in dump + logs": found}
    assert sum(found.values()) == 0, found


@pytest.mark.parametrize("target", ["http://127.0.0.1:8000/hook", "http://169.254.169.254/latest/meta-data/",
                                    "http://10.0.0.5/hook", "http://[::1]/hook", "http://localhost/hook"])
def test_webhook_targets_on_private_addresses_are_refused(fault_site, target):
    site = fault_site
    session = site.http("admin")
    body = {"name": f"rule {target}", "entity": "NVDA", "condition": "mean_score", "threshold": -0.3,
            "webhook_url": target}
    response = session.post(site.web_url + "/api/alert-rules/", json=body, timeout=30)
    assert response.status_code == 400, response.text[:300]
    assert "webhook_url" in response.json()["errors"]
