"""Mixed precision: the effective dtype per device, the CPU fallback, the GPU defaults, and (on CUDA) bf16
and fp16 training steps."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch

from jtcse.data.batching import PairTokenizer
from jtcse.training.config import config_from_dict, resolve
from jtcse.training.precision import CUDA_PAD_MULTIPLE, resolve_pad_multiple, resolve_precision
from jtcse.training.seeding import seed_everything
from jtcse.training.step import StepExecutor
from jtcse.training.tasks import build_task
from jtcse.training.trainer import train
from train_fixtures import WORDS, tiny_config

CPU = torch.device("cpu")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("requested", ["bf16", "fp16"])
def test_half_precision_on_cpu_is_fp32_with_a_warning(requested):
    precision = resolve_precision(requested, CPU)
    assert precision.name == "fp32" and precision.dtype is None and precision.scaler is None
    assert precision.notice == f"train.precision = {requested} needs CUDA; using fp32 on cpu"
    with precision.autocast():
        assert not torch.is_autocast_enabled("cpu")
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    assert precision.describe() == {
        "requested": requested,
        "effective": "fp32",
        "autocast_dtype": None,
        "grad_scaler": False,
        "cudnn_attention": None,
    }


def test_fp32_needs_no_notice():
    precision = resolve_precision("fp32", CPU)
    assert precision.notice is None and precision.name == "fp32"
    with pytest.raises(ValueError, match="unknown precision"):
        resolve_precision("fp8", CPU)


def test_pad_multiple_default_is_8_on_cuda_only():
    assert resolve_pad_multiple(None, CPU) == 0
    assert resolve_pad_multiple(None, "cpu") == 0
    assert resolve_pad_multiple(None, "cuda:1") == CUDA_PAD_MULTIPLE == 8
    assert resolve_pad_multiple(None, torch.device("cuda", 0)) == 8
    assert resolve_pad_multiple(None, "auto") == (8 if torch.cuda.is_available() else 0)
    assert resolve_pad_multiple(0, "cuda") == 0 and resolve_pad_multiple(16, CPU) == 16


def test_environment_records_the_effective_precision(tmp_path, tiny_bert_dir, capsys):
    raw = tiny_config(
        tmp_path,
        tiny_bert_dir,
        train={"epochs": 1, "precision": "bf16", "max_steps": 1},
        eval={"every": 0},
    )
    config = resolve(config_from_dict(raw))
    assert config.data.pad_to_multiple_of is None  # unset: resolved per device
    result = train(config)
    run = json.loads((result.output_dir / "environment.json").read_text())["runs"][0]
    assert run["precision"]["requested"] == "bf16" and run["precision"]["effective"] == "fp32"
    assert run["precision"]["autocast_dtype"] is None and run["precision"]["grad_scaler"] is False
    assert run["pad_to_multiple_of"] == 0 and run["processes"]["world_size"] == 1
    assert "train.precision = bf16 needs CUDA; using fp32 on cpu" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ CUDA only
def _cuda_twin_task(tmp_path, tiny_a, tiny_b, dropout=0.0):
    raw = tiny_config(tmp_path, tiny_a, method="jtcse", model={"tower_b": str(tiny_b), "dropout": dropout})
    config = resolve(config_from_dict(raw))
    seed_everything(config.seed)
    return build_task(config).to("cuda").train()


def _cuda_batch(task):
    rng = random.Random(2)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(8)]
    return {k: v.cuda() for k, v in PairTokenizer(task.tokenizer, 16, pad_to_multiple_of=8)(texts).items()}


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("requested", ["bf16", "fp16"])
def test_half_precision_step_on_cuda(tmp_path, tiny_bert_dir, tiny_bert_dir_b, requested):
    """An autocast step: towers run in half precision, the loss in fp32, finite fp32 gradients close to
    the fp32 step's; fp16 goes through the gradient scaler; SDPA runs without its cuDNN kernel."""
    device = torch.device("cuda")
    precision = resolve_precision(requested, device)
    if requested == "bf16" and precision.name != "bf16":
        pytest.skip("this GPU has no bf16")
    assert precision.dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[requested]
    assert (precision.scaler is not None) == (requested == "fp16")
    assert precision.cudnn_attention is False

    reference = _cuda_twin_task(tmp_path, tiny_bert_dir, tiny_bert_dir_b)
    batch = _cuda_batch(reference)
    random.seed(3)
    fp32_terms = StepExecutor(reference, device, resolve_precision("fp32", device))(batch, [8])

    task = _cuda_twin_task(tmp_path, tiny_bert_dir, tiny_bert_dir_b)
    with precision.autocast():
        assert torch.is_autocast_enabled("cuda") and not torch.backends.cuda.cudnn_sdp_enabled()
        vectors = task.embed_rows(batch)
    assert vectors["pooled_a"].dtype == precision.dtype  # the towers' matmuls ran in half precision
    task.zero_grad(set_to_none=True)
    random.seed(3)
    terms = StepExecutor(task, device, precision)(batch, [8])
    assert terms["loss"].dtype == torch.float32 and math.isfinite(float(terms["loss"]))
    assert float(terms["loss"]) == pytest.approx(float(fp32_terms["loss"]), rel=5e-2)
    scale = precision.scaler.get_scale() if precision.scaler is not None else 1.0
    for name, param in task.named_parameters():
        if param.grad is not None:
            assert param.grad.dtype == torch.float32 and torch.isfinite(param.grad).all(), name
    grad = task.twin.tower_a.encoder.layer[0].attention.self.query.weight.grad / scale
    ref = reference.twin.tower_a.encoder.layer[0].attention.self.query.weight.grad
    cosine = torch.nn.functional.cosine_similarity(grad.flatten(), ref.flatten(), dim=0)
    assert float(cosine) > 0.95


@pytest.mark.cuda
@needs_cuda
def test_bf16_training_run_on_cuda(tmp_path, tiny_bert_dir):
    raw = tiny_config(
        tmp_path,
        tiny_bert_dir,
        train={"epochs": 1, "precision": "bf16", "device": "cuda", "grad_cache_chunk": 3},
        eval={"every": 3},
    )
    result = train(resolve(config_from_dict(raw)))
    run = json.loads((result.output_dir / "environment.json").read_text())["runs"][0]
    assert run["precision"]["effective"] in ("bf16", "fp16") and run["pad_to_multiple_of"] == 8
    assert result.best_dev is not None and math.isfinite(result.best_dev)
