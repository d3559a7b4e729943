"""Saved ensembles: weights as documented (JTCSE-UC 0.3 / 0.7), own tokenizers and poolers, bad input."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from jtcse.encoder import Encoder
from jtcse.ensemble import UC_EXTERNAL_WEIGHT, UC_TWIN_WEIGHT, UC_WEIGHT, save_ensemble, save_uc_ensemble
from jtcse.errors import JtcseError
from jtcse.fs import atomic_write_text, staged_directory
from jtcse.model.format import read_spec

SENTENCES = ["A man is playing a guitar.", "hello", "Two dogs run across a snowy field at dawn."]


def encode(model: str | Path, **kw: object) -> np.ndarray:
    return Encoder(model, device="cpu", **kw).encode(SENTENCES)


def test_uc_weights_are_the_papers() -> None:
    assert UC_WEIGHT == 0.7
    assert (UC_TWIN_WEIGHT, UC_EXTERNAL_WEIGHT) == (0.3, 0.7)


def test_uc_ensemble_applies_the_documented_weights(
    twin_dir: Path, tiny_roberta_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "uc"
    save_uc_ensemble(out, twin_dir, tiny_roberta_dir)
    spec = read_spec(out)
    assert spec.kind == "ensemble" and spec.method == "jtcse-uc"
    assert [m.weight for m in spec.members] == [0.3, 0.7]
    # e_UC = (1 - w) (h_A + h_B) + w h_ext, each tower with its own tokenizer, CLS of the last layer
    h_a = encode(twin_dir / "tower_a", pooler="cls_before_pooler")
    h_b = encode(twin_dir / "tower_b", pooler="cls_before_pooler")
    h_ext = encode(tiny_roberta_dir, pooler="cls_before_pooler")
    want = 0.3 * (h_a + h_b) + 0.7 * h_ext
    np.testing.assert_allclose(encode(out), want, atol=1e-5, rtol=0)
    # the in-memory form agrees with the saved one
    in_memory = Encoder.ensemble([twin_dir, tiny_roberta_dir], [0.3, 0.7], device="cpu").encode(SENTENCES)
    np.testing.assert_allclose(in_memory, want, atol=1e-5, rtol=0)
    assert (out / "README.md").is_file()


def test_members_keep_their_poolers(tiny_bert_dir: Path, tiny_bert_dir_b: Path, tmp_path: Path) -> None:
    out = tmp_path / "mixed"
    save_ensemble(out, [tiny_bert_dir, tiny_bert_dir_b], [0.5, -1.25], ["avg", "avg_first_last"])
    want = 0.5 * encode(tiny_bert_dir, pooler="avg") - 1.25 * encode(tiny_bert_dir_b, pooler="avg_first_last")
    np.testing.assert_allclose(encode(out), want, atol=1e-5, rtol=0)
    # a None pooler records the model's own default, and paths are absolute
    save_ensemble(tmp_path / "default", [tiny_bert_dir], [1.0])
    member = read_spec(tmp_path / "default").members[0]
    assert member.pooler == "cls_before_pooler" and Path(member.path).is_absolute()


def test_sentence_transformers_member_uses_its_pooling(minilm_dir: Path, tmp_path: Path) -> None:
    save_ensemble(tmp_path / "m", ["minilm"], [2.0])
    member = read_spec(tmp_path / "m").members[0]
    assert member.pooler == "avg"  # MiniLM's 1_Pooling is mean
    assert Path(member.path) == minilm_dir.resolve()


def test_copied_members_make_a_movable_directory(twin_dir: Path, tiny_bert_dir: Path, tmp_path: Path) -> None:
    built = tmp_path / "built"
    save_ensemble(built, [twin_dir, tiny_bert_dir], [0.3, 0.7], copy=True)
    assert all(not Path(m.path).is_absolute() for m in read_spec(built).members)
    moved = tmp_path / "elsewhere" / "ens"
    moved.parent.mkdir()
    shutil.move(built, moved)
    want = 0.3 * encode(twin_dir) + 0.7 * encode(tiny_bert_dir)
    np.testing.assert_allclose(encode(moved), want, atol=1e-5, rtol=0)


def test_bad_input(twin_dir: Path, tiny_bert_dir: Path, tmp_path: Path, minilm_dir: Path) -> None:
    with pytest.raises(JtcseError, match=r"2 member\(s\) but 3 weight\(s\)"):
        save_ensemble(tmp_path / "a", [twin_dir, tiny_bert_dir], [0.3, 0.7, 0.1])
    with pytest.raises(JtcseError, match=r"2 member\(s\) but 1 weight\(s\)"):
        Encoder.ensemble([twin_dir, tiny_bert_dir], [1.0], device="cpu")
    with pytest.raises(JtcseError, match="needs at least one member"):
        save_ensemble(tmp_path / "a", [], [])
    with pytest.raises(JtcseError, match="1 pooler"):
        save_ensemble(tmp_path / "a", [twin_dir, tiny_bert_dir], [1, 1], ["avg"])
    with pytest.raises(JtcseError, match="own poolers"):
        save_ensemble(tmp_path / "a", [twin_dir], [1.0], ["avg"])
    with pytest.raises(JtcseError, match="pooler 'max'"):
        save_ensemble(tmp_path / "a", [tiny_bert_dir], [1.0], ["max"])
    with pytest.raises(JtcseError, match="weight 0"):
        save_ensemble(tmp_path / "a", [tiny_bert_dir], [float("nan")])
    with pytest.raises(JtcseError, match=r"weight 1 \(inf\) must be a finite number"):
        Encoder.ensemble([tiny_bert_dir, tiny_bert_dir], [1.0, float("inf")], device="cpu")
    with pytest.raises(JtcseError, match="no such directory"):
        save_ensemble(tmp_path / "a", [tmp_path / "missing"], [1.0])
    with pytest.raises(JtcseError, match="different hidden sizes"):
        save_ensemble(tmp_path / "a", [tiny_bert_dir, minilm_dir], [1.0, 1.0])
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    with pytest.raises(JtcseError, match="not empty; pass --overwrite"):
        save_ensemble(busy, [tiny_bert_dir], [1.0])
    save_ensemble(busy, [tiny_bert_dir], [1.0], overwrite=True)
    assert not (busy / "x").exists()
    with pytest.raises(JtcseError, match="holds the member"):
        save_ensemble(twin_dir, [twin_dir / "tower_a"], [1.0], overwrite=True)
    assert not (tmp_path / "a").exists()


def test_staged_directory_swaps_in_only_on_success(tmp_path: Path) -> None:
    out = tmp_path / "model"
    out.mkdir()
    (out / "weights").write_text("old")
    with pytest.raises(RuntimeError, match="crash"), staged_directory(out) as staging:
        (staging / "weights").write_text("half-written")
        raise RuntimeError("crash")
    assert (out / "weights").read_text() == "old"  # the old directory is untouched
    with staged_directory(out) as staging:
        (staging / "weights").write_text("new")
        assert (out / "weights").read_text() == "old"  # nothing visible before the block ends
    assert (out / "weights").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging or old copies left


def test_atomic_and_staged_writes_get_ordinary_permissions(tmp_path: Path) -> None:
    # mkstemp / mkdtemp are private (0600 / 0700); what jtcse writes must be as readable as a plain write
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "card.md", "x")
        with staged_directory(tmp_path / "model") as staging:
            (staging / "w").write_text("w")
        (tmp_path / "shared.json").write_text("{}")
        (tmp_path / "shared.json").chmod(0o664)
        atomic_write_text(tmp_path / "shared.json", "{ }")  # replacing a file keeps its mode
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "card.md").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "shared.json").stat().st_mode) == 0o664
