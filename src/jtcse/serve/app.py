"""The FastAPI app: routes, the page and its files, error bodies, middleware, start-up and shut-down."""

from __future__ import annotations

from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import FileResponse

from jtcse import __version__
from jtcse.serve.config import ServeConfig
from jtcse.serve.errors import install_error_handlers
from jtcse.serve.middleware import ServeMiddleware
from jtcse.serve.models import EncoderLoader, default_loader
from jtcse.serve.openapi import openapi_builder
from jtcse.serve.routes import router
from jtcse.serve.state import ServeState


def static_dir() -> str:
    return str(resources.files("jtcse.serve") / "static")


def create_app(config: ServeConfig, loader: EncoderLoader = default_loader) -> FastAPI:
    """An app that loads its models in the background once it starts (``/health`` is 503 until then)."""
    state = ServeState(config, loader)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        state.start_loading()
        yield
        state.stop()  # after uvicorn has finished the requests in flight

    # /docs and /redoc would fetch Swagger/ReDoc from a CDN: off, so nothing needs the network.
    # The schema itself stays at /openapi.json.
    app = FastAPI(
        title="jtcse serve",
        version=__version__,
        description="OpenAI-compatible sentence embeddings, similarity and search (jtcse serve --help).",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.serve = state
    install_error_handlers(app)
    app.include_router(router)
    page = static_dir()
    app.mount("/static", StaticFiles(directory=page), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(f"{page}/index.html", media_type="text/html")

    app.add_middleware(
        ServeMiddleware,
        api_key=config.api_key,
        payload_limit=config.limits.payload_limit,
        metrics=state.metrics,
    )
    # FastAPI's documented way to customise the schema is to replace app.openapi
    app.openapi = openapi_builder(app, state)  # type: ignore[method-assign]
    return app
