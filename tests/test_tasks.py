"""The task contract (jtcse.training.tasks.base.Task): every method's task is one, batches come from its
``collate``, and a task that leaves out part of the contract cannot be built."""

from __future__ import annotations

import pytest
import torch

from jtcse.training.config import config_from_dict, resolve, resolve_for_model
from jtcse.training.tasks import BUILDERS, DistillTask, SimcseTask, Task, TwinTowerTask, build_task
from jtcse.training.tasks.base import Vectors
from train_fixtures import tiny_config

SENTENCES = ["a cat sits on the mat", "one bird", "the old dog runs in the park"]


def test_every_method_has_a_builder() -> None:
    from jtcse.training.config import METHODS

    assert set(BUILDERS) == set(METHODS)


@pytest.mark.parametrize(
    ("method", "kind", "rows"),
    [
        ("simcse", SimcseTask, 2),
        ("jtcse", TwinTowerTask, 2),
        ("tncse", TwinTowerTask, 2),
        ("distill", DistillTask, 1),
    ],
)
def test_each_method_builds_a_task_whose_collate_feeds_its_step(
    tmp_path, tiny_bert_dir, tiny_bert_dir_b, method, kind, rows
) -> None:
    extra = {"distill": {"teacher": str(tiny_bert_dir_b)}} if method == "distill" else {}
    model = {"tower_b": str(tiny_bert_dir_b), "dropout": 0.0} if method != "distill" else {"dropout": 0.0}
    raw = tiny_config(tmp_path, tiny_bert_dir, method=method, model=model, **extra)
    task = build_task(resolve_for_model(resolve(config_from_dict(raw))))
    assert isinstance(task, kind) and isinstance(task, Task)
    batch = task.collate(SENTENCES)
    assert batch["input_ids"].shape[0] == rows * len(SENTENCES)
    terms = task.losses(batch)
    assert set(terms) == {"loss", *task.terms} and torch.isfinite(terms["loss"])
    # losses() is the one-process contract: loss_from_vectors on the batch's own vectors
    with torch.no_grad():
        again = task.loss_from_vectors(Vectors.single(task.embed_rows(batch)))
    if method != "jtcse":  # jtcse draws its ICNCE direction per call
        torch.testing.assert_close(again["loss"], terms["loss"].detach())


def test_a_task_without_the_whole_contract_cannot_be_built() -> None:
    class Half(Task):
        @property
        def terms(self) -> tuple[str, ...]:
            return ("nce",)

        def embed_rows(self, batch):
            return {}

    with pytest.raises(TypeError, match="abstract"):
        Half(tokenizer=None, max_len=8)
