"""MTEB v2 evaluation of jtcse encoders, offline: local STS tasks, the encoder wrapper, result files, the CLI.

mteb is optional; these tests are skipped without it. They never reach the network: the hub and datasets are
switched to offline mode before mteb (and datasets) are imported.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import numpy as np
import pytest
from scipy.stats import spearmanr

mteb = pytest.importorskip("mteb")

from jtcse.cli.eval_mteb import add_mteb_arguments, run_mteb_command  # noqa: E402
from jtcse.encoder import Encoder  # noqa: E402
from jtcse.errors import JtcseError  # noqa: E402
from jtcse.evaluation.mteb import (  # noqa: E402
    MtebEncoder,
    encoder_revision,
    model_name_for,
    read_local_task,
    read_tsv_pairs,
    resolve_tasks,
    run_mteb,
)

PAIRS = [
    ("A man is playing a guitar.", "A man plays the guitar.", 4.8),
    ("A woman is slicing an onion.", "Someone cuts an onion.", 4.2),
    ("A dog runs in the park.", "A cat sleeps on the sofa.", 0.6),
    ("Two kids play football.", "Children are playing soccer.", 4.0),
    ("The stock market fell sharply.", "A girl is riding a horse.", 0.0),
    ("A plane is taking off.", "An airplane departs.", 4.5),
    ("He is reading a book.", "She writes a letter.", 1.2),
    ("The sun is shining.", "It is a sunny day.", 3.9),
]


@pytest.fixture()
def tsv_file(tmp_path: Path) -> Path:
    path = tmp_path / "toy_sts.tsv"
    path.write_text("".join(f"{a}\t{b}\t{s}\n" for a, b, s in PAIRS) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_encoder(tiny_bert_dir: Path) -> Encoder:
    return Encoder(tiny_bert_dir, device="cpu")


def test_wrapper_is_an_mteb_encoder(tiny_encoder: Encoder) -> None:
    from mteb.models import EncoderProtocol
    from torch.utils.data import DataLoader

    wrapper = MtebEncoder(tiny_encoder, name="jtcse/tiny")
    assert isinstance(wrapper, EncoderProtocol)
    texts = [a for a, _, _ in PAIRS]
    # mteb hands over batches of {"text": [...]}, as its own dataloaders build them
    loader = DataLoader(
        [{"text": t} for t in texts], batch_size=3, collate_fn=lambda b: {"text": [x["text"] for x in b]}
    )
    (task,) = resolve_tasks(["STSBenchmark"])  # metadata only: nothing is downloaded
    got = wrapper.encode(loader, task_metadata=task.metadata, hf_split="test", hf_subset="default")
    assert got.dtype == np.float32 and got.shape == (len(texts), tiny_encoder.dim)
    np.testing.assert_allclose(got, tiny_encoder.encode(texts), rtol=1e-5, atol=1e-6)

    meta = wrapper.mteb_model_meta
    assert meta.name == "jtcse/tiny" and meta.revision == encoder_revision(tiny_encoder)
    assert meta.embed_dim == tiny_encoder.dim and meta.n_parameters > 0


def test_tsv_task_end_to_end(
    tiny_bert_dir: Path, tiny_encoder: Encoder, tsv_file: Path, tmp_path: Path
) -> None:
    run = run_mteb(tiny_bert_dir, [f"tsv:{tsv_file}"], tmp_path / "out", batch_size=4, device="cpu")

    # the score is the Spearman correlation of cosine similarities with the gold scores, x100
    a = tiny_encoder.encode([p[0] for p in PAIRS], normalize=True)
    b = tiny_encoder.encode([p[1] for p in PAIRS], normalize=True)
    expected = 100 * spearmanr((a * b).sum(axis=1), [p[2] for p in PAIRS]).statistic
    assert run.scores == pytest.approx({"toy_sts.local": expected}, abs=1e-3)
    assert run.main_scores == {"toy_sts.local": "cosine_spearman"}

    path = run.files["toy_sts.local"]
    assert (
        path
        == tmp_path / "out" / "results" / f"jtcse__{tiny_bert_dir.name}" / run.revision / "toy_sts.local.json"
    )
    saved = json.loads(path.read_text())
    assert saved["task_name"] == "toy_sts.local"
    assert saved["scores"]["test"][0]["main_score"] == pytest.approx(expected / 100, abs=1e-5)
    assert (path.parent / "model_meta.json").is_file()


def test_revision_follows_weights_and_pooler(tiny_bert_dir: Path, tiny_bert_dir_b: Path) -> None:
    same = encoder_revision(Encoder(tiny_bert_dir, device="cpu"))
    assert encoder_revision(Encoder(tiny_bert_dir, device="cpu")) == same
    assert encoder_revision(Encoder(tiny_bert_dir_b, device="cpu")) != same
    assert encoder_revision(Encoder(tiny_bert_dir, device="cpu", pooler="avg")) != same


def test_model_names() -> None:
    assert model_name_for("minilm") == "jtcse/minilm"
    assert model_name_for("/runs/jtcse bert/") == "jtcse/jtcse_bert"
    assert model_name_for("princeton-nlp/unsup-simcse-bert-base-uncased") == (
        "princeton-nlp/unsup-simcse-bert-base-uncased"
    )


def test_local_tasks_have_mtebs_sizes(shared_data_dir: Path) -> None:
    sizes = {"STS12": 3108, "STS13": 1500, "STS14": 3750, "STS15": 3000, "STS16": 1186}
    sizes |= {"STSBenchmark": 1379, "SICK-R": 9927}
    for task, size in sizes.items():
        pairs = read_local_task(shared_data_dir, task)
        assert len(pairs.scores) == len(pairs.sentences1) == len(pairs.sentences2) == size, task
    stsb = read_local_task(shared_data_dir, "STSBenchmark")
    assert stsb.sentences1[0] == "A girl is styling her hair." and stsb.scores[0] == 2.5
    assert min(stsb.scores) >= 0 and max(stsb.scores) <= 5
    (task,) = resolve_tasks(["local:SICKRelatedness"], data_dir=shared_data_dir)
    assert task.metadata.name == "SICK-R.local" and (task.min_score, task.max_score) == (1.0, 5.0)
    task.load_data()
    assert task.dataset["test"].num_rows == 9927


def test_bad_tasks_are_one_line_errors(tmp_path: Path, tsv_file: Path) -> None:
    with pytest.raises(JtcseError, match="NoSuchTask"):
        resolve_tasks(["NoSuchTask"])
    with pytest.raises(JtcseError, match="unknown local task"):
        resolve_tasks(["local:STS99"], data_dir=tmp_path)
    with pytest.raises(JtcseError, match="named twice"):
        resolve_tasks([f"tsv:{tsv_file}", f"tsv:{tsv_file}"])
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\t1\nc\td\thigh\n", encoding="utf-8")
    with pytest.raises(JtcseError, match=r"bad\.tsv:2: gold score 'high'"):
        read_tsv_pairs(bad)
    bad.write_text("a\tb\t1\nonly one column\n", encoding="utf-8")
    with pytest.raises(JtcseError, match=r"bad\.tsv:2: expected at least 3"):
        read_tsv_pairs(bad)
    # a user's own file: no hint about the data directory
    with pytest.raises(JtcseError, match=r"missing\.tsv: missing STS file \(no such file\)$"):
        read_tsv_pairs(tmp_path / "missing.tsv")


@pytest.mark.filterwarnings("ignore:The task 'STSBenchmark' is superseded")
def test_hub_task_offline_is_a_clear_error(tiny_bert_dir: Path, tmp_path: Path) -> None:
    import huggingface_hub.constants

    if not huggingface_hub.constants.HF_HUB_OFFLINE:
        pytest.skip("the hub is not in offline mode; this test must not reach the network")
    with pytest.raises(JtcseError, match="local:TASK"):
        run_mteb(tiny_bert_dir, ["STSBenchmark"], tmp_path / "out", device="cpu")


def test_cli_functions_end_to_end(
    tiny_bert_dir: Path, shared_data_dir: Path, tsv_file: Path, tmp_path: Path, capsys
) -> None:
    parser = argparse.ArgumentParser(prog="jtcse eval mteb")
    add_mteb_arguments(parser)
    out = tmp_path / "results"
    argv = ["--model", str(tiny_bert_dir), "--tasks", "local:STSBenchmark", f"tsv:{tsv_file}"]
    argv += [
        "--output-dir",
        str(out),
        "--data-dir",
        str(shared_data_dir),
        "--batch-size",
        "128",
        "--device",
        "cpu",
    ]
    args = parser.parse_args(argv)
    assert run_mteb_command(args) == 0

    stdout = capsys.readouterr().out
    assert "STSBenchmark.local" in stdout and "toy_sts.local" in stdout and "cosine_spearman" in stdout
    files = sorted(p.name for p in out.rglob("*.json"))
    assert files == ["STSBenchmark.local.json", "model_meta.json", "toy_sts.local.json"]
    saved = json.loads(next(out.rglob("STSBenchmark.local.json")).read_text())
    assert saved["dataset_revision"] and -1.0 <= saved["scores"]["test"][0]["main_score"] <= 1.0
