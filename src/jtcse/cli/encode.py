"""``jtcse encode --model M --input sents.txt --output vecs.npy|DIR``: one vector per input line.

A file name ending in ``.npy`` / ``.safetensors`` gives one matrix (small inputs, held in memory); any other
``--output`` is a folder of shards (any input size, bounded memory, ``--resume``, several processes under
``torchrun``), see :mod:`jtcse.corpus_scale`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TypeVar

from jtcse.cli.options import add_model_options, add_progress_option, load_encoder, positive_int
from jtcse.errors import JtcseError

T = TypeVar("T")

FOLDER_SUFFIXES = ("", ".vectors", ".shards")  # an --output with these is a folder of shards
EPILOG = """\
examples:
  jtcse encode --model minilm --input sents.txt --output vecs.npy
  jtcse encode --model runs/jtcse --input sents.txt --output vecs.safetensors --normalize
  jtcse encode --model minilm --input corpus.txt --output corpus.vectors --normalize      # a folder of shards
  jtcse encode --model minilm --input corpus.txt --output corpus.vectors --normalize --resume
  torchrun --nproc_per_node 4 -m jtcse encode --model minilm --input corpus.txt --output corpus.vectors
  jtcse encode --model minilm --input corpus.txt --output corpus.vectors --shard-format parquet --with-text

A single file: row i is line i+1 of the input (a blank line encodes as the empty sentence). .npy holds a
float32 matrix; .safetensors holds it under the key "embeddings", with the source file in the metadata.

