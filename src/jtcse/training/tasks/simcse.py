"""Unsupervised SimCSE (stage 1): InfoNCE with dropout positives on one encoder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

from jtcse.losses import simcse_objective
from jtcse.losses.objectives import SimcseForm
from jtcse.model.format import MemberSpec, ModelSpec, write_spec
from jtcse.model.pooling import needs_hidden_states, pool
from jtcse.training.config import Config, model_path
from jtcse.training.tasks.base import Task, Vectors, batching


class SimcseTask(Task):
    """Unsupervised SimCSE: each sentence twice (two dropout masks), InfoNCE over the batch.

    Pooler ``cls`` is SimCSE's ``cls`` with ``--mlp_only_train``: the CLS state goes through a fresh
    dense + tanh head during training only; the saved model has no head and is read with
    ``cls_before_pooler``. Other poolers train and infer alike.
    """

    def __init__(
        self,
        encoder: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        pooler: str,
        temperature: float,
        simcse_form: SimcseForm = "one_sided",  # Princeton's B x B, or the 2B x 2B interleaved
        max_len: int = 32,
        pad_to_multiple_of: int = 0,
    ) -> None:
        super().__init__(tokenizer, max_len=max_len, pad_to_multiple_of=pad_to_multiple_of)
        self.encoder = encoder
        self.pooler = pooler
        self.temperature = temperature
        self.simcse_form = simcse_form
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


def build_simcse(config: Config) -> SimcseTask:
    """``model.base`` with ``model.dropout``, in float32 (the master weights whatever the checkpoint's dtype;
    ``train.precision`` adds autocast on top)."""
    from jtcse.model.loading import load_hf_encoder, load_tokenizer

    label = f"model.base = {config.model.base!r}"
    path = model_path(config.model.base, "model.base")
    tokenizer = load_tokenizer(path, label=label)
    encoder = load_hf_encoder(path, label=label, dropout=config.model.dropout)
    return SimcseTask(
        encoder.float(),
        tokenizer,
        pooler=config.model.pooler,
        temperature=config.loss.temperature,
        simcse_form=config.loss.simcse_form,
        **batching(config),
    )
