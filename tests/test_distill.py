"""``jtcse distill``: a single-tower student learns from a frozen teacher (tiny random models, CPU)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from jtcse import Encoder
from jtcse.cli.main import main
from jtcse.data.batching import plan_epoch
from jtcse.data.corpus import load_corpus
from jtcse.errors import JtcseError
from jtcse.losses import distillation_loss
from jtcse.model.format import read_spec
from jtcse.training.checkpoint import checkpoint_path, load_checkpoint
from jtcse.training.config import config_from_dict, resolve
from jtcse.training.metrics import read_metrics, without_timing
from jtcse.training.tasks import DistillTask, build_task
from jtcse.training.trainer import train
from train_fixtures import WORDS, tiny_config

SENTENCES = ["a cat sits on the mat", "the old dog runs in the park", "one bird", "a child reads today"]


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def twin_teacher(tmp_path_factory, tiny_bert_dir, tiny_bert_dir_b) -> Path:
    """A twin-tower teacher dir (tower A = tiny BERT, tower B = the other tiny BERT, no CA)."""
    from transformers import AutoTokenizer

    from jtcse.model.twin_tower import TwinTower

    out = tmp_path_factory.mktemp("twin_teacher")
    twin = TwinTower.from_pretrained(tiny_bert_dir, tiny_bert_dir_b, num_ca_layers=0)
    twin.save_pretrained(out, AutoTokenizer.from_pretrained(tiny_bert_dir), method="jtcse")
    return out


def _tiny_bert(out: Path, *, hidden: int, vocab: list[str] | None = None, seed: int = 3) -> Path:
    """A tiny random BERT; with ``vocab``, a WordPiece tokenizer of just those tokens."""
    from transformers import AutoTokenizer, BertConfig, BertModel, PreTrainedTokenizerFast

    if vocab is None:
        from jtcse.model.names import packaged_model_dir

        tokenizer = AutoTokenizer.from_pretrained(packaged_model_dir("minilm"))
    else:
        from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
        from tokenizers.models import WordPiece

        ids = {token: i for i, token in enumerate(vocab)}
        backend = Tokenizer(WordPiece(ids, unk_token="[UNK]"))
        backend.normalizer = normalizers.BertNormalizer(lowercase=True)
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        backend.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B [SEP]",
            special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
        )
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=backend,
            unk_token="[UNK]",
            pad_token="[PAD]",
            cls_token="[CLS]",
            sep_token="[SEP]",
            mask_token="[MASK]",
        )
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _config(tmp_path, student_dir, teacher, **sections):
    distill = {"teacher": str(teacher), **sections.pop("distill", {})}
    raw = tiny_config(tmp_path, student_dir, method="distill", distill=distill, **sections)
    return resolve(config_from_dict(raw))


def _train_rows(out: Path) -> list[dict]:
    return [r for r in read_metrics(out / "metrics.jsonl") if "loss" in r]


def _tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------- runs
def test_distill_run_end_to_end(tmp_path, tiny_bert_dir, twin_teacher):
    before = _tree_digest(twin_teacher)
    result = train(_config(tmp_path, tiny_bert_dir, twin_teacher))
    out = result.output_dir
    assert result.step == result.total_steps == 6  # 24 sentences, 8 per step (no duplication), 2 epochs

    rows = _train_rows(out)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert set(rows[0]) == {"step", "epoch", "loss", "nce", "l1", "lr", "sentences_per_s", "elapsed_s"}
    for r in rows:  # the logged parts are unweighted: loss = k * nce + (1 - k) * l1
        assert r["loss"] == pytest.approx(0.01 * r["nce"] + 0.99 * r["l1"], rel=1e-5)
    assert rows[-1]["l1"] < rows[0]["l1"]  # the student moves towards the teacher
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl") if "dev_stsb" in r] == [2, 4, 6]

    spec = read_spec(out)
    assert spec.kind == "single" and spec.method == "distill"
    assert spec.members[0].path == "." and spec.members[0].pooler == "cls_before_pooler"
    assert spec.extra["teacher"] == str(twin_teacher) and spec.extra["k"] == 0.01
    assert spec.extra["best_step"] == result.best_step
    # the student alone: a standard HF dir of the student's size, no teacher weights
    weights = load_file(out / "model.safetensors")
    assert not any("tower" in name or "teacher" in name for name in weights)
    assert sum(t.numel() for t in weights.values()) == sum(
        t.numel() for t in load_file(Path(tiny_bert_dir) / "model.safetensors").values()
    )
    vectors = Encoder(out, device="cpu").encode(SENTENCES)
    assert vectors.shape == (4, 32) and np.isfinite(vectors).all()

    state = load_checkpoint(checkpoint_path(out))
    assert all(name.startswith("encoder.") for name in state["model"])
    resolved = yaml.safe_load((out / "train_config.yaml").read_text())
    assert resolved["method"] == "distill" and resolved["distill"]["teacher"] == str(twin_teacher)
    assert resolved["model"]["dropout"] == 0.1 and resolved["model"]["pooler"] == "cls_before_pooler"
    assert _tree_digest(twin_teacher) == before  # the teacher's files are never written


def test_logged_loss_equals_distillation_loss_recomputed(tmp_path, tiny_bert_dir, twin_teacher):
    """Step 1's logged loss = distillation_loss(student, teacher) on that batch, each side computed
    independently: the untrained student (dropout 0, so deterministic) and jtcse.Encoder on the teacher."""
    from transformers import AutoModel, AutoTokenizer

    config = _config(
        tmp_path,
        tiny_bert_dir,
        twin_teacher,
        model={"dropout": 0.0},
        distill={"k": 0.3},
        train={"epochs": 1, "stop_after": 1},
        eval={"every": 0},
    )
    result = train(config)
    logged = _train_rows(result.output_dir)[0]

    corpus = load_corpus(config.data.corpus, max_chars=20 * config.data.max_len)
    first = plan_epoch(
        np.asarray(corpus.char_lengths()), 8, seed=config.seed, epoch=0, batching=config.data.batching
    )[0]
    sentences = [corpus.sentences[i] for i in first]
    teacher = Encoder(twin_teacher, device="cpu", max_length=config.data.max_len).encode(
        sentences, convert_to_tensor=True
    )
    student_model = AutoModel.from_pretrained(tiny_bert_dir).eval()
    tokens = AutoTokenizer.from_pretrained(tiny_bert_dir)(
        sentences, padding=True, truncation=True, max_length=config.data.max_len, return_tensors="pt"
    )
    with torch.no_grad():
        student = student_model(**tokens).last_hidden_state[:, 0]
    expected = distillation_loss(student, teacher, k=0.3).item()
    assert logged["loss"] == pytest.approx(expected, rel=1e-5)
    assert logged["l1"] == pytest.approx(torch.nn.functional.l1_loss(student, teacher).item(), rel=1e-5)


def test_task_loss_with_dropout_matches_the_public_loss(tmp_path, tiny_bert_dir, twin_teacher):
    config = _config(tmp_path, tiny_bert_dir, twin_teacher)
    task = build_task(config)
    assert isinstance(task, DistillTask)
    task.train()
    batch = task.collate(SENTENCES)
    assert batch["input_ids"].shape[0] == len(SENTENCES)  # each sentence once for the student
    # the two towers share one tokenisation; every tensor has one row per sentence
    assert {k for k in batch if k.startswith("teacher")} == {
        "teacher0.input_ids",
        "teacher0.attention_mask",
        "teacher0.token_type_ids",
    }
    assert all(v.shape[0] == len(SENTENCES) for v in batch.values())
    torch.manual_seed(0)
    terms = task.losses(batch)
    torch.manual_seed(0)  # the teacher draws no random numbers, so the student gets the same masks
    student = task.student_vectors(batch)
    teacher = Encoder(twin_teacher, device="cpu", max_length=16).encode(SENTENCES, convert_to_tensor=True)
    assert torch.allclose(task.teacher_vectors(batch), teacher, atol=1e-5)
    reference = distillation_loss(student, teacher, k=config.distill.k)
    assert terms["loss"].item() == pytest.approx(reference.item(), rel=1e-5)
    terms["loss"].backward()
    assert task.encoder.embeddings.word_embeddings.weight.grad is not None


def test_the_teacher_is_frozen(tmp_path, tiny_bert_dir, twin_teacher):
    task = build_task(_config(tmp_path, tiny_bert_dir, twin_teacher))
    teacher_params = {id(p) for model in task._teacher_models for p in model.parameters()}
    assert teacher_params and not teacher_params & {id(p) for p in task.parameters()}
    assert all(name.startswith("encoder.") for name in task.state_dict())
    frozen = [{k: v.clone() for k, v in model.state_dict().items()} for model in task._teacher_models]
    student_before = task.encoder.embeddings.word_embeddings.weight.detach().clone()
    optimizer = torch.optim.AdamW(task.parameters(), lr=1e-2)
    task.train()
    assert not any(model.training for model in task._teacher_models)
    batch = task.collate(SENTENCES)
    vectors_before = task.teacher_vectors(batch)
    for _ in range(3):
        optimizer.zero_grad()
        task.losses(batch)["loss"].backward()
        optimizer.step()
    for model, saved in zip(task._teacher_models, frozen, strict=True):
        assert all(p.grad is None and not p.requires_grad for p in model.parameters())
        assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
    assert torch.equal(task.teacher_vectors(batch), vectors_before)
    assert not torch.equal(task.encoder.embeddings.word_embeddings.weight, student_before)


def test_resume_equals_an_unbroken_run(tmp_path, tiny_bert_dir, twin_teacher):
    straight = train(_config(tmp_path, tiny_bert_dir, twin_teacher, output_dir=str(tmp_path / "straight")))
    broken = _config(tmp_path, tiny_bert_dir, twin_teacher, output_dir=str(tmp_path / "broken"))
    broken.train.stop_after = 3
    first = train(broken)
    assert first.stopped_early and first.step == 3
    second = train(
        _config(tmp_path, tiny_bert_dir, twin_teacher, output_dir=str(tmp_path / "broken")), resume=True
    )
    assert second.step == 6
    assert without_timing(read_metrics(second.output_dir / "metrics.jsonl")) == without_timing(
        read_metrics(straight.output_dir / "metrics.jsonl")
    )
    final = [load_checkpoint(checkpoint_path(r.output_dir))["model"] for r in (straight, second)]
    assert all(torch.equal(final[0][k], final[1][k]) for k in final[0])


def test_teacher_with_its_own_vocabulary(tmp_path, tiny_bert_dir):
    """The teacher tokenizes with its own (tiny WordPiece) vocabulary; the student with bert-base's."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, "##s"]
    teacher_dir = _tiny_bert(tmp_path / "own_vocab", hidden=32, vocab=vocab)
    config = _config(tmp_path, tiny_bert_dir, teacher_dir, train={"epochs": 1}, eval={"every": 0})
    task = build_task(config)
    batch = task.collate(SENTENCES)
    assert int(batch["teacher0.input_ids"].max()) < len(vocab) < int(batch["input_ids"].max())
    expected = Encoder(teacher_dir, device="cpu", max_length=16).encode(SENTENCES, convert_to_tensor=True)
    assert torch.allclose(task.teacher_vectors(batch), expected, atol=1e-5)
    result = train(config)
    assert result.step == 3 and read_spec(result.output_dir).kind == "single"


