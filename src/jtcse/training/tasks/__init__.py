"""What one training step computes, per method, and how the result is saved: one file per task.

* :mod:`.base`: the contract every task implements (:class:`Task`, :class:`Vectors`);
* :mod:`.simcse`: :class:`SimcseTask` (stage 1), one encoder;
* :mod:`.twin_tower`: :class:`TwinTowerTask` (stage 2, jtcse and tncse), a twin tower;
* :mod:`.distill`: :class:`DistillTask`, a student and a frozen teacher.

:func:`build_task` loads the model(s) a resolved config names (``resolve_for_model`` included: the task
never changes the config).
"""

from __future__ import annotations

from collections.abc import Callable

from jtcse.training.config import Config
from jtcse.training.tasks.base import Task, Vectors
from jtcse.training.tasks.distill import DistillTask, build_distill
from jtcse.training.tasks.simcse import SimcseTask, build_simcse
from jtcse.training.tasks.twin_tower import TwinTowerTask, build_twin

BUILDERS: dict[str, Callable[[Config], Task]] = {
    "simcse": build_simcse,
    "jtcse": build_twin,
    "tncse": build_twin,
    "distill": build_distill,
}

__all__ = ["BUILDERS", "DistillTask", "SimcseTask", "Task", "TwinTowerTask", "Vectors", "build_task"]


def build_task(config: Config) -> Task:
    """The task of ``config.method``, its model(s) loaded as the config says."""
    return BUILDERS[config.method](config)
