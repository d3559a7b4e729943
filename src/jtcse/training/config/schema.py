"""The config's keys: one dataclass per section, each key with its type, default and meaning.

A choice key is typed with the ``Literal`` alias of the module its concept lives in (``model.ca_mode``:
:data:`jtcse.model.cross_attention.CaMode`, ...); loading checks a value against that type's members
(:func:`choices`), so the options are written once.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from jtcse.data.batching import Batching
from jtcse.data.corpus import BadUtf8Policy
from jtcse.losses.objectives import Direction, SimcseForm
from jtcse.model.cross_attention import CaMode, CaPlacement
from jtcse.model.pooling import PoolerName
from jtcse.training.precision import PrecisionName

# the learning-rate schedule after warmup (training/optimization.py applies it)
Schedule = Literal["linear", "constant"]

Method = Literal["simcse", "jtcse", "tncse", "distill"]
METHODS: tuple[Method, ...] = typing.get_args(Method)
TWIN_METHODS: tuple[Method, ...] = ("jtcse", "tncse")
# distill.student_init: where the student starts (``model.base`` or a tower of the twin-tower teacher)
StudentInit = Literal["base", "tower_a", "tower_b"]
SECTIONS = ("model", "data", "train", "loss", "eval", "distill")


@dataclass
class ModelConfig:
    base: str = "minilm"
    """simcse: the encoder to train. jtcse/tncse: the checkpoint for a tower whose own key is empty."""
    tower_a: str = ""
    """jtcse/tncse: tower A (a stage-1 output dir, an HF dir or hub id); empty = ``base``."""
    tower_b: str = ""
    """jtcse/tncse: tower B; empty = the same checkpoint as tower A (the towers then start identical and
    differ only through their dropout masks, which are separate draws of the seeded RNG)."""
    pooler: PoolerName = "cls"
    """simcse: ``cls`` = CLS state + an MLP used only in training (SimCSE's ``--mlp_only_train``; inference
    uses ``cls_before_pooler``), ``cls_before_pooler``, ``avg`` or ``avg_first_last`` (no MLP)."""
    dropout: float | None = None
    """Attention and hidden dropout of the encoder(s); none = keep the checkpoint's own value."""
    num_ca_layers: int = 6
    """jtcse: equally spaced cross-attention layers (must divide the encoder's layer count; 0 = none)."""
    ca_mode: CaMode = "side_all"
    """jtcse: ``side_all`` | ``side_last`` | ``in_stream`` (method.md §1.2) [inferred]."""
    ca_placement: CaPlacement = "end"
    """jtcse: ``end`` = after layers s, 2s, ..., L (the last layer always has CA); ``start`` = 1, 1+s, ..."""
    cross_attention: bool = True
    """jtcse: run the cross-attention branch at all (tncse: off)."""


@dataclass
class DataConfig:
    corpus: str = "wiki"
    """A text file, one sentence per line, or ``wiki`` = the wiki1m corpus from the data directory."""
    data_dir: str = ""
    """Where ``wiki`` and the STS-B dev set are looked up; empty = the usual order (jtcse.data.paths)."""
    max_sentences: int = 0
    """Use only the first N sentences (after blank lines and duplicates are dropped); 0 = all."""
    dedup: bool = False
    """Drop repeated sentences (exact match after stripping), keeping the first."""
    max_len: int = 32
    """Tokens per sentence (truncation); batches are padded only to their longest sentence."""
    max_chars: int = 0
    """Characters kept per line before tokenising (bounds the cost of huge lines); 0 = 20 * max_len."""
    on_bad_utf8: BadUtf8Policy = "skip"
    """A line that is not valid UTF-8: ``skip`` (counted, warned with its line number) or ``error``."""
    batching: Batching = "random"
    """``random``: a uniform shuffle per epoch cut into batches, the official distribution
    (``DataLoader(shuffle=True)`` / SimCSE's RandomSampler) [inferred default for every method].
    ``length_bucketed``: batches of similar-length sentences (``bucket_window``), less padding but other
    in-batch negatives, hence another contrastive task (jtcse.data.batching)."""
    bucket_window: int = 50
    """``length_bucketed`` only: this many batches' worth of shuffled sentences are sorted by length and cut
    into batches, and the batches are shuffled; 1 = plain shuffled batches."""
    drop_last: bool = False
    """Drop the last batch of an epoch when it has fewer than ``batch_size`` sentences."""
    pad_to_multiple_of: int | None = None
    """Pad each batch to a multiple of N tokens (fewer distinct shapes for GPU kernels); 0 = to the longest
    sentence exactly; none = 8 on CUDA, 0 elsewhere (jtcse.training.precision; an unverified GPU default)."""


