"""A sentence-transformers module for jtcse models with several towers (twin towers, ensembles).

The exporter copies this file into the exported directory as ``jtcse_st_module.py`` and names
``jtcse_st_module.MultiTowerEmbedding`` in ``modules.json``, so the directory loads without jtcse installed:
``SentenceTransformer(OUT, trust_remote_code=True)`` (sentence-transformers 6 asks for ``trust_remote_code``
for every module class outside its own package, installed or not).

The embedding is ``sum_i weight_i * pool_i(tower_i(x))`` on raw vectors, as ``jtcse.Encoder`` computes it;
every tower keeps its own tokenizer and truncation limit. This file therefore imports only torch,
transformers and sentence-transformers; its poolers repeat ``jtcse.model.pooling`` and the export tests check
that both give the same vectors.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer, PreTrainedModel

if TYPE_CHECKING:  # the base differs by sentence-transformers version: checked as the torch module it is
    _Base = nn.Module
else:
    try:  # sentence-transformers >= 6
        from sentence_transformers.base.modules import InputModule as _Base
    except ImportError:
        try:  # sentence-transformers 5.x
            from sentence_transformers.models import InputModule as _Base
        except ImportError:  # sentence-transformers 3.x / 4.x: modules are plain torch modules
            _Base = nn.Module

CONFIG_FILE = "jtcse_towers.json"
POOLERS = ("cls", "cls_before_pooler", "avg", "avg_first_last")


def _masked_mean(states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(dim=1) / mask.sum(dim=1)


def _pool(name: str, outputs: Any, attention_mask: torch.Tensor) -> torch.Tensor:
    if name == "cls":
        return outputs.pooler_output
    if name == "cls_before_pooler":
        return outputs.last_hidden_state[:, 0]
    if name == "avg":
        return _masked_mean(outputs.last_hidden_state, attention_mask)
    if name == "avg_first_last":  # hidden_states[1]: the first Transformer layer's output, as SimCSE reads it
        return _masked_mean((outputs.hidden_states[1] + outputs.hidden_states[-1]) / 2.0, attention_mask)
    raise ValueError(f"unknown pooler {name!r}; expected one of {POOLERS}")


class MultiTowerEmbedding(_Base):
    """Tokenizes for, runs and pools every tower; outputs the weighted sum as ``sentence_embedding``.

    ``towers``: one entry per distinct model, ``{"path": <subfolder>, "max_length": int | None}``.
    ``members``: ``{"tower": <index>, "pooler": <name>, "weight": <float>}``; members may share a tower.
    """

    save_in_root = True

    def __init__(
        self,
        towers: list[dict[str, Any]],
        members: list[dict[str, Any]],
        root: str | None = None,
        *,
        models: list[nn.Module] | None = None,
        tokenizers: list[Any] | None = None,
    ) -> None:
        """Load each tower from ``root/<path>``, or take already loaded ``models`` and ``tokenizers``."""
        super().__init__()
        self.tower_specs = [dict(t) for t in towers]
        self.member_specs = [dict(m) for m in members]
        for m in self.member_specs:
            if m["pooler"] not in POOLERS:
                raise ValueError(f"unknown pooler {m['pooler']!r}; expected one of {POOLERS}")
        if models is None or tokenizers is None:
            paths = [os.path.join(root or "", t["path"]) for t in self.tower_specs]
            models = [AutoModel.from_pretrained(p) for p in paths]
            tokenizers = [AutoTokenizer.from_pretrained(p) for p in paths]
        self.models = nn.ModuleList(m.to(torch.float32).eval() for m in models)
        self.tokenizers = list(tokenizers)
        for tokenizer in self.tokenizers:
            tokenizer.padding_side = "right"  # the CLS poolers read position 0
        self._needs_hidden = [
            any(m["pooler"] == "avg_first_last" for m in self.member_specs if m["tower"] == i)
            for i in range(len(self.tower_specs))
        ]

    # sentence-transformers reads the first module's tokenizer for a few conveniences
    @property
    def tokenizer(self) -> Any:
        return self.tokenizers[0]

    @property
    def max_seq_length(self) -> int | None:
        limits = [t["max_length"] for t in self.tower_specs if t.get("max_length") is not None]
        return min(limits) if limits else None

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        for tower in self.tower_specs:
            tower["max_length"] = value

    def get_embedding_dimension(self) -> int:
        return int(cast(PreTrainedModel, self.models[0]).config.hidden_size)

    def get_sentence_embedding_dimension(self) -> int:  # sentence-transformers < 6
        return self.get_embedding_dimension()

    def preprocess(
        self, inputs: list[Any], prompt: str | None = None, **kwargs: Any
    ) -> dict[str, torch.Tensor]:
        texts = []
        for item in inputs:
            if not isinstance(item, str):
                raise TypeError(f"jtcse towers embed text only, got {type(item).__name__}")
            texts.append(prompt + item if prompt else item)
        features: dict[str, torch.Tensor] = {}
        for i, (tower, tokenizer) in enumerate(zip(self.tower_specs, self.tokenizers, strict=True)):
            max_length = tower.get("max_length")
            encoded = tokenizer(
                texts,
                padding=True,
                truncation=max_length is not None,
                max_length=max_length,
                return_tensors="pt",
            )
            for key in ("input_ids", "attention_mask", "token_type_ids"):
                if key in encoded:
                    features[f"tower{i}_{key}"] = encoded[key]
        return features

    def tokenize(
        self, texts: list[Any], **kwargs: Any
    ) -> dict[str, torch.Tensor]:  # sentence-transformers < 5
        return self.preprocess(texts)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        total = None
        for i, model in enumerate(self.models):
            prefix = f"tower{i}_"
            inputs = {k[len(prefix) :]: v for k, v in features.items() if k.startswith(prefix)}
            outputs = model(**inputs, output_hidden_states=self._needs_hidden[i], return_dict=True)
            for m in self.member_specs:
                if m["tower"] != i:
                    continue
                vector = float(m["weight"]) * _pool(m["pooler"], outputs, inputs["attention_mask"]).float()
                total = vector if total is None else total + vector
        features["sentence_embedding"] = total
        return features

    def get_config_dict(self) -> dict[str, Any]:
        return {"towers": self.tower_specs, "members": self.member_specs}

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        os.makedirs(output_path, exist_ok=True)
        for tower, model, tokenizer in zip(self.tower_specs, self.models, self.tokenizers, strict=True):
            target = os.path.join(output_path, tower["path"])
            cast(PreTrainedModel, model).save_pretrained(target, safe_serialization=safe_serialization)
            if tower.get("max_length") is not None:  # so that other loaders of the tower truncate alike
                tokenizer.model_max_length = tower["max_length"]
            tokenizer.save_pretrained(target)
        with open(os.path.join(output_path, CONFIG_FILE), "w", encoding="utf-8") as fh:
            json.dump(self.get_config_dict(), fh, indent=2)
            fh.write("\n")

    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        **kwargs: Any,
    ) -> MultiTowerEmbedding:
        root = os.path.join(model_name_or_path, subfolder) if subfolder else model_name_or_path
        if not os.path.isdir(root):  # a hub repository: fetch the whole directory first
            from huggingface_hub import snapshot_download

            snapshot = snapshot_download(
                model_name_or_path,
                revision=revision,
                token=token,
                cache_dir=cache_folder,
                local_files_only=local_files_only,
            )
            root = os.path.join(snapshot, subfolder) if subfolder else snapshot
        with open(os.path.join(root, CONFIG_FILE), encoding="utf-8") as fh:
            config = json.load(fh)
        return cls(config["towers"], config["members"], root=root)
