"""Faults and hostile input (docs/reliability.md): damaged checkpoints and models, a full disk, leftovers of a
crash, members outside the model directory, training that cannot learn, and the last tracebacks.

Every case asserts what a user sees (exit code 2, one line naming the file or option, no traceback) and
what happened to the files written before (intact, or cleaned up).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from jtcse import fs
from jtcse.cli.main import main
from jtcse.encoder import Encoder
from jtcse.errors import JtcseError
from jtcse.fs import HashingWriter
from jtcse.training.checkpoint import (
    checkpoint_path,
    load_checkpoint,
    recover_output_dir,
    save_checkpoint,
)
from jtcse.training.config import config_from_dict, resolve
from jtcse.training.trainer import train
from sts_toy import write_toy_sts
from train_fixtures import tiny_config

ENOSPC = OSError(errno.ENOSPC, "No space left on device")


# ---------------------------------------------------------------------------------------------- helpers
def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return int(exit_info.value.code or 0), capsys.readouterr().err


def run_jtcse(args: list[str], cwd: Path | None = None) -> tuple[int, str]:
    """The real command in its own process."""
    proc = subprocess.run(
        [sys.executable, "-m", "jtcse", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )
    return proc.returncode, proc.stderr


def assert_one_line_error(code: int, err: str, *fragments: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("jtcse: error:")]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def flipped(data: bytes, offset: int) -> bytes:
    damaged = bytearray(data)
    damaged[offset] ^= 0x5A
    return bytes(damaged)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def host_tag() -> str:
    return fs._owner_tag().split("-")[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> Path:
    """A finished 2-step SimCSE run: OUT/ holds the saved model and OUT/checkpoint/state.pt."""
    root = tmp_path_factory.mktemp("trained")
    raw = tiny_config(root, tiny_bert_dir, train={"max_steps": 2, "save_every": 2}, eval={"every": 0})
    train(resolve(config_from_dict(raw)))
    return root


def copy_run(trained: Path, tmp_path: Path) -> Path:
    """A private copy of the trained run's output directory."""
    return Path(shutil.copytree(trained / "run", tmp_path / "run"))


