"""The study's scales (sizes of one run) and variants (rows of its table), and what each costs."""

from __future__ import annotations

from dataclasses import dataclass

from jtcse.benchmark import TASKS


@dataclass(frozen=True)
class Scale:
    name: str
    batch_size: int
    max_len: int  # stage 1 (SimCSE) truncation
    stage2_max_len: int  # TNCSE / JTCSE / distillation truncation
    stage1_steps: int  # S1: each stage-1 tower
    stage2_steps: int  # S: the twin-tower stage
    distill_steps: int
    eval_every: int  # in-loop STS-B dev (selects the saved model); 0 = none, the final state is kept
    save_every: int  # resumable checkpoint every N steps (and at the end); 0 = only at the end
    max_sentences: int  # corpus cap; 0 = all
    simcse_lr: float
    twin_lr: float | None  # None: each method's official default (jtcse 1.3e-6, tncse 1e-6)
    distill_lr: float
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    shows: str
    does_not_show: str
    sink_sentences: int = 1000  # STS-B test sentences for the attention-sink diagnostic


ALL_TASKS = TASKS

SCALES: dict[str, Scale] = {
    "tiny": Scale(
        name="tiny",
        batch_size=8,
        max_len=32,
        stage2_max_len=32,
        stage1_steps=2,
        stage2_steps=2,
        distill_steps=2,
        eval_every=0,
        save_every=0,
        max_sentences=256,
        simcse_lr=3e-5,
        twin_lr=5e-6,
        distill_lr=1e-5,
        tasks=("STS16",),
        seeds=(1,),
        sink_sentences=64,
        shows="that the whole pipeline runs end to end (every variant trains, saves, loads and is scored) "
        "and how long each piece takes on this machine.",
        does_not_show="anything about the methods: a few steps of batch 8 barely move the weights, one seed, "
        "one test task, no dev selection. Differences between rows are noise.",
    ),
    "small": Scale(
        name="small",
        batch_size=32,
        max_len=32,
        stage2_max_len=32,
        stage1_steps=40,
        stage2_steps=40,
        distill_steps=40,
        eval_every=40,
        save_every=20,
        max_sentences=0,
        simcse_lr=3e-5,
        twin_lr=5e-6,
        distill_lr=1e-5,
        tasks=ALL_TASKS,
        seeds=(1, 2, 3),
        shows="how each method moves an already strong sentence encoder (all-MiniLM-L6-v2) in a short "
        "budget, with seed spread, on the full 7-task benchmark; whether the twin-tower losses run "
        "stably and what a twin costs relative to one tower.",
        does_not_show="the paper's claims. all-MiniLM-L6-v2 was already trained with supervision on about "
        "1B sentence pairs, so unsupervised training on a few thousand Wikipedia sentences mostly "
        "perturbs it; the paper starts from raw BERT-base and trains on 1M sentences. Three seeds "
        "give a rough spread, not a significance test; differences under about one point are not "
        "evidence.",
    ),
    "paper": Scale(
        name="paper",
        batch_size=64,
        max_len=32,
        stage2_max_len=64,
        stage1_steps=15625,
        stage2_steps=15625,
        distill_steps=15625,
        eval_every=125,
        save_every=500,
        max_sentences=0,
        simcse_lr=3e-5,
        twin_lr=None,
        distill_lr=1e-5,
        tasks=ALL_TASKS,
        seeds=(1, 2, 3),
        shows="the papers' schedule (one epoch of wiki1m at batch 64 per stage, official learning rates, "
        "STS-B dev selection) applied to the MiniLM backbone, with three seeds.",
        does_not_show="the published BERT-base numbers (another backbone); the official corpus also adds "
        "the unlabelled SICK sentences. Needs the full wiki1m corpus (`jtcse data download`) "
        "and a GPU.",
    ),
}


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    what: str


VARIANTS = (
    Variant("start_cls", "start (CLS)", "the backbone as is, CLS vector of the last layer"),
    Variant("start_avg", "start (avg)", "the backbone as is, mean of the last layer's token vectors"),
    Variant("simcse", "SimCSE (one tower)", "unsupervised SimCSE, one encoder, 2(S1+S) steps"),
    Variant(
        "simcse_sum",
        "SimCSE A + B (sum)",
        "two SimCSE encoders (seeds s, s+1000), S1+S steps each, CLS vectors summed (ensemble dir, 1:1)",
    ),
    Variant(
        "tncse",
        "TNCSE-style (no CA)",
        "method tncse on two S1-step SimCSE towers: InfoNCE + ICNCE (A->B) + modulus, no cross-attention",
    ),
    Variant(
        "jtcse",
        "JTCSE",
        "method jtcse on the same towers: + cross-attention (every other layer) and its ICNCE term",
    ),
    Variant(
        "jtcse_d",
        "JTCSE-D",
        "one student from the backbone, distilled from the JTCSE twin (h_A + h_B), S distillation steps",
    ),
)
LABELS = {v.key: v.label for v in VARIANTS}

# Which training runs feed each variant (their train times add up to the variant's pipeline time).
PIPELINES: dict[str, tuple[str, ...]] = {
    "start_cls": (),
    "start_avg": (),
    "simcse": ("simcse",),
    "simcse_sum": ("sum_a", "sum_b"),
    "tncse": ("stage1_a", "stage1_b", "tncse"),
    "jtcse": ("stage1_a", "stage1_b", "jtcse"),
    "jtcse_d": ("stage1_a", "stage1_b", "jtcse", "jtcse_d"),
}


def compute_units(variant: str, scale: Scale) -> str:
    """Encoder passes in tower-steps: one forward + backward of one encoder over a batch of B sentences,
    each read twice (2B rows)."""
    s1, s = scale.stage1_steps, scale.stage2_steps
    return {
        "start_cls": "0",
        "start_avg": "0",
        "simcse": f"{2 * (s1 + s)}",
        "simcse_sum": f"{2 * (s1 + s)}",
        "tncse": f"{2 * (s1 + s)}",
        "jtcse": f"{2 * (s1 + s)}",
        "jtcse_d": f"{2 * (s1 + s)} + {scale.distill_steps} distill",
    }[variant]
