"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine

from hub import __version__
from hub.api import router
from hub.errors import add_exception_handlers
from hub.intel import offload
from hub.misp_compat import errors as misp_errors
from hub.ops.logging import configure_logging
from hub.ops.middleware import Metrics, RequestContextMiddleware, TrustedHostMiddleware
from hub.responses import JSONResponse
from hub.routing import session_binds
from hub.runtime import Runtime
from hub.settings import Settings, get_settings
from hub.taxii import protocol as taxii_protocol


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """Build the app; refuses unsafe production settings (SettingsError) before serving."""
    settings = settings or get_settings()
    settings.check()
    configure_logging(settings.log_level, json=settings.log_json)
    runtime = Runtime.open(settings, engine=engine, requests=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        offload.close()
        runtime.close()

    app = FastAPI(
        title="CWN hub",
        version=__version__,
        description=(
            "Threat-information sharing hub of the Dutch cyber-resilience network (CWN). "
            "Every route except /health and this documentation needs an API key, sent as "
            "`Authorization: <key>`, `Authorization: Bearer <key>` or `X-MISP-AUTH: <key>`."
        ),
        default_response_class=JSONResponse,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.binds = session_binds(runtime.engine)
    app.state.metrics = Metrics()
    app.include_router(router)
    add_exception_handlers(
        app,
        renderers={
            misp_errors.PREFIX: misp_errors.render_misp_error,
            taxii_protocol.PREFIX: taxii_protocol.render_taxii_error,
        },
    )
    if settings.production:  # development answers to any name (tests, a laptop)
        app.add_middleware(TrustedHostMiddleware, hosts=settings.allowed_hosts)
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)
    return app
