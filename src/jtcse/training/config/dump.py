"""The resolved config written out: ``train_config.yaml`` and a digest for comparisons."""

from __future__ import annotations

import json

from jtcse.training.config.schema import Config


def dump_yaml(config: Config) -> str:
    """The resolved config as YAML (loadable by ``jtcse train``)."""
    import yaml

    header = "# resolved jtcse training config: every key, method defaults filled in\n"
    return header + yaml.safe_dump(config.to_dict(), sort_keys=False)


def config_digest(config: Config) -> str:
    return json.dumps(config.to_dict(), sort_keys=True)
