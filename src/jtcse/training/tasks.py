"""What one training step computes, per method, and how the result is saved.

A task is an ``nn.Module`` with three jobs:

* ``losses(batch)``: one forward pass per tower over the ``2B`` interleaved rows, then the objective; returns
  ``{"loss", <term>: ...}``. It is ``loss_from_vectors(Vectors.single(embed_rows(batch)))``: the two halves
  of the step contract in :mod:`jtcse.training.step` (``embed_rows``: the vectors the loss needs, row-wise;
  ``loss_from_vectors``: the objective on the global batch's vectors, per-sentence terms on the local
  rows), which is what lets the trainer shard a batch across processes (DDP) and embed it in chunks
  (gradient caching). A new task implements that contract to get both;
* ``embed(batch)``: the inference embedding (what ``jtcse.Encoder`` computes from the saved model), used for
  the STS-B dev score;
* ``save_model(out_dir, extra)``: a directory that ``jtcse.Encoder`` and ``jtcse eval sts`` load.

:class:`SimcseTask` (stage 1) trains one encoder; :class:`TwinTowerTask` (stage 2, jtcse and tncse) trains a
:class:`~jtcse.model.twin_tower.TwinTower`.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from jtcse.errors import JtcseError
from jtcse.losses import TERMS, LossWeights, jtcse_objective, modulus_constraint, simcse_objective
from jtcse.model.format import MemberSpec, ModelSpec, write_spec
from jtcse.model.pooling import needs_hidden_states, pool
from jtcse.training.config import TNCSE_DROPOUT, Config
from jtcse.training.step import Vectors


class SimcseTask(nn.Module):
    """Unsupervised SimCSE: InfoNCE with dropout positives on one encoder.

    Pooler ``cls`` is SimCSE's ``cls`` with ``--mlp_only_train``: the CLS state goes through a fresh
    dense + tanh head during training only; the saved model has no head and is read with
    ``cls_before_pooler``. Other poolers train and infer alike.
    """

    def __init__(
        self,
        encoder: nn.Module,
        tokenizer: Any,
        *,
        pooler: str,
        temperature: float,
        simcse_form: str = "one_sided",  # issue 10: loss.simcse_form
    ) -> None:
        super().__init__()
        self.simcse_form = simcse_form
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.pooler = pooler
        self.temperature = temperature
        self.mlp: nn.Module | None = None
        if pooler == "cls":
            hidden = encoder.config.hidden_size
            dense = nn.Linear(hidden, hidden)
            # as SimCSE's MLPLayer under BERT's init_weights: normal(0, initializer_range), zero bias
            nn.init.normal_(dense.weight, std=getattr(encoder.config, "initializer_range", 0.02))
            nn.init.zeros_(dense.bias)
            self.mlp = nn.Sequential(dense, nn.Tanh())

    @property
    def inference_pooler(self) -> str:
        return "cls_before_pooler" if self.pooler == "cls" else self.pooler

    @property
    def terms(self) -> tuple[str, ...]:
        return ("nce",)

    def _encode(self, batch: dict[str, Tensor], pooler: str) -> Tensor:
        name = "cls_before_pooler" if pooler == "cls" else pooler
        outputs = self.encoder(**batch, output_hidden_states=needs_hidden_states(name), return_dict=True)
        return pool(name, outputs, batch["attention_mask"])

    def embed_rows(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        z = self._encode(batch, self.pooler)
        if self.mlp is not None:
            z = self.mlp(z)
        return {"z": z}

    def loss_from_vectors(self, vectors: Vectors) -> dict[str, Tensor]:
        return simcse_objective(vectors.all["z"].float(), self.temperature, form=self.simcse_form)

    def losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return self.loss_from_vectors(Vectors.single(self.embed_rows(batch)))

    def embed(self, batch: dict[str, Tensor]) -> Tensor:
        return self._encode(batch, self.inference_pooler)

    def save_model(self, out_dir: Path, extra: dict[str, Any]) -> None:
        self.encoder.save_pretrained(out_dir)
        self.tokenizer.save_pretrained(out_dir)
        spec = ModelSpec(
            kind="single",
            members=[MemberSpec(path=".", pooler=self.inference_pooler)],
            method="simcse",
            extra=extra,
        )
        write_spec(out_dir, spec)


class TwinTowerTask(nn.Module):
    """JTCSE / TNCSE: the twin tower and its objective (method.md §2.4).

    The ICNCE direction is drawn once per step with Python's ``random.randint(0, 1)`` (seeded), as the
    official code does, unless ``loss.direction`` fixes it. Under DDP the modulus constraint (ICTM, one
    sentence's own pair) stays on each rank's rows; every other term sees the global batch.
    """

    # the pooler outputs enter only the per-sentence modulus constraint: never gathered across ranks
    local_vector_keys = ("pooled_a", "pooled_b")

    def __init__(self, twin: nn.Module, tokenizer: Any, config: Config) -> None:
        super().__init__()
        self.twin = twin
        self.tokenizer = tokenizer
        self.method = config.method
        self.temperature = config.loss.temperature
        self.small_cos_floor = config.loss.small_cos_floor
        self.with_cross_attention = config.model.cross_attention and config.model.num_ca_layers > 0
        fixed = {"random": None, "a_to_b": 0, "b_to_a": 1}[config.loss.direction]
        loss = config.loss
        self.weights = LossWeights(
            nce=loss.nce,
            icnce=loss.icnce,
            icnce_ca=loss.icnce_ca,
            ictm=loss.ictm,
            use_nce=loss.nce > 0,
            use_icnce=loss.icnce > 0,
            use_icnce_ca=loss.icnce_ca > 0 and self.with_cross_attention,
            use_ictm=loss.ictm > 0,
            fixed_direction=fixed,
        )
        # the batch-wide terms (all but ictm), computed on the gathered global batch; None: only ictm is on
        batch_wide = any(self.weights.is_on(t) for t in TERMS if t != "ictm")
        self._batch_weights = dataclasses.replace(self.weights, use_ictm=False) if batch_wide else None

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
        direction = random.randint(0, 1) if self.weights.fixed_direction is None else None
        every = vectors.all
        # only icnce_ca on: no CLS vectors; the first CA states stand in for the shapes jtcse_objective checks
        cls_a = every["cls_a" if "cls_a" in every else "ca_a.0"].float()
        cls_b = every["cls_b" if "cls_b" in every else "ca_b.0"].float()
        if self._batch_weights is not None:
            layers = range(sum(key.startswith("ca_a.") for key in every))
            terms = jtcse_objective(
                cls_a,
                cls_b,
                cls_a,  # pooler outputs: read only by ictm, which is off here (computed below, locally)
                cls_b,
                [every[f"ca_a.{layer}"].float() for layer in layers],
                [every[f"ca_b.{layer}"].float() for layer in layers],
                direction=direction,
                temperature=self.temperature,
                weights=self._batch_weights,
                small_cos_floor=self.small_cos_floor,
            )
        else:
            zero = torch.zeros((), dtype=cls_a.dtype, device=cls_a.device)
            terms = {"loss": zero, **dict.fromkeys(TERMS, zero)}
        if self.weights.is_on("ictm"):
            mine = vectors.local
            a, b = mine["cls_a"].float(), mine["cls_b"].float()
            pooled_a, pooled_b = mine["pooled_a"].float(), mine["pooled_b"].float()
            floor = self.small_cos_floor
            ictm = modulus_constraint(a, b, pooled_a, pooled_b, small_cos_floor=floor) + modulus_constraint(
                b, a, pooled_b, pooled_a, small_cos_floor=floor
            )
            if vectors.local_weight != 1.0:  # mean over this rank's sentences -> its share of the global mean
                ictm = ictm * vectors.local_weight
            terms["ictm"] = ictm
            terms["loss"] = terms["loss"] + self.weights.weight("ictm") * ictm
        return {"loss": terms["loss"], **{t: terms[t] for t in self.terms}}

    def losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return self.loss_from_vectors(Vectors.single(self.embed_rows(batch)))

    def embed(self, batch: dict[str, Tensor]) -> Tensor:
        return self.twin.embed(**batch)

    def save_model(self, out_dir: Path, extra: dict[str, Any]) -> None:
        self.twin.save_pretrained(out_dir, self.tokenizer, method=self.method, extra=extra)


def build_task(config: Config) -> nn.Module:
    """Load the model(s) and tokenizer the config names. May fill ``config.model.dropout`` (tncse)."""
    if config.is_twin:
        return _build_twin(config)
    if config.method == "distill":  # a student and a frozen teacher: jtcse.training.distill
        from jtcse.training.distill import build_distill_task

        return build_distill_task(config)
    from transformers import AutoModel

    path = _resolve(config.model.base, "model.base")
    kwargs = _dropout_kwargs(config.model.dropout)
    tokenizer = _load_tokenizer(path, "model.base")
    try:
        encoder = AutoModel.from_pretrained(path, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise JtcseError(
            f"model.base = {config.model.base!r}: cannot load a Hugging Face model ({_line(exc)})"
        ) from exc
    # fp32 master weights whatever dtype the checkpoint was saved in (train.precision adds autocast on top)
    return SimcseTask(
        encoder.float(),
        tokenizer,
        pooler=config.model.pooler,
        temperature=config.loss.temperature,
        simcse_form=config.loss.simcse_form,
    )


def _build_twin(config: Config) -> TwinTowerTask:
    from transformers import AutoConfig

    from jtcse.model.twin_tower import TwinTower

    source_a = config.model.tower_a or config.model.base
    source_b = config.model.tower_b or source_a
    key_a = "model.tower_a" if config.model.tower_a else "model.base"
    key_b = "model.tower_b" if config.model.tower_b else key_a
    path_a, path_b = _resolve(source_a, key_a), _resolve(source_b, key_b)
    if config.method == "tncse" and "model.dropout" not in config.explicit:
        model_type = AutoConfig.from_pretrained(path_a).model_type
        config.model.dropout = TNCSE_DROPOUT["roberta" if "roberta" in model_type else "bert"]
    tokenizer = _load_tokenizer(path_a, key_a)
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


def _resolve(name: str, key: str) -> str:
    from jtcse.model.names import resolve_model

    try:
        return resolve_model(name)
    except JtcseError as exc:
        reason = str(exc).removeprefix(f"--model {name}: ")
        raise JtcseError(f"{key} = {name!r}: {reason}") from exc


def _load_tokenizer(path: str, key: str) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, KeyError) as exc:
        raise JtcseError(f"{key} = {path!r}: cannot load a tokenizer ({_line(exc)})") from exc


def _check_same_vocabulary(tokenizer: Any, path_b: str, key_b: str) -> None:
    # Both towers read one set of token ids; a tower B with another vocabulary would get garbage.
    from transformers import AutoTokenizer

    try:
        other = AutoTokenizer.from_pretrained(path_b)
    except (OSError, ValueError, KeyError):
        return  # no tokenizer beside tower B: nothing to compare
    if other.get_vocab() != tokenizer.get_vocab():
        raise JtcseError(
            f"{key_b} = {path_b!r}: its tokenizer's vocabulary differs from tower A's; both towers read "
            "the same token ids, so they need one vocabulary"
        )


def _dropout_kwargs(dropout: float | None) -> dict[str, float]:
    if dropout is None:
        return {}
    return {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}


def _line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
