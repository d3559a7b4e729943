"""Reading a config: the file, ``--set key=value`` overrides, each value parsed to its key's type."""

from __future__ import annotations

import difflib
import sys
import types
import typing
from pathlib import Path
from typing import Any

from jtcse.configs import resolve_config
from jtcse.errors import JtcseError
from jtcse.training.config.schema import SECTIONS, Config, choices, key_types
from jtcse.training.config.validation import resolve


def load_config(
    path: str | Path | None,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    base: dict[str, Any] | None = None,
) -> Config:
    """Read ``path`` (a file, or a packaged config's name such as ``simcse-minilm``; or start from
    ``base``/the defaults when ``path`` is None), apply ``key=value`` overrides, fill method defaults,
    validate."""
    raw = read_config_file(resolve_config(path)) if path is not None else dict(base or {})
    origin = str(path) if path is not None else "config"
    config = config_from_dict(raw, origin=origin)
    for item in overrides:
        apply_override(config, item)
    return resolve(config)


def read_config_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise JtcseError(f"{path}: no such config file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover - Python 3.10
                import tomli as tomllib
            with path.open("rb") as fh:
                raw = tomllib.load(fh)
        elif suffix in (".yaml", ".yml", ".json"):
            import yaml

            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        else:
            raise JtcseError(f"{path}: unknown config format '{suffix}'; use .toml, .yaml/.yml or .json")
    except JtcseError:
        raise
    except UnicodeDecodeError as exc:
        raise JtcseError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except Exception as exc:  # tomllib.TOMLDecodeError, yaml.YAMLError: report, not a traceback
        raise JtcseError(f"{path}: cannot parse ({exc})") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise JtcseError(f"{path}: expected a table of keys at the top level")
    return raw


def config_from_dict(raw: dict[str, Any], *, origin: str = "config") -> Config:
    config = Config()
    for key, value in raw.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise JtcseError(f"{origin}: '{key}' must be a section (a table of keys), got {value!r}")
            for sub_key, sub_value in value.items():
                _set_key(config, f"{key}.{sub_key}", sub_value, origin=origin, from_text=False)
        else:
            _set_key(config, str(key), value, origin=origin, from_text=False)
    return config


def apply_override(config: Config, item: str) -> None:
    """Apply one ``--set key=value``."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise JtcseError(f"--set {item}: expected key=value, e.g. --set train.lr=2e-5")
    _set_key(config, key.strip(), text.strip(), origin="--set", from_text=True)


def override_text(value: object) -> str:
    """A config value as ``--set`` text that reads back to the same value, identical for equal values
    (``0.10`` and ``0.1``): ``true``/``false``, ``none``, ``repr`` for a float (exact), else ``str``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def valid_keys() -> list[str]:
    return list(Config().flat())


def _set_key(config: Config, key: str, value: Any, *, origin: str, from_text: bool) -> None:
    types_by_key = key_types()
    if key not in types_by_key:
        close = difflib.get_close_matches(key, list(types_by_key), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise JtcseError(f"{origin}: unknown config key '{key}'{hint}; valid keys: {', '.join(types_by_key)}")
    coerced = _coerce(key, value, types_by_key[key], origin=origin, from_text=from_text)
    section, _, name = key.rpartition(".")
    setattr(getattr(config, section) if section else config, name, coerced)
    config.explicit.add(key)


_NONE_WORDS = ("none", "null", "")
_TRUE_WORDS = ("true", "yes", "on", "1")
_FALSE_WORDS = ("false", "no", "off", "0")


def _coerce(key: str, value: Any, tp: Any, *, origin: str, from_text: bool) -> Any:
    optional = False
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        optional = True
        (tp,) = [a for a in args if a is not type(None)]
    if choices(tp) is not None:  # a choice is a string here; validate checks it against its options
        tp = str
    name = tp.__name__
    bad = f"{origin}: {key} must be {'an' if name == 'int' else 'a'} {name}{' or none' if optional else ''}"
    if value is None:
        if optional:
            return None
        raise JtcseError(f"{bad}, got null")
    if from_text:
        text = str(value)
        if optional and text.lower() in _NONE_WORDS:
            return None
        if tp is bool:
            if text.lower() in _TRUE_WORDS:
                return True
            if text.lower() in _FALSE_WORDS:
                return False
            raise JtcseError(f"{bad} (true/false), got {text!r}")
        if tp is str:
            return text
        try:
            return int(text) if tp is int else float(text)
        except ValueError:
            raise JtcseError(f"{bad}, got {text!r}") from None
    # Values from a file are already typed; accept an int where a float is expected, nothing looser.
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if optional and isinstance(value, str) and value.lower() in _NONE_WORDS:
            return None
    elif tp is str and isinstance(value, str):
        return value
    raise JtcseError(f"{bad}, got {value!r}")