A folder (a name without extension, or ending in .vectors): shards of --shard-size lines
(shard-00000.npy, ...) and manifest.json (model, pooler, dimension, normalisation, line count, each
shard's line range and sha256). Row i of the shards in order is line i+1;
a blank line is a zero row. Memory depends on --shard-size, not on the input. --resume continues a killed
run from its last complete shard, with any number of processes. Under torchrun every process encodes its
own range of shards (on cuda:LOCAL_RANK when there is a GPU); the manifest is complete once all are done.
--shard-format parquet writes columns id (the 0-based line), vector (fixed-size list of float32) and, with
--with-text, text: the layout Spark, DuckDB, Milvus and Qdrant bulk-load (docs/scaling.md).
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "encode",
        help="encode a text file (one sentence per line) into .npy / .safetensors or a folder of shards",
        description="Encode every line of a text file with a sentence encoder and save the vectors.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_options(parser)
    parser.add_argument("--input", required=True, type=Path, help="UTF-8 text file, one sentence per line")
    parser.add_argument(
        "--output",
        required=True,
        type=Path,
        help="a file ending in .npy or .safetensors, or a folder (shards)",
    )
    parser.add_argument("--normalize", action="store_true", help="scale every vector to unit length")
    shards = parser.add_argument_group("a folder of shards (large inputs)")
    shards.add_argument(
        "--shard-size", type=positive_int, help="lines per shard (default: 100000); memory grows with it"
    )
    shards.add_argument(
        "--shard-format", choices=("npy", "safetensors", "parquet"), help="shard files (default: npy)"
    )
    shards.add_argument("--with-text", action="store_true", help="parquet: a text column with each line")
    shards.add_argument("--resume", action="store_true", help="continue an unfinished run in --output")
    add_progress_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jtcse.corpus_scale.manifest import MANIFEST_NAME
    from jtcse.output_policy import check_output
    from jtcse.tools.encode_file import VECTOR_SUFFIXES

    suffix = args.output.suffix.lower()
    inputs = {"--input": args.input, "--model": args.model}
    if suffix in VECTOR_SUFFIXES:
        check_output(args.output, option="--output", kind="file", inputs=inputs)
        return _run_single_file(args)
    if suffix in FOLDER_SUFFIXES or args.output.is_dir():
        check_output(args.output, option="--output", ours=(MANIFEST_NAME,), inputs=inputs)
        return _run_sharded(args)
    raise JtcseError(
        f"--output {args.output}: unknown file type; use a name ending in .npy or .safetensors, or a folder "
        f"(a name without extension, or ending in .vectors) for shards"
    )


def _run_single_file(args: argparse.Namespace) -> int:
    from jtcse.fs import remove_stale_temporaries
    from jtcse.launcher import launched_world
    from jtcse.tools.encode_file import encode_file

    for flag, value in (
        ("--resume", args.resume),
        ("--shard-size", args.shard_size),
        ("--shard-format", args.shard_format),
        ("--with-text", args.with_text),
    ):
        if value:
            raise JtcseError(f"{flag}: only for a folder --output (shards), not the file {args.output}")
    if launched_world()[2] > 1:
        raise JtcseError(f"--output {args.output}: under torchrun, --output must be a folder (shards)")
    remove_stale_temporaries(args.output.parent)  # what an encode or search killed mid-write left there
    encoder = load_encoder(args)
    vectors = encode_file(
        encoder,
        args.input,
        args.output,
        normalize=args.normalize,
        show_progress=args.progress,
        metadata={"model": str(args.model)},
    )
    zero = int((~vectors.any(axis=1)).sum()) if args.normalize else 0
    note = ", unit length" if args.normalize else ""
    note += f" (except {zero} all-zero vector(s): left at zero)" if zero else ""
    print(
        f"wrote {vectors.shape[0]} x {vectors.shape[1]} float32 vectors{note} to {args.output}",
        file=sys.stderr,
    )
    return 0


class _TorchCoordinator:
    """Ranks under torchrun agree through a gloo process group (CPU; it works beside GPUs too)."""

    def __init__(self) -> None:
        from jtcse.training.distributed import init_distributed

        context, _, _ = init_distributed("cpu")
        self.rank, self.world_size = context.rank, context.world_size

    def broadcast(self, obj: T) -> T:
        from jtcse.training.distributed import broadcast_object

        return broadcast_object(obj)

    def wait_for_all(self) -> None:
        """gloo's monitored barrier, with no practical time limit: rank 0 holds the folder's lock until the
        slowest machine is done, however uneven (the process group's own timeout is 30 minutes)."""
        from datetime import timedelta

        import torch.distributed as dist

        dist.monitored_barrier(timeout=timedelta(days=7), wait_all_ranks=True)


def _rank_device(device: str | None, local_rank: int) -> str | None:
    """Under torchrun each process encodes on cuda:LOCAL_RANK when there is a GPU (as training does)."""
    import torch

    if device in (None, "cuda") and torch.cuda.is_available():
        return f"cuda:{local_rank % torch.cuda.device_count()}"
    return device


def _run_sharded(args: argparse.Namespace) -> int:
    from jtcse.corpus_scale.encode import DEFAULT_SHARD_SIZE, ShardOptions, encode_to_shards
    from jtcse.launcher import launched_world

    rank, local_rank, world = launched_world()
    coordinator = _TorchCoordinator() if world > 1 else None
    if world > 1:
        args.device = _rank_device(args.device, local_rank)
    encoder = load_encoder(args)
    options = ShardOptions(
        shard_size=args.shard_size or DEFAULT_SHARD_SIZE,
        shard_format=args.shard_format or "npy",
        normalize=args.normalize,
        batch_size=args.batch_size,
        resume=args.resume,
        progress=args.progress is not False,
        with_text=args.with_text,
    )
    result = encode_to_shards(encoder, args.input, args.output, options, coordinator)
    who = "" if world == 1 else f"rank {rank}: "
    resumed = f" ({result.already_done} were done before: resumed)" if result.already_done else ""
    shards = len(result.manifest["shards"])
    print(f"{who}encoded {result.encoded} of {shards} shards{resumed}", file=sys.stderr)
    if result.complete:
        m = result.manifest
        print(
            f"complete: {m['lines']:,} x {m['dim']} float32 vectors ({m['blank']:,} blank lines as zero "
            f"rows) in {args.output}/",
            file=sys.stderr,
        )
    return 0
