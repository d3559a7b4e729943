"""JTCSE / TNCSE (stage 2): a :class:`~jtcse.model.twin_tower.TwinTower` and its objective (method.md
§2.4)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor

from jtcse.errors import JtcseError
from jtcse.losses import LossWeights, jtcse_objective
from jtcse.training.config import Config, model_path, tower_sources
from jtcse.training.tasks.base import Task, Vectors, batching

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from jtcse.model.twin_tower import TwinTower


class TwinTowerTask(Task):
    """JTCSE / TNCSE: the twin tower and :func:`jtcse.losses.jtcse_objective`.

    The ICNCE direction is drawn once per step with Python's ``random.randint(0, 1)`` (seeded), as the
    official code does, unless ``loss.direction`` fixes it. Under DDP the modulus constraint (ICTM, one
    sentence's own pair) stays on each rank's rows; every other term sees the global batch.
    """

    # the pooler outputs enter only the per-sentence modulus constraint: never gathered across ranks
    local_vector_keys = ("pooled_a", "pooled_b")

    def __init__(self, twin: TwinTower, tokenizer: PreTrainedTokenizerBase, config: Config) -> None:
        super().__init__(tokenizer, **batching(config))
        self.twin = twin
        self.method = config.method
        self.temperature = config.loss.temperature
        self.small_cos_floor = config.loss.small_cos_floor
        self.with_cross_attention = config.model.cross_attention and config.model.num_ca_layers > 0
        loss = config.loss
        self.weights = LossWeights(
            nce=loss.nce,
            icnce=loss.icnce,
            icnce_ca=loss.icnce_ca if self.with_cross_attention else 0.0,
            ictm=loss.ictm,
            fixed_direction={"random": None, "a_to_b": 0, "b_to_a": 1}[loss.direction],
        )

    @property
    def terms(self) -> tuple[str, ...]:
        return tuple(t for t in ("nce", "icnce", "icnce_ca", "ictm") if self.weights.is_on(t))

    def embed_rows(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """What the terms that are on read: CLS states (nce, icnce, ictm), pooler outputs (ictm), one
        cross-attention state per CA layer and tower (icnce_ca). Nothing the loss ignores (DDP)."""
        out = self.twin(**batch, with_cross_attention=self.with_cross_attention)
        vectors = {}
        if any(self.weights.is_on(t) for t in ("nce", "icnce", "ictm")):
            vectors["cls_a"], vectors["cls_b"] = out.cls_a, out.cls_b
        if self.weights.is_on("ictm"):
            vectors["pooled_a"], vectors["pooled_b"] = out.pooled_a, out.pooled_b
        if self.weights.is_on("icnce_ca"):
            for layer, (state_a, state_b) in enumerate(zip(out.ca_a, out.ca_b, strict=True)):
                vectors[f"ca_a.{layer}"], vectors[f"ca_b.{layer}"] = state_a, state_b
        return vectors

    def loss_from_vectors(self, vectors: Vectors) -> dict[str, Tensor]:
        """Every term on the global batch but the modulus term, which reads this rank's rows (see
        ``jtcse_objective``'s ``ictm_rows``)."""
        direction = random.randint(0, 1) if self.weights.fixed_direction is None else None
        every, mine = vectors.all, vectors.local
        # only icnce_ca on: no CLS vectors; the first CA states stand in for the shapes jtcse_objective checks
        cls_a = every["cls_a" if "cls_a" in every else "ca_a.0"].float()
        cls_b = every["cls_b" if "cls_b" in every else "ca_b.0"].float()
        ictm_rows = None
        if self.weights.is_on("ictm"):
            ictm_rows = (
                mine["cls_a"].float(),
                mine["cls_b"].float(),
                mine["pooled_a"].float(),
                mine["pooled_b"].float(),
            )
        layers = range(sum(key.startswith("ca_a.") for key in every))
        terms = jtcse_objective(
            cls_a,
            cls_b,
            None,  # the pooler outputs are read through ictm_rows only
            None,
            [every[f"ca_a.{layer}"].float() for layer in layers],
            [every[f"ca_b.{layer}"].float() for layer in layers],
            direction=direction,
            temperature=self.temperature,
            weights=self.weights,
            small_cos_floor=self.small_cos_floor,
            ictm_rows=ictm_rows,
            ictm_scale=vectors.local_weight,
        )
        return {"loss": terms["loss"], **{t: terms[t] for t in self.terms}}

    def embed(self, batch: dict[str, Tensor]) -> Tensor:
        return self.twin.embed(**batch)

    def save_model(self, out_dir: Path, extra: dict[str, Any]) -> None:
        self.twin.save_pretrained(out_dir, self.tokenizer, method=self.method, extra=extra)


def build_twin(config: Config) -> TwinTowerTask:
    """Towers A and B (:func:`jtcse.training.config.tower_sources`) with ``model.dropout`` (TNCSE's is filled
    in by :func:`~jtcse.training.config.resolve_for_model`), one tokenizer, float32 master weights."""
    from jtcse.model.loading import load_tokenizer
    from jtcse.model.twin_tower import TwinTower

    (source_a, key_a), (source_b, key_b) = tower_sources(config)
    path_a, path_b = model_path(source_a, key_a), model_path(source_b, key_b)
    tokenizer = load_tokenizer(path_a, label=f"{key_a} = {path_a!r}")
    if path_b != path_a:
        _check_same_vocabulary(tokenizer, path_b, key_b)
    twin = TwinTower.from_pretrained(
        path_a,
        path_b,
        dropout=config.model.dropout,
        num_ca_layers=config.model.num_ca_layers,
        ca_mode=config.model.ca_mode,
        ca_placement=config.model.ca_placement,
    )
    return TwinTowerTask(twin.float(), tokenizer, config)


def _check_same_vocabulary(tokenizer: PreTrainedTokenizerBase, path_b: str, key_b: str) -> None:
    # Both towers read one set of token ids; a tower B with another vocabulary would get garbage.
    from jtcse.model.loading import load_tokenizer

    try:
        other = load_tokenizer(path_b, label=key_b)
    except JtcseError:
        return  # no tokenizer beside tower B: nothing to compare
    if other.get_vocab() != tokenizer.get_vocab():
        raise JtcseError(
            f"{key_b} = {path_b!r}: its tokenizer's vocabulary differs from tower A's; both towers read "
            "the same token ids, so they need one vocabulary"
        )
