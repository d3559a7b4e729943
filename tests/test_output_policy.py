"""jtcse.output_policy.check_output, the one check every writer makes before any work, and the CLI's rule
for an OSError on a user's path (one line) versus anywhere else (a bug: its traceback)."""

from __future__ import annotations

import argparse
import errno
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from jtcse.cli.main import main, user_path_error
from jtcse.errors import JtcseError
from jtcse.fs import staged_directory
from jtcse.output_policy import check_output


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def test_a_new_or_empty_folder_or_ours_is_accepted(tmp_path: Path) -> None:
    assert check_output(tmp_path / "new" / "deeper", option="--output") == tmp_path / "new" / "deeper"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".jtcse.lock").write_text("{}")  # a killed writer's lock: still empty
    check_output(empty, option="--output", ours=("index.json",), replaces=True)
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "index.json").write_text("{}")
    check_output(ours, option="--output", ours=("index.json", "rows.npy"), replaces=True)
    assert not any(p.name.startswith(".jtcse_probe") for p in ours.iterdir())  # the probe is gone


def test_someone_elses_folder_is_refused_and_kept(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "thesis.tex").write_text("years of work")
    with pytest.raises(JtcseError, match=r"^--output .*theirs: exists and is not empty; choose a new"):
        check_output(theirs, option="--output", ours=("index.json",))
    with pytest.raises(JtcseError, match="exists and is not empty; pass --overwrite to replace it"):
        check_output(theirs, option="OUT", overwrite=False)
    assert check_output(theirs, option="OUT", overwrite=True) == theirs  # the user's explicit consent
    # a folder that is ours but holds a file of theirs: a writer that replaces it as a whole would delete it
    (theirs / "index.json").write_text("{}")
    with pytest.raises(JtcseError, match=r"holds files jtcse did not write \(thesis\.tex\)"):
        check_output(theirs, option="--output", ours=("index.json",), replaces=True)
    check_output(theirs, option="--output", ours=("index.json",))  # one that writes in place may go on
    assert listing(theirs) == ["index.json", "thesis.tex"]


def test_an_input_is_never_the_output_nor_around_it(tmp_path: Path) -> None:
    vectors = tmp_path / "vecs"
    vectors.mkdir()
    (vectors / "manifest.json").write_text("{}")
    model = tmp_path / "model"
    model.mkdir()
    with pytest.raises(JtcseError, match=r"is the input --vectors .*vecs; writing there would destroy it"):
        check_output(vectors, option="--output", holders={"--vectors": vectors}, replaces=True)
    with pytest.raises(JtcseError, match=r"lies inside the input --model .*model; choose a path outside"):
        check_output(model / "out", option="--output", inputs={"--model": model})
    with pytest.raises(JtcseError, match=r"holds the input --vectors .*vecs; replacing it would delete"):
        check_output(
            tmp_path, option="--output", holders={"--vectors": vectors}, replaces=True, overwrite=True
        )
    check_output(vectors / "index-flat", option="--output", holders={"--vectors": vectors}, replaces=True)
    link = tmp_path / "link"
    link.symlink_to(model)
    with pytest.raises(JtcseError, match="is the input --model"):  # through a symlink too
        check_output(link, option="OUT", inputs={"--model": model}, overwrite=True)
    check_output(tmp_path / "out", option="--output", inputs={"--model": "minilm"})  # a name, not a path


def test_wrong_kind_of_path(tmp_path: Path) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("x")
    with pytest.raises(JtcseError, match=r"notes\.txt: is a file, not a folder"):
        check_output(file, option="--output-dir")
    with pytest.raises(JtcseError, match=r"cannot be created: .*notes\.txt is a file"):
        check_output(file / "sub", option="--output-dir")
    with pytest.raises(JtcseError, match=r"--output .*: is a folder, not a file"):
        check_output(tmp_path, option="--output", kind="file")
    assert file.read_text() == "x"


def test_the_current_directory_and_mount_points_are_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(JtcseError, match=r"^--output \.: is the current directory"):
        check_output(".", option="--output", replaces=True)
    with pytest.raises(JtcseError, match=r"^--output \.\.: is the current directory \(or holds it\)"):
        check_output("..", option="--output", replaces=True, overwrite=True)
    with pytest.raises(JtcseError, match="is a mount point"):
        check_output("/dev/shm" if os.path.ismount("/dev/shm") else "/proc", option="OUT", replaces=True)
    assert listing(tmp_path) == []


