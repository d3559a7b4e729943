"""The search space of ``jtcse sweep``: a TOML file, one table per config key, checked before anything trains.

```toml
["train.lr"]
type = "float"          # float | int | categorical
low = 1e-5
high = 1e-4
log = true              # float/int: sample on a log scale (the range must stay above 0)

["train.batch_size"]
type = "int"
low = 32
high = 128
step = 32               # int: the grid step (default 1); float: optional, a discrete step

["model.ca_mode"]
type = "categorical"
choices = ["side_all", "side_last", "in_stream"]
```

Keys are those ``--set`` takes (:func:`jtcse.training.config.valid_keys`); ``[train.lr]`` written as a dotted
table works too. Every bound and choice is applied to the base config and validated as the config itself
would be, so a value the key refuses is an error naming the key before the first trial.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from jtcse.errors import JtcseError
from jtcse.training.config import Config, read_config_file, validate
from jtcse.training.config.parsing import config_from_dict
from jtcse.training.config.schema import choices, key_types

Kind = Literal["float", "int", "categorical"]
KINDS: tuple[Kind, ...] = ("float", "int", "categorical")
# keys a sweep sets itself (each trial's folder and seed) or that change what a trial is, not how it trains
NOT_SEARCHABLE = ("output_dir", "seed", "method")
_FIELDS = {
    "float": {"type", "low", "high", "log", "step"},
    "int": {"type", "low", "high", "log", "step"},
    "categorical": {"type", "choices"},
}
Scalar = bool | int | float | str


@dataclass(frozen=True)
class Param:
    """One searched config key and its distribution."""

    key: str
    kind: Kind
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Scalar, ...] = ()

    def describe(self) -> str:
        if self.kind == "categorical":
            return f"{self.key} in {{{', '.join(map(str, self.choices))}}}"
        scale = ", log" if self.log else ""
        step = f", step {self.step}" if self.step is not None else ""
        return f"{self.key} {self.kind} [{self.low}, {self.high}{scale}{step}]"


def read_space(path: Path, base: Config) -> list[Param]:
    """The parameters of ``path``, each checked against the config schema and ``base``'s validation."""
    if not path.is_file():
        raise JtcseError(f"--space {path}: no such file")
    if path.suffix.lower() != ".toml":
        raise JtcseError(f"--space {path}: expected a .toml file")
    tables = _flatten(read_config_file(path))
    if not tables:
        raise JtcseError(f'{path}: no parameters; add a table per config key, e.g. ["train.lr"]')
    params = [_param(path, key, table) for key, table in tables.items()]
    for param in params:
        _check_against_config(path, param, base)
    return params


def _flatten(raw: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """``{"train.lr": {...}}`` from either ``["train.lr"]`` or ``[train.lr]`` tables."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in raw.items():
        key = f"{prefix}{name}"
        if not isinstance(value, dict):
            raise JtcseError(f"space: {key}: expected a table with a type (float, int or categorical)")
        if "type" in value:
            out[key] = value
        else:
            out.update(_flatten(value, f"{key}."))
    return out


def _param(path: Path, key: str, table: dict[str, Any]) -> Param:
    where = f"{path}: {key}"
    types = key_types()
    if key not in types:
        raise JtcseError(f"{where}: unknown config key; valid keys: {', '.join(types)}")
    if key in NOT_SEARCHABLE:
        raise JtcseError(f"{where}: set by the sweep itself, not searchable")
    kind = table.get("type")
    if kind not in KINDS:
        raise JtcseError(f"{where}: type {kind!r} is not one of {', '.join(KINDS)}")
    unknown = sorted(set(table) - _FIELDS[kind])
    if unknown:
        raise JtcseError(f"{where}: unknown field {unknown[0]!r} for type {kind}")
    if kind == "categorical":
        return _categorical(where, key, table)
    return _numeric(where, key, kind, table)


def _categorical(where: str, key: str, table: dict[str, Any]) -> Param:
    values = table.get("choices")
    if not isinstance(values, list) or not values:
        raise JtcseError(f"{where}: choices must be a non-empty list")
    if any(not isinstance(v, (bool, int, float, str)) for v in values):
        raise JtcseError(f"{where}: choices must be numbers, strings or booleans")
    if len(set(map(repr, values))) != len(values):
        raise JtcseError(f"{where}: choices repeat a value")
    return Param(key, "categorical", choices=tuple(values))


def _numeric(where: str, key: str, kind: Kind, table: dict[str, Any]) -> Param:
    for bound in ("low", "high"):
        value = table.get(bound)
        if value is None:
            raise JtcseError(f"{where}: {kind} needs low and high")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise JtcseError(f"{where}: {bound} must be a finite number, got {value!r}")
        if kind == "int" and not isinstance(value, int):
            raise JtcseError(f"{where}: {bound} of an int must be an integer, got {value!r}")
    low, high, log, step = table["low"], table["high"], table.get("log", False), table.get("step")
    if low > high:
        raise JtcseError(f"{where}: low {low} is above high {high}")
    if not isinstance(log, bool):
        raise JtcseError(f"{where}: log must be true or false")
    if log and low <= 0:
        raise JtcseError(f"{where}: a log range must stay above 0, got low {low}")
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0:
            raise JtcseError(f"{where}: step must be a number above 0, got {step!r}")
        if kind == "int" and not isinstance(step, int):
            raise JtcseError(f"{where}: step of an int must be an integer, got {step!r}")
        if log:
            raise JtcseError(f"{where}: step and log cannot be combined (Optuna samples one or the other)")
    return Param(key, kind, low=low, high=high, log=log, step=step)


def _check_against_config(path: Path, param: Param, base: Config) -> None:
    """Every bound/choice set on a copy of ``base`` and validated: what ``--set`` would refuse is refused."""
    tp = key_types()[param.key]
    if param.kind == "float" and _base_type(tp) is int:
        raise JtcseError(f'{path}: {param.key}: an integer key; use type = "int" or categorical')
    values = param.choices if param.kind == "categorical" else (param.low, param.high)
    for value in values:
        section, _, name = param.key.rpartition(".")
        raw = {section: {name: value}} if section else {name: value}
        try:
            override = config_from_dict(raw, origin="space")
            trial = copy.deepcopy(base)
            setattr(getattr(trial, section) if section else trial, name, override.get(param.key))
            validate(trial)
        except JtcseError as exc:
            raise JtcseError(f"{path}: {param.key} = {value!r}: {exc}") from None


def _base_type(tp: Any) -> Any:
    """``int`` for ``int`` and ``int | None``; the type itself otherwise (choices: ``str``)."""
    if choices(tp) is not None:
        return str
    args = [a for a in getattr(tp, "__args__", ()) if a is not type(None)]
    return args[0] if len(args) == 1 else tp
