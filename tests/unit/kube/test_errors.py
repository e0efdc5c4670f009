import pytest
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import Status

from meshplane.kube import errors


def api(code: int | None, message: str | None = "boom") -> ApiError:
    return ApiError(status=Status(code=code, message=message))


# (error, status_code, is_not_found, is_conflict, is_gone, describe)
CASES: list[tuple[BaseException, int | None, bool, bool, bool, str]] = [
    (api(404, "not found"), 404, True, False, False, "404: not found"),
    (api(409, "exists"), 409, False, True, False, "409: exists"),
    (api(410, "too old"), 410, False, False, True, "410: too old"),
    (api(403, "forbidden"), 403, False, False, False, "403: forbidden"),
    (api(422), 422, False, False, False, "422: boom"),
    (api(500, None), 500, False, False, False, "500: "),
    (api(None), None, False, False, False, "?: boom"),
    (ValueError("404"), None, False, False, False, "ValueError: 404"),
    (OSError("refused"), None, False, False, False, "OSError: refused"),
]


@pytest.mark.parametrize(("error", "code", "not_found", "conflict", "gone", "text"), CASES)
def test_status_checks(
    error: BaseException, code: int | None, not_found: bool, conflict: bool, gone: bool, text: str
) -> None:
    assert errors.status_code(error) == code
    assert errors.is_not_found(error) is not_found
    assert errors.is_conflict(error) is conflict
    assert errors.is_gone(error) is gone
    assert errors.describe(error) == text
