"""The frozen teacher of distillation (``method = "distill"``, method.md §4.2): loading it, finding a tower
of a twin-tower teacher for the student to start from, and grouping its members by tokenizer.

The student and its objective are :class:`jtcse.training.tasks.distill.DistillTask`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jtcse.errors import JtcseError
from jtcse.model.format import ModelSpec, is_jtcse_dir, read_spec, resolve_member_path
from jtcse.model.tokenizer_groups import group_by_tokenizer as group_members

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

STUDENT_KEYS = ("input_ids", "attention_mask", "token_type_ids")
TOWER_INDEX = {"tower_a": 0, "tower_b": 1}
# Nested jtcse directories searched for a twin tower (an ensemble holding a twin is one level).
_MAX_NESTING = 8


@dataclass
class TeacherGroup:
    """Teacher members that read one tokenisation (a twin tower's two towers share one vocabulary)."""

    tokenizer: PreTrainedTokenizerBase
    max_length: int | None
    members: list[Any]  # jtcse.encoder.Member


def load_teacher(name: str, *, pooler: str | None = None, max_len: int | None = None) -> Any:
    """The frozen teacher as a :class:`jtcse.Encoder` on the CPU (the task moves it with itself).

    ``max_len`` truncates the teacher's inputs as the student's are (``data.max_len``), never beyond a
    member's own position limit. Errors name ``distill.teacher``.
    """
    from jtcse.encoder import Encoder

    if not name.strip():
        raise JtcseError(
            "distill.teacher: not set; name the frozen teacher (a jtcse twin-tower or ensemble dir)"
        )
    try:
        teacher = Encoder(name, pooler=pooler, device="cpu", max_length=max(max_len, 2) if max_len else None)
    except JtcseError as exc:
        reason = str(exc)
        for prefix in (f"--model {name}: ", "--model "):
            if reason.startswith(prefix):
                reason = reason[len(prefix) :]
                break
        reason = reason.replace("--pooler", "distill.teacher_pooler")
        raise JtcseError(f"distill.teacher = {name!r}: {reason}") from exc
    if any(member.model is None for member in teacher.members):
        raise JtcseError(
            f"distill.teacher = {name!r}: an ONNX export cannot teach; use the model it came from"
        )
    for member in teacher.members:
        # the CLS poolers read position 0; right padding keeps [CLS] there whatever the tokenizer's default
        member.tokenizer.padding_side = "right"
    return teacher


def teacher_tower(teacher: str, which: str) -> str:
    """The directory of tower A or B of the teacher's twin tower (the teacher, or one an ensemble holds)."""
    from jtcse.model.names import resolve_model

    found = _find_twin(resolve_model(teacher), depth=0)
    if found is None:
        raise JtcseError(
            f"distill.student_init = {which!r}: the teacher {teacher!r} is not a twin tower and holds none; "
            "use distill.student_init = 'base' with model.base"
        )
    spec, twin_dir = found
    return resolve_member_path(twin_dir, spec.members[TOWER_INDEX[which]])


def _find_twin(path: str, depth: int) -> tuple[ModelSpec, str] | None:
    if depth > _MAX_NESTING or not is_jtcse_dir(path):
        return None
    spec = read_spec(path)
    if spec.kind == "twin" and len(spec.members) == 2:
        return spec, path
    for member in spec.members:
        member_path = resolve_member_path(path, member)
        if Path(member_path).resolve() != Path(path).resolve():
            found = _find_twin(member_path, depth + 1)
            if found is not None:
                return found
    return None


def group_by_tokenizer(members: Sequence[Any]) -> list[TeacherGroup]:
    """Members with an identical tokenizer (same fast-tokenizer definition, same limit) share one call."""
    return [
        TeacherGroup(group[0].tokenizer, group[0].max_length, list(group)) for group in group_members(members)
    ]
