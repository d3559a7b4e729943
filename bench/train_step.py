"""Sentences per second of one JTCSE training step: ours against an official-style step, same random batches.

Both variants train the same twin tower (all-MiniLM-L6-v2 as towers A and B, cross-attention ON in both at
``--ca-layers`` layers, side branch) with the same batch size, AdamW, one backward pass per step and the same
InfoNCE / ICNCE loss functions, on **the same batches**: ``data.batching = "random"``, the official
distribution (a seeded uniform shuffle of the timed sentences, cut into batches). They differ in what the
project changes, none of which changes the objective:

* **official-style**: every row padded to ``max_len`` (64; the official ``padding='max_length'``), the whole
  batch in one encoder pass, the modulus constraint (LTN) as the official per-pair Python loop, fp32;
* **ours**: the trainer's own step (:class:`jtcse.training.step.StepExecutor` with
  ``train.length_sorted_sub_batch``): the batch's rows encoded in length-sorted sub-batches, each padded to
  its own longest row, the vectors put back in batch order for the loss; the vectorised LTN; the trainer's
  AdamW (:func:`jtcse.training.optimization.adamw`: fused where available, the same update); fp32.

A third, informational variant, **ours, length_bucketed**, runs our step on ``length_bucketed``
batches (window = the timed sentences): other batches, hence another contrastive task; its ratio is
printed and labelled as such, never as the headline. Each variant runs in its own process (so peak RSS is
its own); ``--repeats`` rounds run the variants in turn, alternating their order, and each variant's
figure is the median over rounds (the machine is shared and noisy). The first ``--warmup`` steps of each
process are not timed. Printed: the padding fraction of each variant (padding positions / all positions
the encoder processes), the process CPU time per step, the goal, and last the ratio of sentences/s on
the same random batches. Usage::

    python bench/train_step.py                    # CPU: 2 timed steps x 2 rounds, about 10 min on 2 cores
    python bench/train_step.py --steps 30         # GPU
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

import _smoke

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

VARIANTS = ("official", "ours", "ours_bucketed")
LABELS = {
    "official": "official-style, random",
    "ours": "ours, random",
    "ours_bucketed": "ours, length_bucketed",
}
GOAL = 2.5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 2 on CPU, 30 on CUDA)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of all variants (median taken)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-len", type=int, default=64)
    parser.add_argument(
        "--sub-batch",
        type=int,
        default=None,
        help="ours: train.length_sorted_sub_batch (default: the trainer's)",
    )
    parser.add_argument(
        "--ca-layers", type=int, default=3, help="cross-attention layers in both (0 = off in both)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    parser.add_argument("--no-bucketed", action="store_true", help="skip the informational bucketed variant")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="smallest real run (tiny random twin, generated sentences, batch 4, 1 step, 1 round): "
        "checks the code, measures nothing",
    )
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.batch_size, args.max_len, args.repeats, args.warmup = 4, 16, 1, 1
        args.steps = 1
        args.ca_layers, args.no_bucketed = min(args.ca_layers, 1), True
    return args


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
def _setup(args: argparse.Namespace):
    """The task, its optimizer, the sentences and this variant's batches (the same seed for all)."""
    import torch

    from jtcse.data.batching import plan_epoch
    from jtcse.data.corpus import load_corpus, resolve_corpus_path
    from jtcse.model.loading import select_device
    from jtcse.training.config import load_config
    from jtcse.training.optimization import adamw
    from jtcse.training.seeding import seed_everything
    from jtcse.training.tasks import build_task

    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(None if args.device == "auto" else args.device)
    seed_everything(42)
    n_sentences = (args.warmup + args.steps) * args.batch_size
    if args.smoke:
        sentences, base = _smoke.sentences(n_sentences), str(_smoke.tiny_model(layers=2))
    else:
        path = resolve_corpus_path("wiki", args.data_dir)
        sentences, base = (
            load_corpus(path, max_sentences=n_sentences, max_chars=20 * args.max_len).sentences,
            "minilm",
        )
    if len(sentences) < n_sentences:
        raise SystemExit(f"only {len(sentences)} sentences; lower --steps")
    config = load_config(
        None,
        [
            "method=jtcse",
            f"model.base={base}",
            f"model.num_ca_layers={args.ca_layers}",
            f"model.cross_attention={'true' if args.ca_layers else 'false'}",
            f"data.max_len={args.max_len}",
        ],
    )
    task = build_task(config).to(device)
    task.train()
    if args.variant == "official":  # the official torch.optim.AdamW(model.parameters(), lr), decay 0.01
        optimizer = torch.optim.AdamW(task.parameters(), lr=1e-6, weight_decay=0.01)
    else:  # the trainer's: the same update, fused where available
        optimizer = adamw([{"params": list(task.parameters()), "weight_decay": 0.01}], 1e-6)
    batching = "length_bucketed" if args.variant == "ours_bucketed" else "random"
    lengths = [len(s) for s in sentences]
    window = args.warmup + args.steps  # bucketed: the window is all timed sentences
    batches = plan_epoch(lengths, args.batch_size, seed=42, epoch=0, batching=batching, bucket_window=window)
    return task, optimizer, sentences, batches, device


