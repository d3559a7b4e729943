"""The JTCSE/TNCSE twin tower: two independent BERT/RoBERTa encoders plus cross-attention between them.

Both towers read the same token ids. Training uses :meth:`TwinTower.forward` (each tower's CLS state and
pooler output, plus the cross-attention CLS states of :mod:`jtcse.model.cross_attention`); inference uses
:meth:`TwinTower.embed`, the sum of the towers' CLS states without cross-attention (method.md §1.3).

Saved layout (``save_pretrained`` / ``load``)::

    out_dir/
      jtcse.json      kind "twin": tower_a + tower_b, cls_before_pooler, weight 1.0; extra: the CA settings
      tower_a/        a standard Hugging Face model dir (config, weights, tokenizer files)
      tower_b/        idem
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

from jtcse.errors import JtcseError
from jtcse.model.cross_attention import (
    CA_MODES,
    CaMode,
    CaPlacement,
    ca_layer_indices,
    check_tower_structure,
    encoder_layers,
    run_in_stream,
    side_cls_states,
    tap_layers,
)
from jtcse.model.format import (
    MemberSpec,
    ModelSpec,
    read_spec,
    resolve_member_path,
    verify_model_dir,
    write_spec,
)

TOWER_DIRS = ("tower_a", "tower_b")
DEFAULT_NUM_CA_LAYERS = 6  # the official --num_ca_layers default


@dataclass
class TwinTowerOutput:
    cls_a: Tensor  # [N, H] last_hidden_state[:, 0] of tower A
    cls_b: Tensor  # [N, H] of tower B
    pooled_a: Tensor  # [N, H] pooler output (dense + tanh on CLS) of tower A
    pooled_b: Tensor
    # one [N, H] CLS state per cross-attention layer the loss uses (empty without CA);
    # ca_a: A's attention probabilities applied to B's values, then A's output sublayers (ca_b symmetric)
    ca_a: list[Tensor] = field(default_factory=list)
    ca_b: list[Tensor] = field(default_factory=list)


class TwinTower(nn.Module):
    """Two towers of one architecture and size; cross-attention at ``num_ca_layers`` equally spaced layers.

    ``ca_mode``: ``side_all`` (default) returns a side-branch CA state for every CA layer and leaves the
    towers' main streams untouched; ``side_last`` only for the last CA layer; ``in_stream`` replaces
    self-attention by cross-attention in the main stream at CA layers (``cls_a``/``cls_b`` then depend on CA).
    ``ca_placement``: ``end`` (CA after layers s, 2s, ..., L) or ``start`` (1, 1+s, ...), 1-indexed, s = L/n.
    """

    def __init__(
        self,
        tower_a: PreTrainedModel,
        tower_b: PreTrainedModel,
        *,
        num_ca_layers: int = DEFAULT_NUM_CA_LAYERS,
        ca_mode: CaMode = "side_all",
        ca_placement: CaPlacement = "end",
    ) -> None:
        super().__init__()
        if tower_a is tower_b:
            raise JtcseError(
                "tower A and tower B are the same module; load two copies (the towers share nothing)"
            )
        check_tower_structure(tower_a, "tower A")
        check_tower_structure(tower_b, "tower B")
        _check_compatible(tower_a, tower_b)
        self.tower_a = tower_a
        self.tower_b = tower_b
        self.num_ca_layers = num_ca_layers
        self.ca_mode = ca_mode
        self.ca_placement = ca_placement
        self.ca_layer_indices: list[int] = []
        self.set_cross_attention(num_ca_layers=num_ca_layers, ca_mode=ca_mode, ca_placement=ca_placement)
        # where the towers came from, so save_pretrained can carry their tokenizers along
        self.sources: tuple[str | None, str | None] = (None, None)

    def set_cross_attention(
        self,
        *,
        num_ca_layers: int | None = None,
        ca_mode: CaMode | None = None,
        ca_placement: CaPlacement | None = None,
    ) -> None:
        """Change the CA settings (validated; ``None`` keeps a setting); recomputes ``ca_layer_indices``."""
        mode = self.ca_mode if ca_mode is None else ca_mode
        if mode not in CA_MODES:
            raise JtcseError(f"ca_mode {mode!r}: must be one of {', '.join(CA_MODES)}")
        count = self.num_ca_layers if num_ca_layers is None else num_ca_layers
        placement = self.ca_placement if ca_placement is None else ca_placement
        self.ca_layer_indices = ca_layer_indices(len(encoder_layers(self.tower_a)), count, placement)
        self.num_ca_layers, self.ca_mode, self.ca_placement = count, mode, placement

    # ------------------------------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        path_a: str | Path,
        path_b: str | Path,
        *,
        dropout: float | None = None,
        num_ca_layers: int = DEFAULT_NUM_CA_LAYERS,
        ca_mode: CaMode = "side_all",
        ca_placement: CaPlacement = "end",
        **model_kwargs: Any,
    ) -> TwinTower:
        """Load two towers with ``AutoModel``.

        ``dropout`` overrides the hidden and attention-probs dropout of both towers (None keeps the
        checkpoints' values, 0.1 for BERT/RoBERTa; TNCSE used 2.5e-4). ``model_kwargs`` go to
        ``AutoModel.from_pretrained`` (e.g. ``attn_implementation="eager"``, ``torch_dtype``).
        """
        if dropout is not None and not (isinstance(dropout, int | float) and 0.0 <= float(dropout) < 1.0):
            raise JtcseError(f"dropout {dropout!r}: must be a number in [0, 1)")
        if dropout is not None:
            model_kwargs = {**model_kwargs, "dropout": float(dropout)}
        tower_a = _load_tower(path_a, "tower A", model_kwargs)
        tower_b = _load_tower(path_b, "tower B", model_kwargs)
        model = cls(tower_a, tower_b, num_ca_layers=num_ca_layers, ca_mode=ca_mode, ca_placement=ca_placement)
        model.sources = (str(path_a), str(path_b))
        return model

    @classmethod
    def load(cls, model_dir: str | Path, **overrides: Any) -> TwinTower:
        """Read a dir written by :meth:`save_pretrained`; CA settings from ``jtcse.json`` unless given."""
        spec = read_spec(model_dir)
        if spec.kind != "twin" or len(spec.members) != 2:
            raise JtcseError(
                f"{Path(model_dir) / 'jtcse.json'}: kind {spec.kind!r} with {len(spec.members)} member(s) "
                f"is not a twin tower (need kind 'twin' with 2 members)"
            )
        verify_model_dir(model_dir, spec)  # checksums written with jtcse.json
        ca_keys = ("num_ca_layers", "ca_mode", "ca_placement")
        given = {k: overrides.pop(k) for k in ca_keys if k in overrides}
        saved = {k: spec.extra[k] for k in ca_keys if k in spec.extra and k not in given}
        path_a, path_b = (resolve_member_path(model_dir, m) for m in spec.members)
        model = cls.from_pretrained(path_a, path_b, num_ca_layers=0, **overrides)
        try:  # a bad CA setting in jtcse.json is reported with the file's name
            model.set_cross_attention(**saved)
        except JtcseError as exc:
            raise JtcseError(f"{Path(model_dir) / 'jtcse.json'}: extra: {exc}") from exc
        model.set_cross_attention(**given)
        return model

    # ------------------------------------------------------------------------------------------ forward
    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        *,
        with_cross_attention: bool = True,
    ) -> TwinTowerOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        use_ca = with_cross_attention and bool(self.ca_layer_indices)
        if use_ca and self.ca_mode == "in_stream":
            return self._forward_in_stream(input_ids, attention_mask, token_type_ids)
        if not use_ca:
            out_a = self._plain(self.tower_a, input_ids, attention_mask, token_type_ids)
            out_b = self._plain(self.tower_b, input_ids, attention_mask, token_type_ids)
            return TwinTowerOutput(
                out_a.last_hidden_state[:, 0],
                out_b.last_hidden_state[:, 0],
                out_a.pooler_output,
                out_b.pooler_output,
            )
        return self._forward_side(input_ids, attention_mask, token_type_ids)

    def embed(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None
    ) -> Tensor:
        """Inference embedding: ``h_CLS^A + h_CLS^B`` (raw sum), towers run plainly, no cross-attention."""
        out = self.forward(input_ids, attention_mask, token_type_ids, with_cross_attention=False)
        return out.cls_a + out.cls_b

    def _side_indices(self) -> list[int]:
        return self.ca_layer_indices[-1:] if self.ca_mode == "side_last" else list(self.ca_layer_indices)

    def _forward_side(
        self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None
    ) -> TwinTowerOutput:
        indices = self._side_indices()
        with tap_layers(self.tower_a, indices) as taps_a:
            out_a = self._plain(self.tower_a, input_ids, attention_mask, token_type_ids)
        with tap_layers(self.tower_b, indices) as taps_b:
            out_b = self._plain(self.tower_b, input_ids, attention_mask, token_type_ids)
        layers_a, layers_b = encoder_layers(self.tower_a), encoder_layers(self.tower_b)
        ca_a: list[Tensor] = []
        ca_b: list[Tensor] = []
        for i in indices:
            state_a, state_b = side_cls_states(layers_a[i], taps_a[i], layers_b[i], taps_b[i], attention_mask)
            ca_a.append(state_a)
            ca_b.append(state_b)
        return TwinTowerOutput(
            out_a.last_hidden_state[:, 0],
            out_b.last_hidden_state[:, 0],
            out_a.pooler_output,
            out_b.pooler_output,
            ca_a,
            ca_b,
        )

    def _forward_in_stream(
        self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None
    ) -> TwinTowerOutput:
        hidden_a, hidden_b, ca_a, ca_b = run_in_stream(
            self.tower_a, self.tower_b, input_ids, attention_mask, token_type_ids, self.ca_layer_indices
        )
        return TwinTowerOutput(
            hidden_a[:, 0],
            hidden_b[:, 0],
            self.tower_a.get_submodule("pooler")(hidden_a),
            self.tower_b.get_submodule("pooler")(hidden_b),
            ca_a,
            ca_b,
        )

    @staticmethod
    def _plain(
        tower: nn.Module, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None
    ) -> Any:
        return tower(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            return_dict=True,
        )

    # ------------------------------------------------------------------------------------------ saving
    def save_pretrained(
        self,
        out_dir: str | Path,
        tokenizer: PreTrainedTokenizerBase | None = None,
        *,
        method: str = "jtcse",
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Write ``tower_a/``, ``tower_b/`` (standard HF dirs, with tokenizer files) and then ``jtcse.json``.

        ``tokenizer=None`` copies each tower's tokenizer from the directory it was loaded from, when known.
        ``jtcse.json`` is written last (atomically), so a directory that has it holds both towers.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, tower, source in zip(TOWER_DIRS, (self.tower_a, self.tower_b), self.sources, strict=True):
            tower.save_pretrained(out / name)
            tok = tokenizer if tokenizer is not None else _tokenizer_from(source)
            if tok is None:
                warnings.warn(f"{out / name}: no tokenizer saved (pass tokenizer=...)", stacklevel=2)
            else:
                tok.save_pretrained(out / name)
        ca_settings = {
            "num_ca_layers": self.num_ca_layers,
            "ca_mode": self.ca_mode,
            "ca_placement": self.ca_placement,
            "ca_layer_indices": list(self.ca_layer_indices),
        }
        spec = ModelSpec(
            kind="twin",
            members=[MemberSpec(path=name, pooler="cls_before_pooler", weight=1.0) for name in TOWER_DIRS],
            method=method,
            extra={**ca_settings, **(extra or {})},
        )
        write_spec(out, spec)


# ---------------------------------------------------------------------------------------------- helpers
def _load_tower(path: str | Path, name: str, model_kwargs: dict[str, Any]) -> PreTrainedModel:
    from jtcse.model.format import is_jtcse_dir
    from jtcse.model.loading import load_hf_encoder
    from jtcse.model.names import resolve_model

    text = str(path)
    if text.startswith((".", "/", "~")) and not Path(text).expanduser().exists():
        raise JtcseError(f"{name} {text}: no such directory")
    resolved = resolve_model(path)
    if is_jtcse_dir(resolved):  # e.g. a stage-1 SimCSE output: a 'single' jtcse model
        spec = read_spec(resolved)
        if spec.kind != "single":
            raise JtcseError(
                f"{name} {path}: is a jtcse '{spec.kind}' model, not a single encoder; "
                f"use TwinTower.load for a saved twin tower, or pass one of its tower_a/ tower_b/ dirs"
            )
        resolved = resolve_member_path(resolved, spec.members[0])
    return load_hf_encoder(resolved, label=f"{name} {path}", **model_kwargs)


def _check_compatible(tower_a: PreTrainedModel, tower_b: PreTrainedModel) -> None:
    ca, cb = tower_a.config, tower_b.config
    for attr, what in (
        ("model_type", "architecture"),
        ("hidden_size", "hidden size"),
        ("num_hidden_layers", "number of layers"),
        ("num_attention_heads", "number of attention heads"),
    ):
        va, vb = getattr(ca, attr, None), getattr(cb, attr, None)
        if va != vb:
            raise JtcseError(
                f"towers differ in {what} ({attr}: tower A {va}, tower B {vb}); "
                f"cross-attention needs two towers of the same architecture and size"
            )
    if ca.vocab_size != cb.vocab_size:
        raise JtcseError(
            f"towers have different vocabularies (vocab_size: tower A {ca.vocab_size}, "
            f"tower B {cb.vocab_size}); both towers read the same token ids, so they must share one tokenizer"
        )


def _tokenizer_from(source: str | None) -> Any:
    if source is None:
        return None
    from jtcse.model.loading import load_tokenizer
    from jtcse.model.names import resolve_model

    path = resolve_model(source)
    try:
        return load_tokenizer(path, label=source)
    except JtcseError:
        return None