def test_uc_ensemble_teacher_and_a_student_from_its_tower(
    tmp_path, tiny_bert_dir, tiny_roberta_dir, twin_teacher
):
    """UC-D: teacher = 0.3 * twin + 0.7 * another encoder; the student starts as the twin's tower B."""
    from jtcse.ensemble import save_uc_ensemble

    uc = tmp_path / "uc"
    save_uc_ensemble(uc, twin_teacher, tiny_roberta_dir)
    config = _config(
        tmp_path,
        tiny_bert_dir,
        uc,
        distill={"k": 0.1, "student_init": "tower_b"},
        model={"dropout": 0.015},
        train={"epochs": 1},
        eval={"every": 0},
    )
    task = build_task(config)
    tower_b = load_file(Path(twin_teacher) / "tower_b" / "model.safetensors")
    student = task.encoder.state_dict()
    assert all(torch.equal(student[k], v) for k, v in tower_b.items() if k in student)
    assert task.encoder.config.hidden_dropout_prob == 0.015
    assert sorted(round(m.weight, 6) for m in task.teacher.members) == [0.3, 0.3, 0.7]
    batch = task.collate(SENTENCES)
    expected = Encoder(uc, device="cpu", max_length=16).encode(SENTENCES, convert_to_tensor=True)
    assert torch.allclose(task.teacher_vectors(batch), expected, atol=1e-5)
    result = train(config)
    assert read_spec(result.output_dir).extra["student_init"] == "tower_b"