# ------------------------------------------------------------------------------ damaged checkpoints
def test_every_damaged_byte_of_a_checkpoint_is_caught(trained: Path, tmp_path: Path) -> None:
    data = checkpoint_path(trained / "run").read_bytes()
    copy = checkpoint_path(tmp_path)
    copy.parent.mkdir(parents=True)
    n = len(data)
    offsets = {
        0,
        3,
        64,
        512,
        n // 5,
        n // 3,
        n // 2,
        2 * n // 3,
        n - 200,
        n - 80,
        n - 79,
        n - 60,
        n - 2,
        n - 1,
    }
    variants = [flipped(data, offset) for offset in sorted(offsets)]
    variants += [data[:-1], data[: n // 2], data + b"\0", data[:-79]]  # truncated, appended, footer cut
    for variant in variants:
        copy.write_bytes(variant)
        with pytest.raises(
            JtcseError, match=r"state\.pt: the checkpoint is damaged .* restore the checkpoint"
        ):
            load_checkpoint(copy)
    copy.write_bytes(data)
    assert load_checkpoint(copy)["step"] == 2


def test_resume_from_a_damaged_checkpoint_refuses_and_keeps_the_model(trained: Path, tmp_path: Path) -> None:
    out = copy_run(trained, tmp_path)
    state = checkpoint_path(out)
    data = state.read_bytes()
    state.write_bytes(flipped(data, len(data) // 2))  # same size: only the checksum can tell
    before = digests(out)
    code, err = run_jtcse(["train", "--resume", "--output-dir", str(out), "--set", "train.max_steps=4"])
    assert_one_line_error(code, err, str(state), "damaged", "is not affected")
    assert digests(out) == before  # nothing written: the best model and the checkpoint are as they were


def test_non_finite_weights_are_never_saved_nor_resumed(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint" / "state.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(4)}, "step": 1})
    before = path.read_bytes()
    with pytest.raises(JtcseError, match=r"state\.pt: not written: model\.w is not finite at step 2"):
        save_checkpoint(path, {"model": {"w": torch.tensor([1.0, float("nan")])}, "step": 2})
    assert path.read_bytes() == before and sorted(os.listdir(path.parent)) == ["state.pt"]
    # a file with a valid checksum but NaN weights (written by hand) is refused on load
    nan_state = {
        "format": "jtcse-train-state",
        "format_version": 2,
        "model": {"w": torch.full((2,), float("inf"))},
    }
    writer_file = path.open("wb")
    writer = HashingWriter(writer_file)
    torch.save(nan_state, writer)
    writer_file.write(b"\njtcse-sha256:" + writer.digest.hexdigest().encode() + b"\n")
    writer_file.close()
    with pytest.raises(JtcseError, match=r"damaged \(model\.w is not finite\)"):
        load_checkpoint(path)


# ------------------------------------------------------------------------------------ damaged models
def test_every_damaged_model_file_is_caught(trained: Path, tmp_path: Path) -> None:
    model = Path(
        shutil.copytree(trained / "run", tmp_path / "model", ignore=shutil.ignore_patterns("checkpoint"))
    )
    listed = json.loads((model / "jtcse.json").read_text())["checksums"]
    assert {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"} <= set(listed)
    for name in listed:
        data = (model / name).read_bytes()
        for offset in sorted({0, 9, len(data) // 2, len(data) - 1}):
            (model / name).write_bytes(flipped(data, offset))
            with pytest.raises(JtcseError, match=rf"{name}: does not match its checksum in .*jtcse\.json"):
                Encoder(model, device="cpu")
        (model / name).write_bytes(data[:-1])
        with pytest.raises(JtcseError, match=rf"{name}: does not match its checksum"):
            Encoder(model, device="cpu")
        (model / name).write_bytes(data)
    (model / "tokenizer.json").unlink()
    with pytest.raises(JtcseError, match=r"tokenizer\.json: missing; .*jtcse\.json lists it"):
        Encoder(model, device="cpu")
    shutil.copy(trained / "run" / "tokenizer.json", model / "tokenizer.json")
    (model / "README.md").write_text("edited card\n")  # files beside the model may change
    assert Encoder(model, device="cpu").encode("a man plays").shape == (32,)


def test_truncated_or_garbled_safetensors_is_one_line(tiny_bert_dir: Path, tmp_path: Path, capsys) -> None:
    model = Path(shutil.copytree(tiny_bert_dir, tmp_path / "plain"))  # a plain HF dir: no checksums
    weights = model / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) - 1000])
    code, err = run_cli(["similarity", "--model", str(model), "--device", "cpu", "a cat", "a dog"], capsys)
    assert_one_line_error(code, err, str(weights), "truncated or damaged safetensors")
    weights.write_bytes(data[:8] + b"{not json" + data[17:])
    with pytest.raises(JtcseError, match=r"model\.safetensors: truncated or damaged .*unreadable header"):
        Encoder(model, device="cpu")


def test_nan_weights_in_a_plain_model_are_refused(tiny_bert_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tiny_bert_dir)
    with torch.no_grad():
        model.encoder.layer[0].output.dense.weight[0, 0] = float("nan")
    model.save_pretrained(tmp_path / "nan")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_bert_dir / name, tmp_path / "nan")
    with pytest.raises(JtcseError, match=r"weight encoder\.layer\.0\.output\.dense\.weight holds NaN"):
        Encoder(tmp_path / "nan", device="cpu")


# -------------------------------------------------------------------------------------------- full disk
def test_full_disk_in_atomic_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "vectors.npy"
    target.write_bytes(b"old content")

    def write(fh) -> None:
        fh.write(b"x" * 5000)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(JtcseError) as info:
        fs.atomic_write(target, write, size_hint=8000)
    message = str(info.value)
    assert message.startswith(f"{target}: no space left on the device (") and "\n" not in message
    assert "free, about 8.0 KB needed" in message and "previous file is unchanged" in message
    assert target.read_bytes() == b"old content" and os.listdir(tmp_path) == ["vectors.npy"]


def test_a_short_write_from_numpy_counts_as_a_full_disk(tmp_path: Path) -> None:
    def write(fh) -> None:
        fh.write(b"v" * 300)
        raise OSError("4000000 requested and 262112 written")  # np.save's report, without an errno

    with pytest.raises(
        JtcseError, match=r"vecs\.npy: no space left on the device \(.* at least 301 B needed"
    ):
        fs.atomic_write(tmp_path / "vecs.npy", write)
    assert os.listdir(tmp_path) == []


def test_full_disk_in_a_staged_directory_leaves_no_staging(tmp_path: Path) -> None:
    out = tmp_path / "export"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with (
        pytest.raises(JtcseError, match=r"export: no space left on the device .* is unchanged"),
        fs.staged_directory(out) as staging,
    ):
        (staging / "part.bin").write_bytes(b"y" * 100)
        # how safetensors' Rust writer reports it: not an OSError
        raise RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")
    assert sorted(os.listdir(tmp_path)) == ["export"] and os.listdir(out) == ["old.txt"]


def test_full_disk_while_writing_a_checkpoint(trained: Path, tmp_path: Path, monkeypatch) -> None:
    """torch's zip writer hits ENOSPC part-way: one line naming state.pt, the old checkpoint intact."""
    path = tmp_path / "checkpoint" / "state.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(10)}, "step": 1})
    before = path.read_bytes()
    real_write = HashingWriter.write
    written = [0]

    def write(self, data: bytes) -> int:
        if written[0] + len(data) > 2000:
            raise ENOSPC
        written[0] += len(data)
        return real_write(self, data)

    monkeypatch.setattr(HashingWriter, "write", write)
    with pytest.raises(
        JtcseError, match=r"state\.pt: no space left on the device \(.* free, about 40\.1 KB needed\)"
    ):
        save_checkpoint(path, {"model": {"w": torch.ones(10_000)}, "step": 2})
    assert path.read_bytes() == before and os.listdir(path.parent) == ["state.pt"]


def test_full_disk_during_the_training_export(tiny_bert_dir: Path, tmp_path: Path, monkeypatch) -> None:
    from transformers import PreTrainedModel

    def save_pretrained(self, folder, *args, **kwargs) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "model.safetensors").write_bytes(b"z" * 1000)
        raise RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", save_pretrained)
    raw = tiny_config(tmp_path, tiny_bert_dir, train={"max_steps": 2, "save_every": 2}, eval={"every": 0})
    with pytest.raises(JtcseError, match=r"run: no space left on the device \(.* free, about .* MB needed\)"):
        train(resolve(config_from_dict(raw)))
    assert not (tmp_path / "run" / ".export.tmp").exists()
    assert not (tmp_path / "run" / "jtcse.json").exists()


