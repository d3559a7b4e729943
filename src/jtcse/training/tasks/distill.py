"""Distillation (D, UC-D): a single-tower student learns from a frozen teacher (method.md §4.2).

One step, for a batch of ``B`` sentences:

* the **student** (one encoder, dropout on) reads each sentence **once**, ``B`` rows, not the ``2B``
  duplicated rows of SimCSE;
* the **teacher** (frozen: eval mode, no gradients, float32 even under autocast) reads the same sentences
  with its *own* tokenizer(s) and pooler(s), so it may use another vocabulary than the student. It is loaded
  by :func:`jtcse.training.distill.load_teacher` with :class:`jtcse.Encoder`'s loader, so it is anything
  ``jtcse.Encoder`` takes: a JTCSE twin tower (its vector is ``h_CLS^A + h_CLS^B``), a UC ensemble
  (``0.3 * twin + 0.7 * InfoCSE``), a plain model;
* loss = :func:`jtcse.losses.distillation_loss` ``(student, teacher, k)``: ``k`` times the interleaved
  InfoNCE plus ``1 - k`` times the L1 pull (D: ``k = 0.01``; UC-D: ``k = 0.1``). Both parts are logged
  unweighted as ``nce`` and ``l1``.

The task implements the contract of :mod:`jtcse.training.tasks.base`: ``embed_rows`` returns ``student``
(with a graph) and ``teacher`` (without) for this process's rows, one row per sentence; ``loss_from_vectors``
computes the loss on the global batch (``vectors.all``), so DDP (the InfoNCE's negatives are every rank's
sentences) and ``train.grad_cache_chunk`` work unchanged. Under gradient caching the teacher runs twice per
chunk, as the contract re-embeds every chunk: with a twin-tower teacher (two forward passes) a grad-cached
step costs about 8 forward-pass equivalents (a backward counted as 2) instead of 6; a plain step costs 5.

The batch tensors come from :meth:`DistillTask.collate`: the student's
``input_ids``/``attention_mask``/``token_type_ids`` plus, per distinct teacher tokenizer ``g``,
``teacher{g}.input_ids`` etc. Every tensor has one row per sentence, so slicing a batch by rows slices both
student and teacher inputs alike.

The teacher is deliberately *not* a registered sub-module: it is in neither the optimizer, the checkpoint
nor the saved student, and ``task.train()`` leaves it in eval mode; ``task.to(device)`` still moves it
(:meth:`DistillTask._apply`). Its vectors are a deterministic function of the batch, so a resumed run
recomputes exactly what an unbroken one did. The saved model is a ``single`` jtcse directory (a standard
Hugging Face model dir + tokenizer + ``jtcse.json``).

Why no teacher-vector cache: the recipe is one epoch, and a cache costs one teacher pass over the corpus,
i.e. exactly what it would save (plus ``N x H`` floats of memory); it would pay only for several epochs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from jtcse.encoder import Encoder

from jtcse.errors import JtcseError
from jtcse.losses.distillation import distillation_terms
from jtcse.losses.masking import autocast_off
from jtcse.model.format import MemberSpec, ModelSpec, write_spec
from jtcse.model.pooling import needs_hidden_states, pool
from jtcse.training.config import Config, model_path
from jtcse.training.distill import STUDENT_KEYS, group_by_tokenizer, load_teacher, teacher_tower
from jtcse.training.tasks.base import Task, Vectors, batching


class DistillTask(Task):
    """A single-tower student, trained towards a frozen teacher's vectors."""

    def __init__(
        self,
        student: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        teacher: Encoder,
        *,
        pooler: str = "cls_before_pooler",
        k: float = 0.01,
        temperature: float = 0.05,
        max_len: int = 64,
        pad_to_multiple_of: int | None = None,
        teacher_name: str = "",
        student_init: str = "base",
    ) -> None:
        """``teacher``: a :class:`jtcse.Encoder` (its members are used; its own ``encode`` is not)."""
        super().__init__(
            tokenizer, max_len=max_len, rows_per_sentence=1, pad_to_multiple_of=pad_to_multiple_of or 0
        )
        if pooler == "cls":
            raise JtcseError(
                "model.pooler = 'cls': a training-only MLP head does not suit distillation (the student's "
                "vector itself must match the teacher's); use cls_before_pooler, avg or avg_first_last"
            )
        student_dim = int(student.config.hidden_size)
        if int(teacher.dim) != student_dim:
            raise JtcseError(
                f"distill.teacher = {teacher_name!r} gives {teacher.dim}-dim vectors but the student gives "
                f"{student_dim}-dim ones; the student's hidden size must equal the teacher's"
            )
        self.encoder = student
        self.pooler = pooler
        self.k = k
        self.temperature = temperature
        self.teacher_name = teacher_name
        self.student_init = student_init
        self.teacher = teacher
        # nn.Module does not register a tuple: the teacher stays out of state_dict(), parameters(), train()
        models = {id(m.model): m.model for m in teacher.members if m.model is not None}
        assert len(models) == len({id(m.model) for m in teacher.members})  # the teacher's members are torch
        self._teacher_models = tuple(models.values())
        for model in self._teacher_models:
            model.eval()
            model.requires_grad_(False)
        self._teacher_groups = group_by_tokenizer(teacher.members)

    # ------------------------------------------------------------------ the task interface
    @property
    def inference_pooler(self) -> str:
        return self.pooler

    @property
    def terms(self) -> tuple[str, ...]:
        return ("nce", "l1")

    def collate(self, sentences: Sequence[str]) -> dict[str, Tensor]:
        """Tensors for one step: the student's tokens and each teacher tokenizer's, one row per sentence."""
        batch = super().collate(sentences)
        for g, group in enumerate(self._teacher_groups):
            encoded = group.tokenizer(
                list(sentences),
                padding=True,
                truncation=group.max_length is not None,
                max_length=group.max_length,
                pad_to_multiple_of=self.pad_to_multiple_of or None,
                return_tensors="pt",
            )
            for key in STUDENT_KEYS:
                if key in encoded:
                    batch[f"teacher{g}.{key}"] = encoded[key]
        return batch

    def embed_rows(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """This process's rows: the student's vectors (with a graph) and the teacher's (without one)."""
        return {"student": self.student_vectors(batch), "teacher": self.teacher_vectors(batch)}

    def loss_from_vectors(self, vectors: Vectors) -> dict[str, Tensor]:
        """The distillation loss on the global batch: the InfoNCE's negatives are every sentence of the
        step, on every rank; the L1 mean is then the global one too, so nothing is kept local."""
        student, teacher = vectors.all["student"], vectors.all["teacher"]
        # the loss and its two parts, unweighted, for the log
        return distillation_terms(student, teacher, k=self.k, temperature=self.temperature)

    def embed(self, batch: dict[str, Tensor]) -> Tensor:
        return self.student_vectors(batch)

    def save_model(self, out_dir: Path, extra: dict[str, Any]) -> None:
        """The student alone, as a ``single`` jtcse model directory; the teacher is only named."""
        self.encoder.save_pretrained(out_dir)
        self.tokenizer.save_pretrained(out_dir)
        facts = {"teacher": self.teacher_name, "k": self.k, "student_init": self.student_init}
        spec = ModelSpec(
            kind="single",
            members=[MemberSpec(path=".", pooler=self.inference_pooler)],
            method="distill",
            extra={**facts, **extra},
        )
        write_spec(out_dir, spec)

    # ------------------------------------------------------------------ vectors
    def student_vectors(self, batch: dict[str, Tensor]) -> Tensor:
        inputs = {key: batch[key] for key in STUDENT_KEYS if key in batch}
        outputs = self.encoder(
            **inputs, output_hidden_states=needs_hidden_states(self.pooler), return_dict=True
        )
        return pool(self.pooler, outputs, inputs["attention_mask"])

    def teacher_vectors(self, batch: dict[str, Tensor]) -> Tensor:
        """``sum_i weight_i * pool_i(member_i(x))`` in float32, without gradients (as ``jtcse.Encoder``)."""
        total: Tensor | None = None
        device = batch["input_ids"].device
        with torch.no_grad(), autocast_off(device):
            for g, group in enumerate(self._teacher_groups):
                prefix = f"teacher{g}."
                inputs = {key[len(prefix) :]: value for key, value in batch.items() if key.startswith(prefix)}
                if "input_ids" not in inputs:
                    raise ValueError(
                        f"teacher_vectors: the batch has no {prefix}input_ids (build it with collate)"
                    )
                for member in group.members:
                    outputs = member.model(
                        **inputs, output_hidden_states=needs_hidden_states(member.pooler), return_dict=True
                    )
                    vectors = pool(member.pooler, outputs, inputs["attention_mask"]).float()
                    if member.weight != 1.0:
                        vectors = vectors * member.weight
                    total = vectors if total is None else total + vectors
        assert total is not None  # an Encoder has at least one member
        return total

    # ------------------------------------------------------------------ device moves
    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> DistillTask:
        # .to(device) / .cuda() reach the unregistered teacher too
        super()._apply(fn, *args, **kwargs)
        for model in self._teacher_models:
            model._apply(fn, *args, **kwargs)
        if self._teacher_models:
            self.teacher.device = next(self._teacher_models[0].parameters()).device
        return self


def build_distill(config: Config) -> DistillTask:
    """Load the teacher named by ``distill.teacher`` and the student (``model.base`` or a teacher tower)."""
    from jtcse.model.loading import load_hf_encoder, load_tokenizer

    settings = config.distill
    teacher = load_teacher(
        settings.teacher, pooler=settings.teacher_pooler or None, max_len=config.data.max_len
    )
    if settings.student_init == "base":
        key, source = "model.base", config.model.base
        path = model_path(source, key)
    else:
        key, source = f"distill.student_init = {settings.student_init!r}", settings.student_init
        path = teacher_tower(settings.teacher, settings.student_init)
    tokenizer = load_tokenizer(path, label=f"{key} ({path})")
    student = load_hf_encoder(path, label=f"{key} ({path})", dropout=config.model.dropout)
    return DistillTask(
        student.float(),  # fp32 master weights, as the other tasks
        tokenizer,
        teacher,
        pooler=config.model.pooler,
        k=settings.k,
        temperature=config.loss.temperature,
        **batching(config),
        teacher_name=settings.teacher,
        student_init=settings.student_init,
    )
