"""What the model decides: model paths of config values, the towers' sources, model-dependent defaults."""

from __future__ import annotations

import copy

from jtcse.errors import JtcseError
from jtcse.training.config.defaults import TNCSE_DROPOUT
from jtcse.training.config.schema import Config


def model_path(name: str, key: str) -> str:
    """``name`` (a config value naming a model) resolved for ``from_pretrained``; errors name ``key``."""
    from jtcse.integrity import check_model_folder
    from jtcse.model.format import is_jtcse_dir
    from jtcse.model.names import resolve_model

    try:
        path = resolve_model(name)
    except JtcseError as exc:
        reason = str(exc).removeprefix(f"--model {name}: ")
        raise JtcseError(f"{key} = {name!r}: {reason}") from exc
    if not is_jtcse_dir(path):  # an empty folder or a truncated .safetensors is one clear line
        check_model_folder(path, f"{key} =")
    return path


def tower_sources(config: Config) -> tuple[tuple[str, str], tuple[str, str]]:
    """``((source, key), (source, key))`` of towers A and B: an empty ``tower_a`` is ``base``, an empty
    ``tower_b`` is tower A's checkpoint; ``key`` is the config key an error about that tower names."""
    source_a = config.model.tower_a or config.model.base
    key_a = "model.tower_a" if config.model.tower_a else "model.base"
    if config.model.tower_b:
        return (source_a, key_a), (config.model.tower_b, "model.tower_b")
    return (source_a, key_a), (source_a, key_a)


def resolve_for_model(config: Config) -> Config:
    """A copy of ``config`` with the defaults that depend on the model filled in: TNCSE's dropout by the
    backbone family of tower A (:data:`TNCSE_DROPOUT`) unless ``model.dropout`` was set. Reads the model's
    config file, so it runs once the model exists: the trainer calls it before building anything."""
    config = copy.deepcopy(config)
    if config.method == "tncse" and "model.dropout" not in config.explicit:
        from jtcse.model.loading import model_type

        source, key = tower_sources(config)[0]
        kind = model_type(model_path(source, key))
        config.model.dropout = TNCSE_DROPOUT["roberta" if "roberta" in kind else "bert"]
    return config
