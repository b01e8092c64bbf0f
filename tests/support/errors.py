"""The one error shape every refusal has: `{"error": {"code", "message", "fields"?}}`."""

from typing import Any

import httpx

# `fields` for a refusal whose field paths a test does not pin down.
UNCHECKED = object()


def assert_error(
    response: httpx.Response, status: int, code: str, fields: Any = None
) -> dict[str, Any]:
    """The response is the one error shape; `fields` is the set of field paths, or None."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    error = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    if fields is None:
        assert set(error) == {"code", "message"}
    elif fields is not UNCHECKED:
        assert set(error) == {"code", "message", "fields"}
        assert set(error["fields"]) == fields
        assert all(isinstance(m, str) and m for m in error["fields"].values())
    return error