@dataclass
class TrainConfig:
    lr: float = 3e-5
    """Peak learning rate of AdamW (reached after the warm-up)."""
    batch_size: int = 64
    """Sentences per step (each is encoded twice, so the model sees 2x rows)."""
    epochs: int = 1
    """Passes over the corpus (ignored when ``max_steps`` > 0)."""
    max_steps: int = 0
    """> 0: train this many steps (over as many epochs as needed) and size the LR schedule to it."""
    stop_after: int = 0
    """> 0: stop after this step with a checkpoint, as if interrupted; ``--resume`` continues. The LR schedule
    and data order are those of the full run."""
    warmup_steps: int = 0
    """Steps of linear warm-up from 0 to ``lr``."""
    warmup_ratio: float = 0.0
    """Warm-up as a fraction of the total steps (used when warmup_steps is 0)."""
    weight_decay: float = 0.0
    """AdamW's decoupled weight decay (which parameters it applies to: ``weight_decay_all``)."""
    weight_decay_all: bool = False
    """true: weight decay on every parameter (``AdamW(model.parameters())``, as the official JTCSE and CACSE
    code); false: biases and LayerNorm weights exempt (the HF Trainer, hence SimCSE)."""
    schedule: Schedule = "linear"
    """``linear`` (decay to 0, HF Trainer's default, as SimCSE) or ``constant`` (the official JTCSE code)."""
    grad_clip: float = 1.0
    """Max gradient norm; 0 = no clipping (HF Trainer clips at 1.0; the official JTCSE code does not clip)."""
    precision: PrecisionName = "fp32"
    """``fp32`` | ``bf16`` | ``fp16`` (autocast; CUDA only, fp32 elsewhere with a warning; fp16 adds a
    gradient scaler, bf16 becomes fp16 on a GPU without bf16). See jtcse.training.precision."""
    cudnn_attention: bool = False
    """Let attention use PyTorch's cuDNN SDPA kernel under bf16/fp16 on CUDA; off by default because it
    builds a kernel graph per new batch shape (suspected cause of slow bf16 runs; unverified)."""
    length_sorted_sub_batch: int | None = None
    """> 0: a batch's sentences are *encoded* in length-sorted sub-batches of this many sentences, each
    padded to its own longest row, and the vectors are put back in batch order before the loss: the loss
    and its in-batch negatives are the batch's, only padding is saved (jtcse.training.sub_batching).
    0 = one pass padded to the batch's longest sentence; none = 8 on a CPU (bench/train_step.py), 32 on a
    GPU [unmeasured]. One process only (under torchrun: one pass); a grad-cached step (``grad_cache_chunk``)
    chunks its own way. Pays off on ``random`` batches; ``length_bucketed`` ones have little padding."""
    grad_cache_chunk: int = 0
    """> 0: gradient caching, embedding the batch in chunks of this many sentences (the loss still sees the
    whole batch; less memory, about +1/3 compute; dropout masks replayed). 0 = one pass per step."""
    device: str = "auto"
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:1``, ``mps``. Under torchrun
    (WORLD_SIZE > 1) each process uses cuda:LOCAL_RANK (auto/cuda) or the CPU (cpu)."""
    threads: int = 0
    """CPU threads for torch; 0 = torch's default (the physical cores)."""
    deterministic: bool = True
    """cuDNN deterministic mode, as the official code (no effect on CPU, which is deterministic)."""
    log_every: int = 10
    """Write a metrics.jsonl line every N steps (and at the last step)."""
    save_every: int = 100
    """Write the resumable checkpoint every N steps (and at the end); 0 = only at the end."""
    progress: bool = True
    """Show a tqdm progress bar."""
    tensorboard: bool = False
    """Also log to TensorBoard (OUT/tensorboard; needs the tensorboard package)."""


@dataclass
class LossConfig:
    temperature: float = 0.05
    """Temperature of every InfoNCE term (the cosines are divided by it)."""
    nce: float = 1.0
    """Weight of L_nce (each tower's SimCSE InfoNCE); 0 turns it off."""
    icnce: float = 1.0
    """jtcse: weight of the inter-tower InfoNCE on the CLS states; 0 turns it off."""
    icnce_ca: float = 1.0
    """jtcse: weight of the inter-tower InfoNCE on the cross-attention outputs; 0 turns it off."""
    ictm: float = 1.0
    """jtcse: weight of the tensor-modulus constraint (A->B + B->A); 0 turns it off."""
    direction: Direction = "random"
    """jtcse: ICNCE direction: ``random`` (drawn per step from Python's seeded ``random``, as the official
    code), ``a_to_b`` (TNCSE) or ``b_to_a``."""
    simcse_form: SimcseForm = "one_sided"
    """simcse: ``one_sided`` = Princeton's SimCSE: the B first dropout copies scored against the B second
    copies, a B x B cross-entropy (B - 1 negatives per row); ``interleaved`` = the 2B x 2B InfoNCE with both
    copies as anchors (2B - 2 negatives), the form of the JTCSE towers' own term (loss.nce of jtcse/tncse is
    always interleaved, as the official model_dual.py)."""
    small_cos_floor: float | None = 1e-4
    """Modulus constraint: cosines in [0, floor) are replaced by the constant floor; none = the official code
    exactly (a zero cosine gives inf)."""


