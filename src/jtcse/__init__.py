"""jtcse: JTCSE, TNCSE and unsupervised SimCSE sentence embeddings: train, evaluate, serve."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Encoder", "JtcseError", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from jtcse.encoder import Encoder
    from jtcse.errors import JtcseError


def __getattr__(name: str) -> Any:
    # Lazy imports keep `import jtcse` (and the CLI's start-up) free of torch until it is needed.
    if name == "Encoder":
        from jtcse.encoder import Encoder

        return Encoder
    if name == "JtcseError":
        from jtcse.errors import JtcseError

        return JtcseError
    raise AttributeError(f"module 'jtcse' has no attribute {name!r}")