def _padding(batch: dict, sub_batch: int, n_sentences: int) -> tuple[int, int]:
    """(padding positions, all positions) the encoder processes for this batch (per tower)."""
    from jtcse.training.sub_batching import length_sorted_split

    parts = [batch]
    if sub_batch and sub_batch < n_sentences:
        parts, _ = length_sorted_split(batch, n_sentences, sub_batch)
    total = sum(int(p["attention_mask"].numel()) for p in parts)
    return total - sum(int(p["attention_mask"].sum()) for p in parts), total


def run_variant(args: argparse.Namespace) -> dict:
    import random

    import torch

    from jtcse.data.batching import PairTokenizer
    from jtcse.training.precision import resolve_precision
    from jtcse.training.step import StepExecutor
    from jtcse.training.sub_batching import resolve_sub_batch

    task, optimizer, sentences, batches, device = _setup(args)
    official = args.variant == "official"
    pairs = PairTokenizer(task.tokenizer, args.max_len, pad_to_max_length=official)
    sub_batch = 0 if official else resolve_sub_batch(args.sub_batch, device)
    executor = StepExecutor(
        task, device, resolve_precision("fp32", device), length_sorted_sub_batch=sub_batch
    )

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    timed, cpu, padding, positions, losses = 0.0, 0.0, 0, 0, []
    for step_index, indices in enumerate(batches):
        sync()
        start, cpu_start = time.perf_counter(), time.process_time()
        batch = {k: v.to(device) for k, v in pairs([sentences[i] for i in indices]).items()}
        optimizer.zero_grad(set_to_none=True)
        if official:
            out = task.twin(**batch, with_cross_attention=bool(args.ca_layers))
            loss = official_objective(out, random.randint(0, 1))
            loss.backward()
        else:
            loss = executor(batch, [len(indices)])["loss"]
        optimizer.step()
        losses.append(loss.item())
        sync()
        if step_index >= args.warmup:
            timed += time.perf_counter() - start
            cpu += time.process_time() - cpu_start
            pad, total = _padding(batch, sub_batch, len(indices))
            padding, positions = padding + pad, positions + total
    return {
        "variant": args.variant,
        "device": str(device)
        + (
            f" {torch.cuda.get_device_name(device)}"
            if device.type == "cuda"
            else f" ({torch.get_num_threads()} threads)"
        ),
        "sentences_per_s": args.steps * args.batch_size / timed,
        "seconds_per_step": timed / args.steps,
        "cpu_s_per_step": cpu / args.steps,
        "sub_batch": sub_batch,
        "padding_fraction": padding / positions,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "losses_finite": all(math.isfinite(x) for x in losses),
    }


