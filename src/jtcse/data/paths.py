"""Which data directory to use.

A data directory holds ``sts/`` (the SentEval STS files, laid out as ``sts/STS12/senteval/...``) and, for
training, ``unsup/`` (one sentence per line). The first of these that has what is needed wins:

1. the ``data_dir`` argument (the CLI's ``--data-dir``);
2. the environment variable ``JTCSE_DATA``;
3. ``../shared/data`` beside the checkout (looked up from the current directory and from the repository
   this source file lives in);
4. the per-user cache ``$XDG_CACHE_HOME/jtcse/data`` (default ``~/.cache/jtcse/data``), downloaded into and
   sha256-verified on first use unless downloading is off (``download=False`` or ``JTCSE_OFFLINE=1``).

A directory named explicitly (1 or 2) that does not exist or lacks what is needed is an error, never a silent
fall-through, so a typo cannot quietly evaluate on other data.
"""

from __future__ import annotations

import os
from pathlib import Path

from jtcse.errors import JtcseError

DATA_ENV = "JTCSE_DATA"
OFFLINE_ENV = "JTCSE_OFFLINE"
NEEDS = ("sts", "wiki", "transfer", "any")
TRANSFER_DIR = "downstream"  # SentEval's transfer tasks: downstream/MR/rt-polarity.pos ...

# The full SimCSE corpus first; the shared folder holds only a head of it.
WIKI_FULL_NAME = "wiki1m_for_simcse.txt"
WIKI_GLOB = "wiki1m_for_simcse*.txt"


def user_cache_dir() -> Path:
    """The per-user download location: ``$XDG_CACHE_HOME/jtcse/data`` or ``~/.cache/jtcse/data``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "jtcse" / "data"


def shared_data_candidates() -> list[Path]:
    """``../shared/data`` seen from the current directory and from the repository of this source file."""
    candidates = [Path.cwd().parent / "shared" / "data"]
    repo_root = Path(__file__).resolve().parents[3]  # src/jtcse/data/paths.py -> repository root
    if (repo_root / "pyproject.toml").is_file():  # an editable install / a checkout, not site-packages
        candidates += [repo_root.parent / "shared" / "data", repo_root / "shared" / "data"]
    unique: list[Path] = []
    for path in candidates:
        resolved = path.resolve()
        if resolved not in unique:
            unique.append(resolved)
    return unique


def wiki_corpus_path(data_dir: Path) -> Path | None:
    """The wiki1m training corpus under ``data_dir/unsup``: the full file when present, else a head of it."""
    unsup = Path(data_dir) / "unsup"
    full = unsup / WIKI_FULL_NAME
    if full.is_file():
        return full
    heads = sorted(unsup.glob(WIKI_GLOB)) if unsup.is_dir() else []
    return heads[0] if heads else None


def has_data(data_dir: Path, need: str = "sts") -> bool:
    """Whether ``data_dir`` holds what ``need`` asks for (``sts``, ``wiki``, ``transfer`` or ``any``)."""
    _check_need(need)
    if not data_dir.is_dir():
        return False
    if need == "sts":
        return (data_dir / "sts").is_dir()
    if need == "wiki":
        return wiki_corpus_path(data_dir) is not None
    if need == "transfer":
        return (data_dir / TRANSFER_DIR).is_dir()
    return True


def locate_data_dir(
    data_dir: str | Path | None = None, *, need: str = "sts", download: bool = True
) -> tuple[Path, str]:
    """Like :func:`resolve_data_dir`, also returning which rule chose the directory (``jtcse data where``)."""
    _check_need(need)
    if data_dir is not None:
        return _explicit(Path(data_dir), need, "--data-dir"), "--data-dir"
    env_value = os.environ.get(DATA_ENV)
    if env_value:
        return _explicit(Path(env_value), need, f"${DATA_ENV}"), f"${DATA_ENV}"
    for candidate in shared_data_candidates():
        if has_data(candidate, need):
            return candidate, "../shared/data beside the checkout"
    cache = user_cache_dir()
    # Imported here: the manifest is only read when the cache is the answer.
    from jtcse.data.download import download_data, missing_files

    group = "sts" if need == "any" else need  # "any" fetches the evaluation data, the common need
    if has_data(cache, need) and (need == "any" or not missing_files(cache, group)):
        return cache, "per-user cache"
    if download and not _offline():
        download_data(cache, what=group)
        return cache, "per-user cache (downloaded now)"
    what = {
        "sts": "STS evaluation data",
        "wiki": "wiki1m training corpus",
        "transfer": "SentEval transfer data",
        "any": "data directory",
    }[need]
    raise JtcseError(
        f"no {what} found: pass --data-dir DIR, set ${DATA_ENV}, or run `jtcse data download` "
        f"(which fills {cache})"
    )


def resolve_data_dir(data_dir: str | Path | None = None, *, need: str = "sts", download: bool = True) -> Path:
    """The data directory to use (see the module docstring for the order).

    ``need`` is ``"sts"`` (the evaluation files), ``"wiki"`` (the training corpus), ``"transfer"`` (SentEval's
    transfer tasks, ``downstream/``) or ``"any"``.
    Raises :class:`JtcseError` for an explicit directory that is missing or incomplete, and when nothing is
    found and downloading is off.
    """
    return locate_data_dir(data_dir, need=need, download=download)[0]


def _explicit(path: Path, need: str, origin: str) -> Path:
    path = path.expanduser()
    if not path.exists():
        raise JtcseError(f"{origin} {path}: no such directory")
    if not path.is_dir():
        raise JtcseError(f"{origin} {path}: is a file; expected a data directory holding sts/")
    if need == "sts" and not has_data(path, "sts"):
        hint = " (pass its parent)" if path.name == "sts" else ""
        raise JtcseError(f"{origin} {path}: has no sts/ folder{hint}; expected sts/STS12/senteval/... inside")
    if need == "wiki" and not has_data(path, "wiki"):
        raise JtcseError(f"{origin} {path}: has no unsup/{WIKI_GLOB}")
    if need == "transfer" and not has_data(path, "transfer"):
        raise JtcseError(
            f"{origin} {path}: has no {TRANSFER_DIR}/ folder (SentEval's layout: {TRANSFER_DIR}/MR/...); "
            "fetch it with `jtcse data download --what transfer`"
        )
    return path.resolve()


def _offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _check_need(need: str) -> None:
    if need not in NEEDS:
        raise ValueError(f"need must be one of {NEEDS}, not {need!r}")
