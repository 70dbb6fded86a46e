"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine

import tlp
from hub import __version__
from hub.api import router
from hub.db import make_engine, make_sessionmaker
from hub.errors import add_exception_handlers
from hub.misp_compat import errors as misp_errors
from hub.ops.logging import configure_logging
from hub.ops.middleware import Metrics, RequestContextMiddleware, TrustedHostMiddleware
from hub.responses import JSONResponse
from hub.routing import session_binds
from hub.settings import Settings, get_settings
from hub.taxii import protocol as taxii_protocol


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """Build the app; refuses unsafe production settings (SettingsError) before serving."""
    settings = settings or get_settings()
    settings.check()
    configure_logging(settings.log_level, json=settings.log_json)
    own_engine = engine is None
    engine = engine or make_engine(settings, requests=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if own_engine:
            engine.dispose()

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
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.binds = session_binds(engine)
    app.state.metrics = Metrics()
    app.state.policy = tlp.DEFAULT_POLICY
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