def _tmpfs(path: Path, size: str) -> None:
    path.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")


@pytest.mark.slow  # a real full disk (needs root for the tmpfs); the monkeypatched cases above are fast
def test_training_on_a_really_full_disk(tiny_bert_dir: Path, tmp_path: Path) -> None:
    """A 6 MB tmpfs: the model (about 5 MB) fits, the checkpoint (3x more) does not."""
    disk = tmp_path / "disk"
    _tmpfs(disk, "6m")
    try:
        raw = tiny_config(tmp_path, tiny_bert_dir, output_dir=str(disk / "run"), eval={"every": 0})
        raw["train"].update({"max_steps": 2, "save_every": 2})
        config = tmp_path / "config.json"
        config.write_text(json.dumps(raw))
        code, err = run_jtcse(["train", str(config)])
        state = disk / "run" / "checkpoint" / "state.pt"
        assert_one_line_error(code, err, f"{state}: no space left on the device", "needed")
        assert os.listdir(state.parent) == []  # no temporary left behind
        assert Encoder(disk / "run", device="cpu").encode("a dog").shape == (32,)  # the saved model is whole
    finally:
        subprocess.run(["umount", str(disk)], check=False)


# ----------------------------------------------------------------------------- leftovers of a crash
def test_orphaned_temporaries_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    out = tmp_path / "run"
    checkpoint = out / "checkpoint"
    checkpoint.mkdir(parents=True)
    pid, host = dead_pid(), host_tag()
    orphan = checkpoint / f".state.pt.{host}-{pid}.abcd1234.tmp"
    legacy = checkpoint / ".state.pt.k2j3h4g5.tmp"  # written by an earlier jtcse: no owner in the name
    live = checkpoint / f".state.pt.{host}-{os.getpid()}.zzzz9999.tmp"
    for file in (orphan, legacy, live):
        file.write_bytes(b"\0" * 100)
    (out / ".export.tmp" / "tower_a").mkdir(parents=True)
    (out / ".old.tower_b").mkdir()
    (out / ".old.tower_b" / "config.json").write_text("{}")  # moved aside, the new one never arrived
    (out / "notes.tmp").write_text("not ours")
    recover_output_dir(out)
    assert not orphan.exists() and not legacy.exists() and live.exists()
    assert not (out / ".export.tmp").exists() and (out / "tower_b" / "config.json").is_file()
    assert (out / "notes.tmp").exists()


