"""The paper and example training configs that ship inside the package (the ``*.toml`` files beside this
module), found by name from any folder: ``simcse-minilm`` is ``simcse_minilm.toml``.

Wherever a command takes a config (``jtcse train/distill/ablate CONFIG``), :func:`resolve_config` accepts a
file path or a packaged name; ``jtcse reproduce`` reads its recipes' files from :func:`packaged_dir`;
``jtcse configs list | show | copy`` prints or copies them. Light on purpose: no torch, no numpy.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from jtcse.errors import JtcseError

SUFFIX = ".toml"
# Arguments ending like this are meant as file paths, never as names.
PATH_SUFFIXES = (".toml", ".yaml", ".yml", ".json")


def packaged_dir() -> Path:
    """The folder holding the packaged configs (inside the installed package or the checkout's src/)."""
    root = files(__name__)
    # pip always installs a wheel unpacked, so this is a real folder; a zip import would not give one.
    if not isinstance(root, Path):
        raise JtcseError(f"jtcse is imported from an archive ({root}); the packaged configs need it unpacked")
    return root


def name_of(file_name: str) -> str:
    """``simcse_minilm.toml`` -> ``simcse-minilm``."""
    return file_name.removesuffix(SUFFIX).replace("_", "-")


def names() -> list[str]:
    """Every packaged config's name, sorted."""
    return sorted(name_of(path.name) for path in packaged_dir().glob(f"*{SUFFIX}"))


def packaged_path(name: str) -> Path | None:
    """The packaged file called ``name`` (``simcse-minilm``, ``simcse_minilm`` or ``simcse_minilm.toml``)."""
    stem = name.strip().lower().removesuffix(SUFFIX).replace("-", "_")
    if not stem or "/" in stem or "\\" in stem:
        return None
    path = packaged_dir() / f"{stem}{SUFFIX}"
    return path if path.is_file() else None


def require(name: str) -> Path:
    """The packaged config ``name``, or a one-line error listing the names."""
    path = packaged_path(name)
    if path is None:
        raise JtcseError(f"unknown config '{name}': the packaged configs are {', '.join(names())}")
    return path


def resolve_config(given: str | Path) -> Path:
    """A config argument: an existing file (it wins), else a packaged config's name.

    ``configs/simcse_minilm.toml``, the path of the files before they moved into the package, names the
    packaged file it meant in its error."""
    path = Path(given)
    if path.is_file():
        return path
    text = str(given)
    looks_like_path = text.lower().endswith(PATH_SUFFIXES) or "/" in text or "\\" in text
    if not looks_like_path:
        packaged = packaged_path(text)
        if packaged is not None:
            return packaged
        raise JtcseError(
            f"{text}: neither a config file nor a packaged config; the packaged configs are "
            f"{', '.join(names())} (a name, or a path to a .toml / .yaml file)"
        )
    if path.exists():
        raise JtcseError(f"{text}: not a file")
    same_name = packaged_path(path.name)
    hint = (
        f"the packaged config of that name is '{name_of(same_name.name)}' (jtcse configs list)"
        if same_name is not None
        else "jtcse configs list shows the packaged configs"
    )
    raise JtcseError(f"{text}: no such config file; {hint}")


def summary(path: Path, width: int = 90) -> str:
    """The first sentence of a config file's opening comment, cut to ``width`` characters: what
    ``jtcse configs list`` shows beside its name."""
    words: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.lstrip().startswith("#"):
            break
        words += line.lstrip().lstrip("#").split()
    text = " ".join(words)
    end = text.find(". ")
    text = text if end < 0 else text[: end + 1]
    return text if len(text) <= width else text[: width - 3].rsplit(" ", 1)[0] + "..."
