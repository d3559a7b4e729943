"""Poolers: how a sentence vector is read off a Hugging Face encoder's outputs.

The names and the arithmetic follow SimCSE's ``evaluation.py`` (the protocol behind the published STS tables):

* ``cls``: the model's pooler output, i.e. BERT/RoBERTa's dense + tanh layer on the [CLS] state;
* ``cls_before_pooler``: the last layer's [CLS] state, ``last_hidden_state[:, 0]``;
* ``avg``: mean of the last layer's token states over the attention mask;
* ``avg_first_last``: mean over the attention mask of ``(first + last) / 2``, where *first* is
  ``hidden_states[1]`` (the output of the first Transformer layer, not the embedding layer
  ``hidden_states[0]``) and *last* is ``hidden_states[-1]``. This is what SimCSE's ``evaluation.py`` (and its
  training ``Pooler``) compute; some other papers use the embedding layer instead, which gives other numbers.

``cls_before_pooler`` reads position 0, so inputs must be right-padded (the encoder pads that way itself).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, get_args

from jtcse.errors import JtcseError

if TYPE_CHECKING:  # annotations only: importing the pooler names must not load torch
    from torch import Tensor

PoolerName = Literal["cls", "cls_before_pooler", "avg", "avg_first_last"]
POOLERS: tuple[PoolerName, ...] = get_args(PoolerName)


def check_pooler(name: str) -> str:
    """Return ``name`` when it is a known pooler, else raise a one-line error naming ``--pooler``."""
    if name not in POOLERS:
        raise JtcseError(f"--pooler {name}: unknown pooler; choose one of {', '.join(POOLERS)}")
    return name


def needs_hidden_states(name: str) -> bool:
    """Whether the pooler reads intermediate layers (only then is ``output_hidden_states`` worth its cost)."""
    return check_pooler(name) == "avg_first_last"


def masked_mean(states: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean of ``states`` [N, L, H] over the positions where ``attention_mask`` [N, L] is 1."""
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(dim=1) / mask.sum(dim=1)


# outputs: Any, a transformers ModelOutput (its fields differ by model class)
def pool(name: str, outputs: Any, attention_mask: Tensor) -> Tensor:
    """Sentence vectors [N, H] from model outputs (last_hidden_state, pooler_output, hidden_states)."""
    check_pooler(name)
    if name == "cls":
        pooled = getattr(outputs, "pooler_output", None)
        if pooled is None:
            raise JtcseError(
                "--pooler cls: this model has no pooler layer (dense+tanh); use cls_before_pooler"
            )
        return pooled
    if name == "cls_before_pooler":
        return outputs.last_hidden_state[:, 0]
    if name == "avg":
        return masked_mean(outputs.last_hidden_state, attention_mask)
    hidden_states = getattr(outputs, "hidden_states", None)
    if hidden_states is None:
        raise ValueError("avg_first_last needs the model to be run with output_hidden_states=True")
    return masked_mean((hidden_states[1] + hidden_states[-1]) / 2.0, attention_mask)