# ------------------------------------------------------------------------------------------ driver
def _run_rounds(args: argparse.Namespace, variants: list[str]) -> dict[str, list[dict]]:
    names = ("steps", "warmup", "batch_size", "max_len", "ca_layers", "device", "threads")
    passthrough = [f"--{name.replace('_', '-')}={getattr(args, name)}" for name in names]
    passthrough += [f"--sub-batch={args.sub_batch}"] if args.sub_batch is not None else []
    passthrough += [f"--data-dir={args.data_dir}"] if args.data_dir else []
    passthrough += ["--smoke"] if args.smoke else []
    results: dict[str, list[dict]] = {v: [] for v in variants}
    for round_index in range(args.repeats):
        order = variants if round_index % 2 == 0 else variants[::-1]  # drifting load hits all alike
        for variant in order:
            proc = subprocess.run(
                [sys.executable, __file__, f"--variant={variant}", *passthrough],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr)
                raise SystemExit(f"variant {variant} failed")
            results[variant].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return results


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.variant:
        print(json.dumps(run_variant(args)))
        return
    import torch

    on_cuda = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
    if args.steps is None:
        args.steps = 30 if on_cuda else 2
    variants = ["official", "ours"] + ([] if args.no_bucketed else ["ours_bucketed"])
    if args.smoke:
        _smoke.skipped("the length_bucketed variant", "the same step on other batches; one process less")
    results = _run_rounds(args, variants)
    speed = {v: statistics.median(r["sentences_per_s"] for r in runs) for v, runs in results.items()}
    ca = f"cross-attention ON in both ({args.ca_layers} layers, side_all)" if args.ca_layers else "CA OFF"
    model = (
        "a tiny random BERT (--smoke: checks the code, measures nothing)"
        if args.smoke
        else "all-MiniLM-L6-v2"
    )
    print(
        f"JTCSE train step, twin {model}, batch {args.batch_size} sentences (x2 rows), max_len "
        f"{args.max_len}, {ca}; {args.steps} timed steps after {args.warmup} warm-up, {args.repeats} rounds"
    )
    print(
        f"device: {results['ours'][0]['device']}; ours: length-sorted sub-batches of "
        f"{results['ours'][0]['sub_batch']} sentences"
    )
    print(f"goal: ours / official-style >= {GOAL}x sentences/s, same random batches (CPU, MiniLM, batch 64)")
    print(f"{'variant':<26}{'sentences/s':>12}{'s/step':>9}{'padding':>9}{'peak RSS MiB':>14}  per round")
    for variant, runs in results.items():
        r = runs[0]
        rounds = ", ".join(f"{x['sentences_per_s']:.1f}" for x in runs)
        print(
            f"{LABELS[variant]:<26}{speed[variant]:>12.1f}{args.batch_size / speed[variant]:>9.2f}"
            f"{r['padding_fraction']:>9.1%}{max(x['peak_rss_mib'] for x in runs):>14.0f}  {rounds}"
        )
        if not all(x["losses_finite"] for x in runs):
            print(f"WARNING: {LABELS[variant]}: a non-finite loss")
    cpu = {v: statistics.median(r["cpu_s_per_step"] for r in runs) for v, runs in results.items()}
    print(
        f"process CPU time per step (less sensitive to other load): official-style {cpu['official']:.2f} s, "
        f"ours {cpu['ours']:.2f} s, ratio {cpu['official'] / cpu['ours']:.2f}x"
    )
    if "ours_bucketed" in speed:
        bucketed = speed["ours_bucketed"] / speed["official"]
        print(f"length_bucketed ratio (other batches, another task; informational): {bucketed:.2f}x")
    ratio = speed["ours"] / speed["official"]
    print(f"ratio ours / official-style, sentences/s on the same random batches: {ratio:.2f}x")


if __name__ == "__main__":
    main()
