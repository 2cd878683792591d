import pytest

pytestmark = pytest.mark.django_db


def test_it_keeps_a_proxys_request_id(client):
    response = client.get("/admin/login/", HTTP_X_REQUEST_ID="lb-2f9c81d0e4")

    assert response["X-Request-ID"] == "lb-2f9c81d0e4"


@pytest.mark.parametrize(
    "sent", ["", "short", "evil\nline", "x" * 65, "a b c d e f g h"]
)
def test_it_replaces_a_request_id_it_cannot_trust(client, sent):
    response = client.get("/admin/login/", HTTP_X_REQUEST_ID=sent)

    assert response["X-Request-ID"] != sent
    assert len(response["X-Request-ID"]) == 32