# ---------------------------------------------------------------------------------------------- step contract
def test_grad_cached_step_equals_the_one_pass_step(tmp_path, tiny_bert_dir, twin_teacher):
    """embed_rows/loss_from_vectors (jtcse.training.step): chunks of 3 sentences give the one-pass loss and
    gradients (dropout off, so both draw the same nothing)."""
    import contextlib

    from jtcse.training.grad_cache import grad_cached_backward
    from jtcse.training.step import Vectors

    task = build_task(_config(tmp_path, tiny_bert_dir, twin_teacher, model={"dropout": 0.0}))
    task.train()
    batch = task.collate([*SENTENCES, "a red car near the river", "the blue ball", "young woman sings"])
    whole = task.losses(batch)
    whole["loss"].backward()
    expected = {n: p.grad.clone() for n, p in task.named_parameters() if p.grad is not None}
    task.zero_grad(set_to_none=True)
    chunked = grad_cached_backward(
        batch,
        7,
        3,
        embed=task.embed_rows,
        embed_with_graph=task.embed_rows,
        loss_from_vectors=lambda local: task.loss_from_vectors(Vectors.single(local)),
        device=torch.device("cpu"),
        autocast=contextlib.nullcontext,
    )
    for term in ("loss", "nce", "l1"):
        assert chunked[term].item() == pytest.approx(whole[term].item(), rel=1e-5)
    got = {n: p.grad for n, p in task.named_parameters() if p.grad is not None}
    assert set(got) == set(expected)
    assert all(torch.allclose(got[n], expected[n], atol=1e-6) for n in expected)


