"""URLs and the one error shape, shared by the API tests."""

ITEMS = "/api/v1/action-items/"
INCIDENTS = "/api/v1/incidents/"
IMPORT = "/api/v1/incidents/import/"
PEOPLE = "/api/v1/people/"


def item_url(item_or_id, suffix: str = "") -> str:
    pk = getattr(item_or_id, "pk", item_or_id)
    return f"{ITEMS}{pk}/{suffix + '/' if suffix else ''}"


def assert_error(response, status: int) -> list[dict]:
    """The one error shape; returns its errors to check further."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"status", "errors"}, body
    assert body["status"] == status
    assert body["errors"], body
    for error in body["errors"]:
        assert set(error) == {"path", "code", "message"}, error
        assert error["path"] is None or isinstance(error["path"], str)
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str) and error["message"]
    return body["errors"]


def error_paths(response) -> list[str | None]:
    return [e["path"] for e in response.json()["errors"]]
