"""Who may call an admin API: one rule for the router's /admin (and dashboard data) and
the cold pool's /admin.

With an admin token set (TIERSERVE_ADMIN_TOKEN), every call needs
`Authorization: Bearer <token>`, loopback clients included (401 otherwise). With none
set, only clients connecting from a loopback address are let in (403 for anyone else);
behind a reverse proxy on the same host that means everyone who can reach the proxy, so
set a token there.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

TOKEN_ENV = "TIERSERVE_ADMIN_TOKEN"

bearer = HTTPBearer(auto_error=False, description=TOKEN_ENV)


def bearer_headers(token: str | None) -> dict[str, str]:
    """What a client of an admin API sends: the token, when there is one."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check(token: str | None, given: str | None, client_host: str | None, api: str) -> None:
    """Raise the 401 or 403 that refuses this call to `api` (e.g. "admin API"), or return."""
    if token:
        if not hmac.compare_digest((given or "").encode(), token.encode()):
            raise HTTPException(401, f"{api}: missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})
    elif not is_loopback(client_host):
        raise HTTPException(403, f"{api}: no admin token is set, so only loopback "
                                 "clients are allowed")


def admin_guard(token_of: Callable[[Request], str | None], api: str = "admin API"
                ) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency enforcing the rule on the routes it guards; `token_of(request)`
    is the token in force (None or '' for none)."""

    async def require_admin(
            request: Request,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> None:
        check(token_of(request), credentials.credentials if credentials is not None else None,
              request.client.host if request.client else None, api)

    return require_admin


def guard_prefix(token: str | None, prefix: str, api: str) -> Callable[..., Awaitable[None]]:
    """An app-wide FastAPI dependency enforcing the rule on every path under `prefix`, so a
    route added there later is guarded too; other paths pass untouched."""

    async def require_admin_under_prefix(request: Request) -> None:
        path: str = request.url.path
        if path != prefix and not path.startswith(prefix + "/"):
            return
        scheme, given = get_authorization_scheme_param(request.headers.get("authorization"))
        check(token, given if scheme.lower() == "bearer" else None,
              request.client.host if request.client else None, api)

    return require_admin_under_prefix