@dataclass
class EvalConfig:
    every: int = 125
    """STS-B dev Spearman every N steps; the best state is the output model (the official cadence: only at
    multiples of N). 0 = no dev evaluation: the output model is the final state, as it is when no
    evaluation ran at all (fewer than N steps)."""
    at_final_step: bool = False
    """Also evaluate at the last step (which the official scripts never do), so the final state can be
    the one selected."""
    dev_max_len: int = 64
    """Truncation of the dev sentences (the official in-loop loader truncates to 64); 0 = none."""
    batch_size: int = 128
    """Sentences per batch when encoding the dev set."""


@dataclass
class DistillConfig:
    """``method = "distill"`` (D, UC-D; method.md §4.2): a single-tower student (``model.base``, its pooler
    ``model.pooler``, its dropout ``model.dropout``) learns from a frozen teacher."""

    teacher: str = ""
    """The frozen teacher: a jtcse twin-tower dir (D), a jtcse ensemble dir (UC-D), or any encoder
    ``jtcse.Encoder`` loads (a jtcse or Hugging Face dir, a short name, a hub id). It reads the sentences with
    its own tokenizer(s), truncated at ``data.max_len``."""
    teacher_pooler: str = ""
    """Override the teacher's poolers; empty = its own (``jtcse.json``, else the sentence-transformers
    pooling, else ``cls_before_pooler``)."""
    k: float = 0.01
    """loss = k * interleaved InfoNCE + (1 - k) * L1(student, teacher). D: 0.01; UC-D: 0.1."""
    student_init: StudentInit = "base"
    """Where the student starts: ``base`` = ``model.base``; ``tower_a`` / ``tower_b`` = that tower of the
    twin-tower teacher (or of the twin tower inside an ensemble teacher)."""


@dataclass
class Config:
    method: Method = "simcse"
    """What to train: ``simcse`` (one encoder; stage 1), ``jtcse`` / ``tncse`` (a twin tower; stage 2) or
    ``distill`` (a single-tower student of a frozen teacher, the ``[distill]`` section)."""
    seed: int = 42
    """Seeds every random stream of a run: torch (dropout masks, initialisation), Python's ``random`` (the
    cross-tower direction), numpy, and the data order (drawn from ``(seed, epoch)``)."""
    output_dir: str = ""
    """Where everything goes; empty = runs/<method>. The CLI's --output-dir overrides it."""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    explicit: set[str] = field(default_factory=set, repr=False, compare=False, metadata={"internal": True})
    """Keys the user set (file or --set); method defaults fill only the others."""

    # -- views -------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in schema_fields(Config):
            value = getattr(self, f.name)
            out[f.name] = (
                dataclasses.asdict(value)
                if dataclasses.is_dataclass(value) and not isinstance(value, type)
                else value
            )
        return out

    def flat(self) -> dict[str, Any]:
        """``{"train.lr": 3e-05, ...}`` for every key."""
        flat: dict[str, Any] = {}
        for key, value in self.to_dict().items():
            if isinstance(value, dict):
                flat.update({f"{key}.{k}": v for k, v in value.items()})
            else:
                flat[key] = value
        return flat

    def get(self, key: str) -> Any:
        section, _, name = key.rpartition(".")
        return getattr(getattr(self, section) if section else self, name)

    @property
    def is_twin(self) -> bool:
        return self.method in TWIN_METHODS


def schema_fields(cls: type) -> list[dataclasses.Field[Any]]:
    """The dataclass fields of ``cls`` that are config keys (not internal bookkeeping)."""
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("internal")]


def choices(tp: Any) -> tuple[str, ...] | None:
    """The allowed values of a ``Literal`` type (None for any other type)."""
    return typing.get_args(tp) if typing.get_origin(tp) is Literal else None


def key_types() -> dict[str, Any]:
    """The type of every key, ``{"train.lr": float, "model.ca_mode": CaMode, ...}``."""
    out: dict[str, Any] = {}
    hints = typing.get_type_hints(Config)
    for f in schema_fields(Config):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            sub_hints = typing.get_type_hints(tp)
            for sub in dataclasses.fields(tp):
                out[f"{f.name}.{sub.name}"] = sub_hints[sub.name]
        else:
            out[f.name] = tp
    return out