def test_an_export_interrupted_after_its_staging_was_complete_is_finished(
    trained: Path, tiny_bert_dir_b: Path, tmp_path: Path
) -> None:
    """Killed in the middle of moving a finished export into OUT: the next start completes the move, so the
    model is the new one throughout (never half old, half new)."""
    out = copy_run(trained, tmp_path)
    staging = out / ".export.tmp"
    staging.mkdir()
    new_weights = tiny_bert_dir_b / "model.safetensors"  # the "better" model of the interrupted export
    shutil.copy(new_weights, staging / "model.safetensors")
    shutil.copy(out / "config.json", staging / "config.json")
    spec = json.loads((out / "jtcse.json").read_text())
    spec["checksums"]["model.safetensors"] = hashlib.sha256(new_weights.read_bytes()).hexdigest()
    (staging / "jtcse.json").write_text(json.dumps(spec))
    (staging / "model.safetensors").rename(out / "model.safetensors")  # the kill fell after this move
    with pytest.raises(JtcseError, match=r"model\.safetensors: does not match its checksum"):
        Encoder(out, device="cpu")  # as the crash left it: refused, not silently mixed
    recover_output_dir(out)
    assert not staging.exists() and json.loads((out / "jtcse.json").read_text()) == spec
    assert (out / "model.safetensors").read_bytes() == new_weights.read_bytes()
    assert Encoder(out, device="cpu").dim == 32


def test_writers_clean_up_after_an_earlier_crash(tmp_path: Path) -> None:
    pid, host = dead_pid(), host_tag()
    target = tmp_path / "vectors.npy"
    orphan = tmp_path / f".vectors.npy.{host}-{pid}.abcd1234.tmp"
    other = tmp_path / f".other.npy.{host}-{pid}.abcd1234.tmp"
    orphan.write_bytes(b"x")
    other.write_bytes(b"x")
    fs.atomic_write_text(target, "new")
    assert not orphan.exists() and other.exists()  # each write tidies its own name only

    staging = tmp_path / f"jtcse_tmp_{host}-{pid}.abcd1234"
    (staging / "half").mkdir(parents=True)
    aside = tmp_path / f"jtcse_tmp_old_{host}-{pid}.efgh5678" / "ensemble"
    aside.mkdir(parents=True)
    (aside / "jtcse.json").write_text("{}")  # the old ensemble, moved aside just before the crash
    with fs.staged_directory(tmp_path / "other_out") as new:
        (new / "x").write_text("x")
    assert not staging.exists() and (tmp_path / "ensemble" / "jtcse.json").is_file()
    assert not aside.parent.exists()


