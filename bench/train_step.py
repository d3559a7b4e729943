"""Sentences per second of one JTCSE training step: ours against an official-style step.

Both variants train the same twin tower (all-MiniLM-L6-v2 as towers A and B, cross-attention ON in both at
``--ca-layers`` layers, side branch) on the same wiki1m sentences with the same batch size, AdamW, one
backward pass per step, and the same InfoNCE / ICNCE loss functions. They differ in what the project
changes:

* **official-style**: sentences in file order, every row padded to ``max_len`` (64), the modulus constraint
  (LTN) as the official per-pair Python loop, fp32;
* **ours**: the trainer's own path (jtcse.training.tasks.TwinTowerTask) with its defaults: length-bucketed
  batches padded to their longest sentence, the vectorised LTN, fp32. The bucketing window here is the
  timed sentences only (warm-up + steps batches), narrower than the trainer's 50 batches, so the bench
  understates the padding saved in a real run.

On CUDA a third, informational variant runs ours under bf16 autocast (``train.precision = "bf16"``); the
headline ratio is fp32 against fp32. Each variant runs in its own process (so peak RSS is its own); the
first ``--warmup`` steps are not timed. The ratio is printed last. Usage::

    python bench/train_step.py                    # CPU: a few steps, a few minutes on 2 cores
    python bench/train_step.py --steps 30         # GPU
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 4 on CPU, 30 on CUDA)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-len", type=int, default=64)
    parser.add_argument(
        "--ca-layers", type=int, default=3, help="cross-attention layers in both (0 = off in both)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    parser.add_argument("--no-bf16", action="store_true", help="skip the informational bf16 variant on CUDA")
    parser.add_argument(
        "--pad-multiple",
        type=int,
        default=0,
        help="ours: data.pad_to_multiple_of (default 0, as the trainer)",
    )
    parser.add_argument(
        "--no-cudnn-attention", action="store_true", help="disable the cuDNN SDPA backend in both variants"
    )
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--variant", choices=("official", "ours", "ours_bf16"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ------------------------------------------------------------------------------------------ the official LTN
def official_ltn(a, b, pooled_a, pooled_b):
    """LTN(A -> B) as the official code computes it: a Python loop over the sentences (method.md §2.3)."""
    import torch
    import torch.nn.functional as F

    total = 0.0
    n_sentences = a.shape[0] // 2
    for k in range(n_sentences):
        e, o = 2 * k, 2 * k + 1
        cos = F.cosine_similarity(a[e], b[o], dim=0)
        if cos < 0:  # a host sync per pair, as in the original
            cos = torch.tensor(1e-4, device=a.device)
        modulus = (
            torch.norm(pooled_a[e] - pooled_b[o]) / (torch.norm(pooled_a[e]) + torch.norm(pooled_b[o])) / 2
        )
        total = total + (-torch.log(cos) * modulus)
    return total / n_sentences


def official_objective(out, direction: int, temperature: float = 0.05):
    import torch

    from jtcse.losses import cross_tower_info_nce, info_nce

    a, b = out.cls_a, out.cls_b
    loss = info_nce(a, temperature) + info_nce(b, temperature)
    first, second = (a, b) if direction == 0 else (b, a)
    loss = loss + cross_tower_info_nce(first, second, temperature)
    if out.ca_a:
        pairs = zip(out.ca_a, out.ca_b, strict=True)
        ca = [
            cross_tower_info_nce(u, v, temperature)
            if direction == 0
            else cross_tower_info_nce(v, u, temperature)
            for u, v in pairs
        ]
        loss = loss + torch.stack(ca).mean()
    return (
        loss + official_ltn(a, b, out.pooled_a, out.pooled_b) + official_ltn(b, a, out.pooled_b, out.pooled_a)
    )


# ------------------------------------------------------------------------------------------ one variant
def run_variant(args: argparse.Namespace) -> dict:
    import contextlib
    import random

    import numpy as np
    import torch

    from jtcse.data.batching import PairTokenizer, plan_epoch
    from jtcse.data.corpus import load_corpus, resolve_corpus_path
    from jtcse.model.loading import select_device
    from jtcse.training.config import load_config
    from jtcse.training.seeding import seed_everything
    from jtcse.training.tasks import build_task

    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(None if args.device == "auto" else args.device)
    if args.no_cudnn_attention and hasattr(torch.backends.cuda, "enable_cudnn_sdp"):
        torch.backends.cuda.enable_cudnn_sdp(False)
    pad_multiple = args.pad_multiple
    seed_everything(42)
    n_steps = args.warmup + args.steps
    corpus = load_corpus(
        resolve_corpus_path("wiki", args.data_dir),
        max_sentences=n_steps * args.batch_size,
        max_chars=20 * args.max_len,
    )
    sentences = corpus.sentences
    if len(sentences) < n_steps * args.batch_size:
        raise SystemExit(f"only {len(sentences)} sentences; lower --steps")

    config = load_config(
        None,
        [
            "method=jtcse",
            "model.base=minilm",
            f"model.num_ca_layers={args.ca_layers}",
            f"model.cross_attention={'true' if args.ca_layers else 'false'}",
            f"data.max_len={args.max_len}",
        ],
    )
    task = build_task(config).to(device)
    task.train()
    optimizer = torch.optim.AdamW(task.parameters(), lr=1e-6, weight_decay=0.01)

    official = args.variant == "official"
    pairs = PairTokenizer(
        task.tokenizer,
        args.max_len,
        pad_to_max_length=official,
        pad_to_multiple_of=None if official or not pad_multiple else pad_multiple,
    )
    if official:
        batches = [list(range(i * args.batch_size, (i + 1) * args.batch_size)) for i in range(n_steps)]
    else:
        batches = plan_epoch(
            [len(s) for s in sentences], args.batch_size, seed=42, epoch=0, bucket_window=n_steps
        )
    use_bf16 = args.variant == "ours_bf16" and device.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_bf16 else contextlib.nullcontext

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    tokens = 0
    timed = 0.0
    losses = []
    step_seconds = []
    for step, indices in enumerate(batches):
        sync()
        start = time.perf_counter()
        batch = {k: v.to(device) for k, v in pairs([sentences[i] for i in indices]).items()}
        if official:
            out = task.twin(**batch, with_cross_attention=bool(args.ca_layers))
            loss = official_objective(out, random.randint(0, 1))
        else:
            with autocast():
                loss = task.losses(batch)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        sync()
        step_seconds.append(round(time.perf_counter() - start, 4))
        if step >= args.warmup:
            timed += step_seconds[-1]
            tokens += int(batch["input_ids"].numel())
    result = {
        "variant": args.variant + ("" if use_bf16 else " (fp32)"),
        "device": str(device)
        + (
            f" {torch.cuda.get_device_name(device)}"
            if device.type == "cuda"
            else f" ({torch.get_num_threads()} threads)"
        ),
        "sentences_per_s": args.steps * args.batch_size / timed,
        "seconds_per_step": timed / args.steps,
        "rows_x_tokens_per_step": tokens / args.steps,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_cuda_mib": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
        "losses_finite": all(math.isfinite(x) for x in losses),
        "step_seconds": step_seconds,
        "mean_tokens": float(
            np.mean([len(t) for t in task.tokenizer(sentences[: 64 * n_steps])["input_ids"]])
        ),
    }
    return result


# ------------------------------------------------------------------------------------------ driver
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.variant:
        print(json.dumps(run_variant(args)))
        return
    import numpy as np
    import torch

    on_cuda = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
    if args.steps is None:
        args.steps = 30 if on_cuda else 4
    variants = ["official", "ours"] + (["ours_bf16"] if on_cuda and not args.no_bf16 else [])
    passthrough = [
        f"--pad-multiple={args.pad_multiple}",
        *(["--no-cudnn-attention"] if args.no_cudnn_attention else []),
        f"--steps={args.steps}",
        f"--warmup={args.warmup}",
        f"--batch-size={args.batch_size}",
        f"--max-len={args.max_len}",
        f"--ca-layers={args.ca_layers}",
        f"--device={args.device}",
        f"--threads={args.threads}",
    ]
    if args.data_dir:
        passthrough.append(f"--data-dir={args.data_dir}")
    results = {}
    for variant in variants:
        proc = subprocess.run(
            [sys.executable, __file__, f"--variant={variant}", *passthrough],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            raise SystemExit(f"variant {variant} failed")
        results[variant] = json.loads(proc.stdout.strip().splitlines()[-1])

    ca = (
        f"cross-attention ON in both ({args.ca_layers} layers, side_all)"
        if args.ca_layers
        else "cross-attention OFF in both"
    )
    print(
        f"JTCSE train step, twin all-MiniLM-L6-v2, batch {args.batch_size} sentences (x2 rows), max_len "
        f"{args.max_len}, {ca}; {args.steps} timed steps after {args.warmup} warm-up"
    )
    print(
        f"device: {results['ours']['device']}; mean tokens per sentence {results['ours']['mean_tokens']:.1f}"
    )
    print(
        f"{'variant':<22}{'sentences/s':>12}{'s/step':>9}{'rows*tokens':>13}"
        f"{'peak RSS MiB':>14}{'peak CUDA MiB':>15}"
    )
    for r in results.values():
        cuda = f"{r['peak_cuda_mib']:.0f}" if r["peak_cuda_mib"] is not None else "-"
        print(
            f"{r['variant']:<22}{r['sentences_per_s']:>12.1f}{r['seconds_per_step']:>9.3f}"
            f"{r['rows_x_tokens_per_step']:>13.0f}{r['peak_rss_mib']:>14.0f}{cuda:>15}"
        )
    if "ours_bf16" in results:
        bf16_ratio = results["ours_bf16"]["sentences_per_s"] / results["official"]["sentences_per_s"]
        print(f"ratio ours (bf16 autocast, informational) / official-style: {bf16_ratio:.2f}x")
    for name, r in results.items():
        timed_steps = r["step_seconds"][args.warmup :]
        print(f"{name}: median s/step {float(np.median(timed_steps)):.4f}, max {max(timed_steps):.4f}")
    for name, r in results.items():
        print(f"peak RSS {name}: {r['peak_rss_mib']:.0f} MiB")
    ratio = results["ours"]["sentences_per_s"] / results["official"]["sentences_per_s"]
    print(f"ratio ours / official-style: {ratio:.2f}x (goal >= 3x)")


if __name__ == "__main__":
    main()
