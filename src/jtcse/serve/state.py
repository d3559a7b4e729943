"""What the routes share: the config, the loaded models, the batcher, the corpus, the metrics, readiness.

Loading runs in a background thread after the port is open, so ``GET /health`` answers 503 until the models
are loaded and warmed up (and the corpus indexed), then 200.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from jtcse.serve.batcher import Batcher
from jtcse.serve.config import ServeConfig, info_limits
from jtcse.serve.errors import ApiError
from jtcse.serve.metrics import Metrics
from jtcse.serve.models import EncoderLoader, ServedModel, default_loader, load_model
from jtcse.serve.search import ServedSearch

log = logging.getLogger("jtcse.serve")


class ServeState:
    def __init__(self, config: ServeConfig, loader: EncoderLoader = default_loader) -> None:
        self.config = config
        self.limits = config.limits
        self.loader = loader
        self.metrics = Metrics()
        self.models: dict[str, ServedModel] = {}
        self.batcher: Batcher | None = None
        self.corpus: ServedSearch | None = None
        self.ready = threading.Event()
        self.load_error: BaseException | None = None
        self.on_load_error: Callable[[BaseException], None] | None = None
        self._thread: threading.Thread | None = None

    def start_loading(self) -> None:
        self._thread = threading.Thread(target=self._load, name="jtcse-serve-load", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        try:
            for source in self.config.models:
                log.info("loading %s (%s)", source.name, source.source)
                self.models[source.name] = load_model(source, self.config, self.loader)
            if self.config.corpus is not None or self.config.index is not None:
                default = self.models[self.config.default_model]
                self.corpus = ServedSearch.open(
                    default.encoder, corpus=self.config.corpus, index_dir=self.config.index
                )
                log.info("corpus: %d sentences indexed", self.corpus.size)
                if self.corpus.model_note:
                    log.info("index: %s", self.corpus.model_note)
            encoders = {name: m.encoder for name, m in self.models.items()}
            self.batcher = Batcher(encoders, self.limits, self.metrics)
            self.batcher.start()
            self.ready.set()
            log.info("ready")
        except BaseException as exc:  # reported by the CLI as a one-line error; the server stops
            self.load_error = exc
            if self.on_load_error is not None:
                self.on_load_error(exc)

    def stop(self) -> None:
        if self.batcher is not None:
            self.batcher.stop(self.limits.drain_timeout_s)

    def require_ready(self) -> None:
        if not self.ready.is_set():
            raise ApiError(
                503, "the model is still loading; retry shortly", code="loading", headers={"Retry-After": "1"}
            )

    def model(self, name: str | None) -> ServedModel:
        self.require_ready()
        key = self.config.default_model if name is None else name
        if key not in self.models:
            known = ", ".join(self.models)
            raise ApiError(
                404,
                f"model {name!r} is not served here; models: {known}",
                code="model_not_found",
                param="model",
            )
        return self.models[key]

    def info(self) -> dict[str, Any]:
        from jtcse import __version__

        return {
            "version": __version__,
            "default_model": self.config.default_model,
            "models": [m.info() for m in self.models.values()],
            "limits": info_limits(self.limits),
            "corpus": None if self.corpus is None else {"size": self.corpus.size},
            "auth": self.config.api_key is not None,
        }