# ------------------------------------------------------------------------------------- confinement
def _spec(model: Path, members: list[dict]) -> None:
    model.mkdir(exist_ok=True)
    spec = {"format": "jtcse-model", "format_version": 1, "kind": "ensemble", "members": members}
    (model / "jtcse.json").write_text(json.dumps(spec))


def test_members_outside_the_model_dir_are_refused(tiny_bert_dir: Path, tmp_path: Path, capsys) -> None:
    outside = Path(shutil.copytree(tiny_bert_dir, tmp_path / "outside"))
    model = tmp_path / "model"
    for path in ("../outside", str(outside), "sub/../../outside"):
        _spec(model, [{"path": path}])
        with pytest.raises(
            JtcseError, match=r"model/jtcse\.json: member .* lies outside the model directory"
        ):
            Encoder(model, device="cpu")
    _spec(model, [{"path": "tower_x"}])
    with pytest.raises(JtcseError, match=r"model/jtcse\.json: member 'tower_x' is missing"):
        Encoder(model, device="cpu")
    _spec(model, [{"path": "bert-base-uncased"}])  # missing here: never tried as a hub id
    with pytest.raises(JtcseError, match=r"jtcse\.json: member 'bert-base-uncased' is missing"):
        Encoder(model, device="cpu")
    _spec(model, [{"path": str(outside), "external": True}])  # on purpose: fine
    assert Encoder(model, device="cpu").dim == 32


def test_export_does_not_bundle_an_escaping_member(tiny_bert_dir: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("sentence_transformers")
    shutil.copytree(tiny_bert_dir, tmp_path / "outside")
    model = tmp_path / "model"
    _spec(model, [{"path": "../outside"}])
    code, err = run_cli(["export", "--model", str(model), str(tmp_path / "exported")], capsys)
    assert_one_line_error(code, err, "jtcse.json: member '../outside' lies outside")
    assert not (tmp_path / "exported").exists()
    assert sorted(os.listdir(tmp_path)) == ["model", "outside"]  # no staging left either


# ---------------------------------------------------------------------------- training that cannot learn
@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("train", "lr", float("inf"), "train.lr: must be a finite number"),
        ("train", "batch_size", 1, "train.batch_size: must be >= 2"),
        ("loss", "temperature", 1e-30, "loss.temperature: 1e-30 is outside [0.001, 10]"),
        ("loss", "temperature", 1e6, "loss.temperature: 1e+06 is outside"),
    ],
)
def test_settings_that_cannot_learn_are_refused(
    tmp_path, tiny_bert_dir, section, key, value, message
) -> None:
    raw = tiny_config(tmp_path, tiny_bert_dir, **{section: {key: value}})
    with pytest.raises(JtcseError) as info:
        resolve(config_from_dict(raw))
    assert str(info.value).startswith(message)


def test_cli_refuses_lr_inf_and_a_one_sentence_corpus(tmp_path: Path, tiny_bert_dir: Path, capsys) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(tiny_config(tmp_path, tiny_bert_dir)))
    code, err = run_cli(["train", str(config), "--set", "train.lr=inf"], capsys)
    assert_one_line_error(code, err, "train.lr: must be a finite number")
    corpus = tmp_path / "one.txt"
    corpus.write_bytes(b"a single sentence\n\xff\xfe broken line\n")
    code, err = run_jtcse(["train", str(config), "--set", f"data.corpus={corpus}"])
    assert_one_line_error(code, err, f"{corpus}: only 1 sentence(s)")
    # the bad-UTF-8 notice is one clean line too, not a Python warning with its source line
    warnings = [line for line in err.splitlines() if "not valid UTF-8" in line]
    assert warnings == [f"jtcse: warning: {corpus}: skipped 1 line(s) that are not valid UTF-8 (line 2)"], err
    assert len(err.strip().splitlines()) == 2 and not (tmp_path / "run").exists()


