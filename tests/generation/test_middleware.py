import pytest

pytestmark = pytest.mark.django_db


def test_a_null_character_in_a_query_parameter_is_a_400_naming_it(api_for):
    response = api_for("analyst").get("/api/scores/series", {"entity": "AC\x00ME", "bucket": "hour"})
    assert response.status_code == 400
    assert response.json()["errors"] == {"entity": ["Null characters are not allowed."]}
    assert api_for("agent").get("/api/jobs/", {"status": "queued\x00"}).status_code == 400