def test_grad_cache_through_the_trainer(tmp_path, tiny_bert_dir, twin_teacher):
    plain = train(
        _config(
            tmp_path,
            tiny_bert_dir,
            twin_teacher,
            output_dir=str(tmp_path / "plain"),
            model={"dropout": 0.0},
            train={"epochs": 1},
            eval={"every": 0},
        )
    )
    cached = train(
        _config(
            tmp_path,
            tiny_bert_dir,
            twin_teacher,
            output_dir=str(tmp_path / "cached"),
            model={"dropout": 0.0},
            train={"epochs": 1, "grad_cache_chunk": 3},
            eval={"every": 0},
        )
    )
    a, b = _train_rows(plain.output_dir), _train_rows(cached.output_dir)
    assert [r["step"] for r in b] == [1, 2, 3]
    for x, y in zip(a, b, strict=True):
        assert y["loss"] == pytest.approx(x["loss"], rel=1e-4) and y["l1"] == pytest.approx(x["l1"], rel=1e-4)


@pytest.mark.slow
def test_two_processes_with_torchrun(tmp_path, tiny_bert_dir, twin_teacher):
    """torchrun --nproc_per_node 2 -m jtcse distill CONFIG gives the one-process curve (dropout off)."""
    import os
    import socket
    import subprocess
    import sys

    raw = tiny_config(tmp_path, tiny_bert_dir, model={"dropout": 0.0}, train={"epochs": 1}, eval={"every": 0})
    raw.pop("method")
    raw["distill"] = {"teacher": str(twin_teacher)}
    config = _write_yaml(tmp_path / "distill.yaml", raw)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "WORLD_SIZE"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            "--master_addr=127.0.0.1",
            f"--master_port={port}",
            "-m",
            "jtcse",
            "distill",
            str(config),
            "--output-dir",
            str(tmp_path / "ddp"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert _run(["distill", str(config), "--output-dir", str(tmp_path / "one")]) == 0
    two, one = _train_rows(tmp_path / "ddp"), _train_rows(tmp_path / "one")
    assert [r["step"] for r in two] == [1, 2, 3]
    for x, y in zip(one, two, strict=True):
        assert y["loss"] == pytest.approx(x["loss"], rel=1e-4) and y["l1"] == pytest.approx(x["l1"], rel=1e-4)


# ---------------------------------------------------------------------------------------------- bad input
def test_teacher_of_another_dimension_is_a_one_line_error(tmp_path, tiny_bert_dir):
    wide = _tiny_bert(tmp_path / "wide", hidden=48)
    with pytest.raises(JtcseError) as info:
        build_task(_config(tmp_path, tiny_bert_dir, wide))
    message = str(info.value)
    assert "\n" not in message and "48-dim" in message and "32-dim" in message
    assert message.startswith(f"distill.teacher = '{wide}'")


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"distill": {"teacher": ""}}, r"^distill\.teacher: not set"),
        ({"distill": {"k": 1.5}}, r"^distill\.k: must be in \[0, 1\]"),
        ({"distill": {"student_init": "tower_c"}}, r"^distill\.student_init: 'tower_c' is not one of"),
        ({"distill": {"teacher_pooler": "max"}}, r"^distill\.teacher_pooler: 'max' is not one of"),
        ({"model": {"pooler": "cls"}}, r"^model\.pooler: 'cls' .* does not suit distillation"),
    ],
)
def test_bad_distill_settings(tmp_path, tiny_bert_dir, twin_teacher, change, pattern):
    with pytest.raises(JtcseError, match=pattern):
        _config(tmp_path, tiny_bert_dir, twin_teacher, **change)


