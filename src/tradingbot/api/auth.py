"""Who may talk to the API: anyone on this machine, or whoever holds the token.

The API can stop a trading bot and close its positions, so it listens on loopback by
default and refuses to listen anywhere else without a token (:func:`check_bind`). When a
token is set every endpoint but ``/api/v1/health`` and the static dashboard shell needs it,
as ``Authorization: Bearer <token>``; tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from tradingbot.errors import ConfigError
from tradingbot.settings import is_loopback

MIN_TOKEN_LENGTH = 16
CallNext = Callable[[Request], Awaitable[Response]]


def token_value(token: SecretStr | str | None) -> str | None:
    """The token's text, or None when unset or blank."""
    if token is None:
        return None
    text = token.get_secret_value() if isinstance(token, SecretStr) else token
    return text.strip() or None


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback bind without a token, and tokens too short to resist guessing."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"API_TOKEN is {len(token)} characters; use at least {MIN_TOKEN_LENGTH}, e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    if not is_loopback(host) and token is None:
        raise ConfigError(
            f"API_HOST={host} is not a loopback address and API_TOKEN is not set; the API can "
            "stop the bot and close positions, so it is not served to other machines without "
            "a token. Set API_TOKEN, or API_HOST=127.0.0.1"
        )


_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="API_TOKEN, required when it is set (always when not on loopback)",
)


def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """FastAPI dependency: 401 unless the request carries the configured token."""
    expected: str | None = request.app.state.api_token
    if expected is None:
        return
    if credentials is not None and secrets.compare_digest(
        credentials.credentials.strip().encode(), expected.encode()
    ):
        return
    raise HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="missing or wrong API token: send 'Authorization: Bearer <API_TOKEN>'",
        headers={"WWW-Authenticate": "Bearer"},
    )


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def _host_name(netloc: str) -> str:
    """``[::1]:8080`` -> ``::1``; ``localhost:8080`` -> ``localhost``."""
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")].lower()
    return netloc.rsplit(":", 1)[0].lower() if netloc.count(":") == 1 else netloc.lower()


def browser_guard(bind_host: str) -> Callable[[Request, CallNext], Awaitable[Response]]:
    """Middleware against the two ways a web page could reach a loopback API without a token.

    DNS rebinding: a page on ``evil.example`` whose name later resolves to 127.0.0.1 — its
    requests carry ``Host: evil.example``, so a loopback-bound API answers only loopback
    names. Cross-site requests: a page cannot add an Authorization header without CORS
    approval (never given), but it can send a plain POST; browsers mark those with an
    ``Origin``, and a state-changing request whose origin is not this server is refused.
    Clients that are not browsers (curl, scripts, Prometheus) send no ``Origin``.
    """
    allowed = LOOPBACK_NAMES | {bind_host.lower()} if is_loopback(bind_host) else None

    async def guard(request: Request, call_next: CallNext) -> Response:
        host = request.headers.get("host", "")
        if allowed is not None and _host_name(host) not in allowed:
            return JSONResponse(
                {"detail": f"this API answers on {bind_host} only, not on host {host!r}"},
                status_code=403,
            )
        origin = request.headers.get("origin")
        cross_site = origin is not None and urlsplit(origin).netloc.lower() != host.lower()
        if cross_site and request.method not in _SAFE_METHODS:
            return JSONResponse(
                {"detail": "cross-site request refused: use the dashboard on this server"},
                status_code=403,
            )
        return await call_next(request)

    return guard
