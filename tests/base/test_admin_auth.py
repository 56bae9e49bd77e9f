"""The admin rule itself (pure): token, loopback, the answers that refuse."""

from __future__ import annotations

import pytest
from fastapi import HTTPException

from base.admin_auth import check, is_loopback


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("10.0.0.1", False),
    ("172.17.0.1", False), ("testclient", False), ("", False), (None, False)])
def test_loopback(host: str | None, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(("token", "given", "host", "status"), [
    ("t", "t", "10.0.0.1", None), ("t", "t", "127.0.0.1", None),
    ("t", None, "127.0.0.1", 401), ("t", "x", "10.0.0.1", 401), ("t", "", None, 401),
    (None, None, "127.0.0.1", None), ("", "anything", "::1", None),
    (None, None, "10.0.0.1", 403), ("", "t", None, 403)])
def test_check(token: str | None, given: str | None, host: str | None,
               status: int | None) -> None:
    if status is None:
        check(token, given, host, "x API")
        return
    with pytest.raises(HTTPException) as refused:
        check(token, given, host, "x API")
    assert refused.value.status_code == status and str(refused.value.detail).startswith("x API")