def test_missing_teacher_and_tower_of_a_single_teacher(tmp_path, tiny_bert_dir):
    missing = tmp_path / "no_such_teacher"
    with pytest.raises(JtcseError, match=rf"^distill\.teacher = '{missing}': no such directory$"):
        build_task(_config(tmp_path, tiny_bert_dir, missing))
    single = _config(tmp_path, tiny_bert_dir, tiny_bert_dir, distill={"student_init": "tower_a"})
    with pytest.raises(JtcseError, match=r"student_init = 'tower_a': the teacher .* is not a twin tower"):
        build_task(single)


# ---------------------------------------------------------------------------------------------- CLI
def _run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return int(info.value.code or 0)


def _write_yaml(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_cli_distill_defaults_the_method_and_resumes(tmp_path, tiny_bert_dir, twin_teacher, capsys):
    raw = tiny_config(tmp_path, tiny_bert_dir, train={"epochs": 1}, eval={"every": 0})
    raw.pop("method")
    raw["distill"] = {"teacher": str(twin_teacher)}
    config = _write_yaml(tmp_path / "distill.yaml", raw)
    out = tmp_path / "cli_run"
    assert _run(["distill", str(config), "--output-dir", str(out), "--set", "train.stop_after=1"]) == 0
    assert "jtcse train: distill on cpu" in capsys.readouterr().err
    assert _run(["distill", "--resume", "--output-dir", str(out)]) == 0
    assert [r["step"] for r in _train_rows(out)] == [1, 2, 3]
    assert read_spec(out).method == "distill"
    # the resolved config reruns with jtcse train too
    assert yaml.safe_load((out / "train_config.yaml").read_text())["method"] == "distill"


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        ({"method": "simcse"}, r"method = 'simcse', but `jtcse distill` runs method = 'distill'"),
        ({"distill": {}}, r"distill\.teacher: not set"),
        ({"distill": {"teacher": "./nowhere"}}, r"distill\.teacher = './nowhere': no such directory"),
    ],
)
def test_cli_errors_exit_2_with_one_line(tmp_path, tiny_bert_dir, capsys, edit, pattern):
    raw = tiny_config(tmp_path, tiny_bert_dir, eval={"every": 0})
    raw.pop("method")
    raw.update(edit)
    config = _write_yaml(tmp_path / "bad.yaml", raw)
    assert _run(["distill", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len([line for line in err if line.startswith("jtcse: error:")]) == 1
    assert err[-1].startswith("jtcse: error:")
    assert re.search(pattern, err[-1])