def test_staged_directory_leaves_nothing_when_the_swap_fails(tmp_path: Path, monkeypatch) -> None:
    """The rename of the old folder fails (EBUSY: a mount point): the old folder stays, no aside folder."""
    out = tmp_path / "idx"
    out.mkdir()
    (out / "index.json").write_text("old")
    real_rename = Path.rename

    def busy(self: Path, target):
        if self == out:
            raise OSError(errno.EBUSY, "Device or resource busy", str(self))
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", busy)
    with pytest.raises(OSError, match="busy"), staged_directory(out, prefix=".jtcse_index_tmp_") as staging:
        (staging / "index.json").write_text("new")
    assert listing(tmp_path) == ["idx"] and (out / "index.json").read_text() == "old"


def test_read_only_places_are_refused_before_any_work(
    tmp_path: Path, read_only: Callable[[Path], Path]
) -> None:
    frozen = read_only(tmp_path / "frozen")
    with pytest.raises(JtcseError, match=r"^--output-dir .*frozen: cannot write in .*frozen: "):
        check_output(frozen, option="--output-dir")
    with pytest.raises(JtcseError, match=r"^--output .*frozen/new/r\.json: cannot write in .*frozen: "):
        check_output(frozen / "new" / "r.json", option="--output", kind="file")
    assert listing(frozen) == []


# ------------------------------------------------------------------------- OSError at the CLI's top level
def test_an_oserror_on_a_users_path_is_one_line_and_a_bug_keeps_its_traceback(tmp_path: Path) -> None:
    args = argparse.Namespace(output=tmp_path / "out", verbose=False)
    mine = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "out" / "a.npy"))
    assert user_path_error(mine, args) == f"{tmp_path / 'out' / 'a.npy'}: Permission denied"
    wrapped = RuntimeError("saving failed")
    wrapped.__cause__ = OSError(errno.EROFS, "Read-only file system", str(tmp_path / "out"))
    assert user_path_error(wrapped, args) == f"{tmp_path / 'out'}: Read-only file system"
    elsewhere = FileNotFoundError(errno.ENOENT, "No such file or directory", "/usr/lib/jtcse-missing.json")
    assert user_path_error(elsewhere, args) is None
    assert user_path_error(OSError(errno.EACCES, "Permission denied"), args) is None  # no path: a bug


def test_cli_read_only_output_is_one_line(tmp_path: Path, read_only: Callable[[Path], Path]) -> None:
    """A real command, a real read-only folder: `jtcse plot --out` is refused before it reads anything."""
    run = tmp_path / "run"
    run.mkdir()
    frozen = read_only(tmp_path / "frozen")
    proc = subprocess.run(
        [sys.executable, "-m", "jtcse", "plot", str(run), "--out", str(frozen / "plots")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith(f"jtcse: error: --out {frozen / 'plots'}: cannot write in {frozen}: ")
    assert len(proc.stderr.strip().splitlines()) == 1 and listing(frozen) == []


def test_cli_turns_a_late_oserror_on_the_output_into_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A write that fails after the checks (the disk went read-only mid-run): one line naming the file."""
    import jtcse.cli.data as data_cli

    def fails(args: argparse.Namespace) -> int:
        raise OSError(errno.EROFS, "Read-only file system", str(Path(args.dest) / "sts" / "a.txt"))

    monkeypatch.setattr(data_cli, "run_download", fails)
    with pytest.raises(SystemExit) as info:
        main(["data", "download", "--dest", str(tmp_path / "d")])
    assert info.value.code == 2
    assert (
        capsys.readouterr().err
        == f"jtcse: error: {tmp_path / 'd' / 'sts' / 'a.txt'}: Read-only file system\n"
    )


def test_cli_keeps_the_traceback_of_an_oserror_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jtcse.cli.data as data_cli

    def bug(args: argparse.Namespace) -> int:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/nonexistent/jtcse/table.json")

    monkeypatch.setattr(data_cli, "run_download", bug)
    with pytest.raises(FileNotFoundError):
        main(["data", "download", "--dest", str(tmp_path / "d")])