# --------------------------------------------------------------------------------- the last tracebacks
def test_output_dir_that_is_a_file(tmp_path: Path, tiny_bert_dir: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(tiny_config(tmp_path, tiny_bert_dir)))
    file = tmp_path / "a_file"
    file.write_text("keep me")
    code, err = run_jtcse(["train", str(config), "--output-dir", str(file)])
    assert_one_line_error(code, err, f"--output-dir {file}: is a file, not a folder")
    assert file.read_text() == "keep me"


@pytest.mark.parametrize(
    ("gold", "message"),
    [("", "no scored pairs (every gold line is blank)"), ("3.000", "every gold score is 3 (")],
)
def test_sts_subsets_without_usable_gold(tmp_path, tiny_bert_dir, capsys, gold: str, message: str) -> None:
    data = write_toy_sts(tmp_path / "data")
    gold_file = data / "sts" / "STS12" / "senteval" / "STS.gs.MSRpar.txt"
    lines = gold_file.read_text().splitlines()
    gold_file.write_text("\n".join(gold for _ in lines) + "\n")
    argv = ["eval", "sts", "--model", str(tiny_bert_dir), "--device", "cpu", "--tasks", "STS12"]
    code, err = run_cli([*argv, "--data-dir", str(data), "--quiet"], capsys)
    assert_one_line_error(code, err, str(gold_file), message)


def test_empty_model_folder(tmp_path: Path, tiny_bert_dir: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    code, err = run_cli(["similarity", "--model", str(tmp_path / "empty"), "a", "b"], capsys)
    assert_one_line_error(code, err, "empty: not a model directory (it is empty)")
    config = tmp_path / "config.json"
    config.write_text(json.dumps(tiny_config(tmp_path, tiny_bert_dir)))
    code, err = run_cli(["train", str(config), "--set", f"model.base={tmp_path / 'empty'}"], capsys)
    assert_one_line_error(code, err, "model.base = ", "empty: not a model directory (it is empty)")


def test_relative_model_path_that_does_not_exist(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    code, err = run_cli(["similarity", "--model", "runs/simcse", "a", "b"], capsys)
    assert_one_line_error(code, err, "--model runs/simcse: no such directory")
    code, err = run_cli(["similarity", "--model", "my_model", "a", "b"], capsys)  # could be a hub id
    assert_one_line_error(code, err, "--model my_model: no such directory, and no Hugging Face hub model")


def test_a_full_disk_anywhere_else_is_still_one_line(tmp_path, tiny_bert_dir, capsys, monkeypatch) -> None:
    """A writer outside jtcse.fs (here the metrics log's append) hitting ENOSPC: the CLI's last net."""
    from jtcse.training.metrics import MetricsLog

    def log(self, record) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(MetricsLog, "log", log)
    config = tmp_path / "config.json"
    raw = tiny_config(tmp_path, tiny_bert_dir, train={"max_steps": 1}, eval={"every": 0})
    config.write_text(json.dumps(raw))
    code, err = run_cli(["train", str(config)], capsys)
    assert_one_line_error(code, err, "metrics.jsonl: no space left on the device")


def test_encode_tidies_its_output_folder_first(tmp_path: Path, tiny_bert_dir: Path, capsys) -> None:
    pid, host = dead_pid(), host_tag()
    orphan = tmp_path / f".old_vectors.npy.{host}-{pid}.abcd1234.tmp"  # an encode killed mid-write
    orphan.write_bytes(b"\0" * 1000)
    (tmp_path / "in.txt").write_text("a man plays\na dog runs\n")
    argv = ["encode", "--model", str(tiny_bert_dir), "--device", "cpu", "--input", str(tmp_path / "in.txt")]
    code, err = run_cli([*argv, "--output", str(tmp_path / "vecs.npy")], capsys)
    assert code == 0, err
    assert sorted(os.listdir(tmp_path)) == ["in.txt", "vecs.npy"]
