"""The training config: a TOML or YAML file, ``--set section.key=value`` overrides, method defaults.

A config has a few top-level keys (``method``, ``seed``, ``output_dir``) and six sections, ``model``,
``data``, ``train``, ``loss``, ``eval`` and ``distill`` (read only by ``method = "distill"``); every key
is listed, with its meaning, in the dataclasses of ``schema.py`` and in the packaged configs
(``src/jtcse/configs/*.toml``, ``jtcse configs show NAME``). Loading a config:

1. read the file (``.toml`` with tomllib/tomli; ``.yaml``/``.yml``/``.json`` with ``yaml.safe_load``);
2. apply ``--set key=value`` overrides, each value parsed to the key's type (``true``/``false`` for
   booleans, ``none``/``null`` for an optional value);
3. fill the keys the user did not set with the **method defaults** (:data:`METHOD_DEFAULTS`): SimCSE's for
   ``simcse``, the official JTCSE code's for ``jtcse``, TNCSE's for ``tncse``, CACSE's distillation recipe
   for ``distill`` (method.md §4.2);
4. validate (choices, ranges). Every problem is a one-line :class:`JtcseError` naming the key; an unknown
   key lists the valid ones.

A default that depends on the model itself (TNCSE's dropout, by backbone family) is filled in by
:func:`resolve_for_model` once the model exists (the trainer calls it first thing; a study plans a run before
its start checkpoint is trained). Nothing else changes a config afterwards.

The resolved config (every key, defaults filled in) is written as ``train_config.yaml`` in the output
directory, and ``jtcse train OUT/train_config.yaml`` reruns the same training. :func:`check_resumable` says
which keys may differ between a run and its ``--resume`` (:data:`RESUMABLE_CHANGES`).

One file per concern: ``schema`` (the keys, their types and meanings), ``defaults`` (method defaults),
``parsing`` (file + ``--set``), ``validation``, ``models`` (model paths, model-dependent defaults),
``resume``, ``dump``. Every name is importable from ``jtcse.training.config``.
"""

from jtcse.training.config.defaults import METHOD_DEFAULTS, TNCSE_DROPOUT
from jtcse.training.config.dump import config_digest, dump_yaml
from jtcse.training.config.models import model_path, resolve_for_model, tower_sources
from jtcse.training.config.parsing import (
    apply_override,
    config_from_dict,
    load_config,
    override_text,
    read_config_file,
    valid_keys,
)
from jtcse.training.config.resume import RESUMABLE_CHANGES, check_resumable
from jtcse.training.config.schema import (
    METHODS,
    SECTIONS,
    TWIN_METHODS,
    Config,
    DataConfig,
    DistillConfig,
    EvalConfig,
    LossConfig,
    Method,
    ModelConfig,
    StudentInit,
    TrainConfig,
)
from jtcse.training.config.validation import TEMPERATURE_RANGE, resolve, validate

__all__ = [
    "METHODS",
    "METHOD_DEFAULTS",
    "RESUMABLE_CHANGES",
    "SECTIONS",
    "TEMPERATURE_RANGE",
    "TNCSE_DROPOUT",
    "TWIN_METHODS",
    "Config",
    "DataConfig",
    "DistillConfig",
    "EvalConfig",
    "LossConfig",
    "Method",
    "ModelConfig",
    "StudentInit",
    "TrainConfig",
    "apply_override",
    "check_resumable",
    "config_digest",
    "config_from_dict",
    "dump_yaml",
    "load_config",
    "model_path",
    "override_text",
    "read_config_file",
    "resolve",
    "resolve_for_model",
    "tower_sources",
    "valid_keys",
    "validate",
]
