"""Sentences/s and model FLOPs utilisation (MFU) of the JTCSE twin-tower training step on a CUDA GPU.

Model: two randomly initialised BERT-base towers (``transformers.BertConfig()`` defaults: 12 layers, hidden
768, 12 heads, FFN 3072, vocabulary 30522, dropout 0.1; nothing downloaded) with the bundled
all-MiniLM-L6-v2 tokenizer's vocabulary (the same 30522 bert-base-uncased WordPieces), cross-attention side
branch on 6 layers (the official default), all four loss terms, AdamW. The step is the trainer's own
(:class:`jtcse.training.step.StepExecutor` on :class:`jtcse.training.tasks.TwinTowerTask`): batch 64
sentences = 128 rows, ``max_len`` 32, random token ids.

Variants, each in its own process (SDPA flags, cuDNN graph caches and the allocator start clean):

* precision ``fp32`` | ``bf16`` (autocast, as ``train.precision``);
* lengths ``fixed`` (every batch 32 tokens) | ``varied`` (each batch's longest sentence drawn from 8..32, the
  others a little shorter: what length-bucketed batches of real text look like), with
  ``data.pad_to_multiple_of`` 0 or 8;
* bf16 only: cuDNN SDPA allowed or not (``train.cudnn_attention``), and cuDNN allowed with
  ``TORCH_CUDNN_SDPA_AVOID_RECOMPILE=1``.

Columns: sentences/s over the timed steps; median ms/step; the mean ms of steps whose input shape is new to
the process against steps whose shape was seen before (a large gap = per-shape kernel planning, the suspected
cause of slow bf16 runs, see jtcse.training.precision); model TFLOP/s and MFU.

FLOPs are counted analytically on the real (unpadded) tokens, per tower and row of length l:
``2 * P * l`` for the weight matmuls (P = 12 x (4 x 768^2 + 2 x 768 x 3072) = 84.9M weights), ``4 * 12 * l^2 *
768`` for attention scores and values, plus the pooler (``2 * 768^2``) and the cross-attention side branch
(per CA layer: ``4 * l * 768 + 2 * 768^2 + 4 * 768 * 3072``); training = 3 x forward. The loss (a 128 x 128
similarity matrix per term) and embedding lookups are left out. MFU = model FLOP/s over the GPU's dense bf16
peak: 989 TFLOP/s for an H100 SXM and an H200 (756 for H100 PCIe, 312 for A100), or ``--peak-tflops``;
fp32 rows use the same bf16 peak, to show how far they are from it. Usage::

    python bench/gpu_step.py                       # all variants (about 10 x 20 s on an H100)
    python bench/gpu_step.py --only bf16-fixed     # the headline variant only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BATCH = 64
MAX_LEN = 32
MIN_LEN = 8
CA_LAYERS = 6
PEAKS_TFLOPS = {"H100 PCIe": 756.0, "H100": 989.4, "H200": 989.4, "GH200": 989.4, "A100": 312.0}


@dataclass(frozen=True)
class Variant:
    precision: str = "bf16"
    lengths: str = "fixed"
    pad: int = 0
    cudnn: bool = False
    avoid_recompile: bool = False

    @property
    def name(self) -> str:
        text = f"{self.precision}-{self.lengths}"
        if self.lengths == "varied":
            text += f"-pad{self.pad}"
        if self.precision != "fp32":
            text += "-cudnn" if self.cudnn else "-nocudnn"
        return text + ("-avoidrecompile" if self.avoid_recompile else "")


VARIANTS = [
    Variant("fp32", "fixed"),
    Variant("fp32", "varied", 0),
    Variant("fp32", "varied", 8),
    Variant("bf16", "fixed", cudnn=True),
    Variant("bf16", "fixed", cudnn=False),
    Variant("bf16", "varied", 0, cudnn=True),
    Variant("bf16", "varied", 0, cudnn=False),
    Variant("bf16", "varied", 8, cudnn=True),
    Variant("bf16", "varied", 8, cudnn=False),
    Variant("bf16", "varied", 0, cudnn=True, avoid_recompile=True),
]
HEADLINE = "bf16-fixed-nocudnn"  # the issue's setting (batch 64, length 32, bf16) with jtcse's defaults


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (fixed shapes only)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak for MFU")
    parser.add_argument(
        "--only", action="append", default=[], help="run the variants whose name contains this (repeatable)"
    )
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # internal: run one variant, print JSON
    parser.add_argument("--small", action="store_true", help=argparse.SUPPRESS)  # reduced BERT, on any device
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="smallest real run, CPU or GPU: a reduced BERT, fp32-fixed and the headline variant, 1 timed "
        "step after 1 warm-up; measures nothing",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.small, args.steps, args.warmup = True, 1, 1
        args.only = args.only or ["fp32-fixed", HEADLINE]
    return args


# ------------------------------------------------------------------------------------------ FLOPs
def step_flops(lengths: list[int], *, hidden: int, layers: int, ffn: int, ca_layers: int) -> float:
    """Model FLOPs of one twin-tower training step for rows of these real lengths (see the docstring)."""
    weights = layers * (4 * hidden * hidden + 2 * hidden * ffn)
    forward = 0.0
    for length in lengths:
        per_tower = 2 * weights * length + 4 * layers * length * length * hidden + 2 * hidden * hidden
        per_tower += ca_layers * (4 * length * hidden + 2 * hidden * hidden + 4 * hidden * ffn)
        forward += 2 * per_tower  # two towers
    return 3.0 * forward


def gpu_peak_tflops(name: str) -> float | None:
    for key, peak in PEAKS_TFLOPS.items():  # "H100 PCIe" before "H100"
        if key in name:
            return peak
    return None


# ------------------------------------------------------------------------------------------ one variant
def batch_lengths(lengths: str, generator) -> list[int]:
    """Real lengths (with [CLS] and [SEP]) of the BATCH sentences of a step: fixed, or bucketed-like."""
    import torch

    if lengths == "fixed":
        return [MAX_LEN] * BATCH
    longest = int(torch.randint(MIN_LEN, MAX_LEN + 1, (1,), generator=generator))
    others = torch.randint(max(4, longest - 6), longest + 1, (BATCH - 1,), generator=generator).tolist()
    return [longest, *others]


def make_batch(lengths: list[int], pad: int, tokenizer, generator) -> dict:
    """Interleaved rows [x0, x0, x1, x1, ...] of random WordPieces, padded to the longest (or a multiple)."""
    import torch

    width = max(lengths)
    if pad:  # as PairTokenizer(pad_to_multiple_of=pad) with truncation at MAX_LEN
        width = min(-(-width // pad) * pad, max(MAX_LEN, width))
    ids = torch.full((len(lengths), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(lengths), width), dtype=torch.long)
    first_word = 1000  # past [unused*] and the special tokens of the bert-base-uncased vocabulary
    for row, length in enumerate(lengths):
        words = torch.randint(first_word, tokenizer.vocab_size, (length - 2,), generator=generator)
        ids[row, :length] = torch.cat(
            [torch.tensor([tokenizer.cls_token_id]), words, torch.tensor([tokenizer.sep_token_id])]
        )
        mask[row, :length] = 1
    batch = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    return {k: v.repeat_interleave(2, dim=0) for k, v in batch.items()}


def run_variant(variant: Variant, args: argparse.Namespace) -> dict:
    import numpy as np
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from jtcse.model.names import packaged_model_dir
    from jtcse.model.twin_tower import TwinTower
    from jtcse.training.config import load_config
    from jtcse.training.precision import resolve_precision
    from jtcse.training.step import StepExecutor
    from jtcse.training.tasks import TwinTowerTask

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(packaged_model_dir("minilm"))
    bert = BertConfig(vocab_size=tokenizer.vocab_size)  # bert-base defaults
    if args.small:
        bert = BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=64,
            num_hidden_layers=6,
            num_attention_heads=4,
            intermediate_size=128,
        )
    with device:  # initialise on the GPU: seconds saved per variant
        towers = [BertModel(bert), BertModel(bert)]
    twin = TwinTower(*towers, num_ca_layers=CA_LAYERS)
    overrides = ["method=jtcse", f"model.num_ca_layers={CA_LAYERS}", f"data.max_len={MAX_LEN}"]
    config = load_config(None, overrides)
    task = TwinTowerTask(twin, tokenizer, config).to(device).train()
    precision = resolve_precision(variant.precision, device, cudnn_attention=variant.cudnn)
    executor = StepExecutor(task, device, precision)
    optimizer = torch.optim.AdamW(task.parameters(), lr=1e-6, weight_decay=0.01)
    generator = torch.Generator().manual_seed(1)  # the same shapes in every variant

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    seen: set[tuple[int, int]] = set()
    timed: list[tuple[float, bool, float]] = []  # (seconds, new shape?, flops)
    losses = []
    warmup = args.warmup if variant.lengths == "fixed" else 0  # varied: every new shape is part of the story
    for step_index in range(warmup + args.steps):
        lengths = batch_lengths(variant.lengths, generator)
        batch = make_batch(lengths, variant.pad, tokenizer, generator)
        shape = tuple(batch["input_ids"].shape)
        new_shape = shape not in seen
        seen.add(shape)
        sync()
        start = time.perf_counter()
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        optimizer.zero_grad(set_to_none=True)
        terms = executor(batch, [BATCH])
        if precision.scaler is not None:
            precision.scaler.step(optimizer)
            precision.scaler.update()
        else:
            optimizer.step()
        sync()
        seconds = time.perf_counter() - start
        losses.append(float(terms["loss"]))
        if step_index >= warmup:
            rows = [n for n in lengths for _ in range(2)]
            flops = step_flops(
                rows,
                hidden=bert.hidden_size,
                layers=bert.num_hidden_layers,
                ffn=bert.intermediate_size,
                ca_layers=CA_LAYERS,
            )
            timed.append((seconds, new_shape, flops))
    total = sum(t for t, _, _ in timed)
    new = [t for t, fresh, _ in timed if fresh]
    old = [t for t, fresh, _ in timed if not fresh]
    return {
        "variant": variant.name,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "sentences_per_s": BATCH * len(timed) / total,
        "median_ms": 1000 * float(np.median([t for t, _, _ in timed])),
        "new_shape_ms": 1000 * float(np.mean(new)) if new else None,
        "seen_shape_ms": 1000 * float(np.mean(old)) if old else None,
        "new_shapes": len(new),
        "model_tflops": sum(f for _, _, f in timed) / total / 1e12,
        "peak_mem_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        "losses_finite": all(np.isfinite(losses)),
        "effective_precision": precision.name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
    }


# ------------------------------------------------------------------------------------------ driver
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.variant:
        print(json.dumps(run_variant(Variant(**json.loads(args.variant)), args)))
        return
    import torch

    if args.smoke and not torch.cuda.is_available():
        print("smoke: the cuDNN variants and the MFU skipped: no CUDA GPU here; the step runs on the CPU")
    if not torch.cuda.is_available() and not args.small:
        raise SystemExit(
            "bench/gpu_step.py: needs a CUDA GPU, and torch sees none (torch.cuda.is_available() is False; "
            f"torch {torch.__version__}). Run it on a GPU machine."
        )
    variants = [v for v in VARIANTS if not args.only or any(text in v.name for text in args.only)]
    if not variants:
        raise SystemExit(f"--only {args.only}: matches none of {', '.join(v.name for v in VARIANTS)}")
    results = []
    for variant in variants:
        env = dict(os.environ)
        if variant.avoid_recompile:
            env["TORCH_CUDNN_SDPA_AVOID_RECOMPILE"] = "1"
        else:
            env.pop("TORCH_CUDNN_SDPA_AVOID_RECOMPILE", None)
        command = [
            sys.executable,
            __file__,
            f"--variant={json.dumps(asdict(variant))}",
            f"--steps={args.steps}",
            f"--warmup={args.warmup}",
            *(["--small"] if args.small else []),
            *(["--smoke"] if args.smoke else []),
        ]
        proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-4000:])
            print(f"{variant.name}: failed (exit {proc.returncode})", flush=True)
            continue
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(result)
        print(f"{variant.name}: {result['sentences_per_s']:.0f} sentences/s", flush=True)
    if not results:
        raise SystemExit("every variant failed")

    first = results[0]
    peak = args.peak_tflops or gpu_peak_tflops(first["device"])
    print(
        f"\nJTCSE twin-tower step, 2 x {'a reduced BERT (--small)' if args.small else 'BERT-base'} "
        f"(random init), CA side branch on {CA_LAYERS} layers, "
        f"batch {BATCH} sentences (x2 rows), max_len {MAX_LEN}; {args.steps} timed steps per variant"
    )
    print(
        f"device: {first['device']}; torch {first['torch']}, CUDA {first['cuda']}, cuDNN {first['cudnn']}; "
        + (f"MFU against {peak:.0f} TFLOP/s (dense bf16)" if peak else "MFU: unknown GPU, pass --peak-tflops")
    )
    header = (
        f"{'variant':<34}{'sent/s':>8}{'med ms':>8}{'new-shape ms':>13}{'seen ms':>9}{'#new':>5}"
        f"{'TFLOP/s':>9}{'MFU':>7}{'mem GiB':>9}"
    )
    print(header)

    def number(value, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    for r in results:
        mfu = f"{100 * r['model_tflops'] / peak:.1f}%" if peak else "-"
        flag = "" if r["losses_finite"] else "  (non-finite loss!)"
        shapes = f"{number(r['new_shape_ms'], '.1f'):>13}{number(r['seen_shape_ms'], '.1f'):>9}"
        print(
            f"{r['variant']:<34}{r['sentences_per_s']:>8.0f}{r['median_ms']:>8.1f}{shapes}{r['new_shapes']:>5}"
            f"{r['model_tflops']:>9.1f}{mfu:>7}{number(r['peak_mem_gib'], '.1f'):>9}{flag}"
        )
    by_name = {r["variant"]: r for r in results}
    for bf16, fp32 in (
        ("bf16-fixed-nocudnn", "fp32-fixed"),
        ("bf16-varied-pad0-cudnn", "fp32-varied-pad0"),
        ("bf16-varied-pad8-nocudnn", "fp32-varied-pad8"),
    ):
        if bf16 in by_name and fp32 in by_name:
            ratio = by_name[bf16]["sentences_per_s"] / by_name[fp32]["sentences_per_s"]
            print(f"speed-up {bf16} / {fp32}: {ratio:.2f}x")
    if HEADLINE in by_name:
        r = by_name[HEADLINE]
        mfu = f", MFU {100 * r['model_tflops'] / peak:.1f}%" if peak else ""
        print(f"headline ({HEADLINE}): {r['sentences_per_s']:.0f} sentences/s{mfu}")


if __name__ == "__main__":
    main()
