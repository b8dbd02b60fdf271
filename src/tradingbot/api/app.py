"""The FastAPI application: routes, error mapping, metrics and the dashboard's files.

Errors from the layers below become HTTP answers here, once: a missing part is 503, an
unknown thing 404, bad input 400/422, a broker that timed out 504. Every error body is
``{"detail": "<what went wrong and what to do>"}``; validation errors add ``errors``
with each field's problem. Nothing a layer raises reaches the client as a bare 500.
"""

from __future__ import annotations

import logging
from importlib import resources

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tradingbot import __version__
from tradingbot.api import control, routes
from tradingbot.api.auth import browser_guard, require_token
from tradingbot.api.context import BotContext, NotFound, Unavailable
from tradingbot.api.metrics import BotMetrics
from tradingbot.api.schemas import ERROR_RESPONSES
from tradingbot.errors import (
    BrokerConnectionError,
    InvalidOrderError,
    OrderError,
    TradingBotError,
    UnknownSymbolError,
    describe,
)

log = logging.getLogger(__name__)
STATIC_DIR = resources.files("tradingbot.api") / "static"


def _status_of(exc: Exception) -> int:
    if isinstance(exc, Unavailable | BrokerConnectionError):
        return 503
    if isinstance(exc, NotFound | UnknownSymbolError):
        return 404
    if isinstance(exc, InvalidOrderError):
        return 400
    if isinstance(exc, OrderError):
        return 409
    if isinstance(exc, TimeoutError):
        return 504
    return 502  # another layer's failure (IB, the database): not the API's own


def _field(loc: tuple[object, ...] | list[object]) -> str:
    return ".".join(str(p) for p in loc if p != "body") or "body"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [f"{_field(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()]
    return JSONResponse(
        status_code=422,
        content={
            "detail": "invalid request: " + "; ".join(problems),
            "errors": [
                {"field": _field(e.get("loc", ())), "message": e.get("msg")} for e in exc.errors()
            ],
        },
    )


async def _bot_error(request: Request, exc: Exception) -> JSONResponse:
    status = _status_of(exc)
    message = describe(exc)
    if isinstance(exc, TimeoutError):
        message = "IB did not answer in time; try again"
    if status >= 500:
        log.warning("%s %s -> %d: %s", request.method, request.url.path, status, message)
    return JSONResponse(status_code=status, content={"detail": message})


def create_app(
    context: BotContext, *, token: str | None = None, host: str = "127.0.0.1"
) -> FastAPI:
    """The app for ``context``; ``token`` (when set) guards everything but health and the
    static dashboard shell (which holds no data and asks for the token itself)."""
    app = FastAPI(
        title="tradingbot",
        version=__version__,
        description="Operate a running tradingbot: state, positions, P&L, and control.",
    )
    app.state.context = context
    app.state.api_token = token
    metrics = BotMetrics(context)
    metrics.attach()
    app.state.metrics = metrics
    app.middleware("http")(browser_guard(host))
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(TradingBotError, _bot_error)
    app.add_exception_handler(TimeoutError, _bot_error)
    app.include_router(routes.public)
    app.include_router(routes.router)
    app.include_router(control.router)

    @app.get("/metrics", tags=["metrics"], dependencies=[Depends(require_token)],
             summary="Prometheus metrics", response_class=Response,
             responses={401: ERROR_RESPONSES[401]})  # fmt: skip
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(str(STATIC_DIR / "index.html"))

    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    return app
