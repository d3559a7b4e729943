"""Issue 26: every record jtcse writes and reads back goes through one reader (jtcse.records) and a declared
schema. Property-based: any bytes, any JSON, a valid record with one field replaced or removed, or a valid
record cut short, ends in the value, one one-line JtcseError naming the file, or (caches) None with one
one-line note. Never another exception. Plus the CLI probes of the issue and the schema types themselves."""

from __future__ import annotations

import copy
import json
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jtcse.cli.main import main
from jtcse.corpus_scale.index_meta import read_meta
from jtcse.corpus_scale.manifest import read_manifest
from jtcse.corpus_scale.shards import ShardedVectors, read_entry
from jtcse.corpus_scale.verified import FileChecks
from jtcse.engines import read_graph_info
from jtcse.errors import JtcseError, JtcseWarning
from jtcse.evaluation.zero_shot import runner as zero_shot
from jtcse.export.sentence_transformers import TOWERS_FILE, read_modules, read_towers
from jtcse.locks import LOCK_NAME, output_lock
from jtcse.model.format import read_spec
from jtcse.model_card import STS_RESULTS_SPEC as STS_SPEC
from jtcse.model_card import _sts_section
from jtcse.pipeline.runner import RESULT_FILE, read_result
from jtcse.pipeline.study.run import EvalCache
from jtcse.plotting import read_eval_pairs
from jtcse.records import Int, ListOf, MapOf, Num, Obj, Str, parse_lines, read_record
from jtcse.run_files import read_metrics
from jtcse.tools.search import SearchIndex
from jtcse.training.checkpoint import RESUME_SPEC, load_checkpoint, save_checkpoint

SHA = "ab" * 32
IDENTITY = {"members": [{"source": "m", "pooler": "cls", "fingerprint": "f"}], "dim": 4}
SHARD = {"file": "shard-00000.npy", "start": 0, "stop": 2, "offset": 0, "rows": 2, "blank": 0}
VALID: dict[str, Any] = {
    "manifest": {
        "format": "jtcse-vectors",
        "format_version": 1,
        "complete": True,
        "model": IDENTITY,
        "dim": 4,
        "normalize": True,
        "shard_format": "npy",
        "shard_size": 2,
        "input": {"path": "/x.txt", "sha256": SHA, "bytes": 4},
        "lines": 2,
        "shards": [{**SHARD, "sha256": SHA, "bytes": 160, "zero": 0}],
        "zero_vectors": 0,
    },
    "index": {
        "format": "jtcse-vector-index",
        "format_version": 1,
        "kind": "ivfpq",
        "count": 2,
        "dim": 4,
        "model": {**IDENTITY, "export_of": {"identity": IDENTITY, "format": "onnx"}},
        "vectors": {"folder": "/v", "manifest_sha256": SHA},
        "input": {"path": "/x.txt", "bytes": 4},
        "shard_size": 2,
        "shard_offsets": [0],
        "files": {"index.faiss": SHA, "rows.npy": SHA},
        "nprobe": 4,
        "rerank_copy": {"bytes": 10, "sha256": SHA},
    },
    "search": {
        "format": "jtcse-search-index",
        "format_version": 1,
        "model": IDENTITY,
        "dim": 4,
        "count": 2,
        "corpus": {"path": "/c.txt", "sha256": SHA},
        "vectors_sha256": SHA,
    },
    "spec": {
        "format": "jtcse-model",
        "format_version": 1,
        "kind": "twin",
        "members": [
            {"path": "tower_a", "pooler": "cls", "weight": 1.0},
            {"path": "tower_b", "external": False},
        ],
        "method": "jtcse",
        "extra": {},
        "checksums": {"tower_a/model.safetensors": SHA},
    },
    "zero_shot": {"format": zero_shot.CACHE_FORMAT, "scores": {"test": {"default": {"main_score": 0.5}}}},
    "entry": {**SHARD, "file": "shard-00000.npy", "sha256": SHA, "bytes": 160, "zero": 1},
    "lock": {"host": "h", "pid": 123, "since": "now", "command": "jtcse train"},
    "result": {
        "name": "a",
        "point": {},
        "seed": 1,
        "output_dir": "/o",
        "dev_stsb": 80.0,
        "dev_source": "training",
        "tasks": ["STSBenchmark"],
        "test": {"STSBenchmark": 79.0, "avg": None},
        "train_s": 1.0,
        "eval_s": 1.0,
        "steps": 10,
        "best_step": 5,
        "config": {},
        "format_version": 1,
    },
    "eval_cache": {
        "start": {"identity": {"members": ["m"]}, "dev": 70.0, "test": {"avg": None}, "eval_s": 1.0}
    },
    "graph": {"max_length": 128, "precision": "fp32"},
    "sts": {"STS12": 70.1, "STSBenchmark": None, "avg": 70.1, "details": {"mode": "test"}},
    "modules": [{"idx": 0, "name": "0", "path": "", "type": "jtcse_st_module.MultiTowerEmbedding"}],
    "towers": {
        "towers": [{"path": "towers/0", "max_length": 32}, {"path": "towers/1", "max_length": None}],
        "members": [
            {"tower": 0, "pooler": "cls", "weight": 1.0},
            {"tower": 1, "pooler": "avg", "weight": -1},
        ],
    },
    "eval": {
        "STS12": 70.1,
        "pairs": {"STS12": {"gold": [1.0, 4.5], "cosine": [0.1, 0.9], "subset": ["a", 2]}},
    },
    "memo": {
        "format": "jtcse-verified",
        "folder": "/f",
        "files": {"a": {"sha256": SHA, "size": 1, "mtime_ns": 1, "ctime_ns": 1, "ino": 1, "dev": 1}},
    },
}

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
EXTREME = st.sampled_from(
    [2**63, -1, 0, 1e400, -1e400, float("nan"), "", "1", [], {}, None, True, 10**5000, -(10**400)]
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, (*prefix, i))


@st.composite
def mutated(draw: st.DrawFn, record: Any) -> bytes:
    """``record`` with one value replaced (arbitrary JSON or an extreme) or one key removed, or cut short."""
    how = draw(st.sampled_from(["replace", "remove", "truncate", "bytes", "json"]))
    if how == "bytes":
        return draw(st.binary(max_size=200))
    if how == "json":
        return json.dumps(draw(JSON)).encode()
    text = json.dumps(record).encode()
    if how == "truncate":
        return text[: draw(st.integers(0, len(text) - 1))]
    value = copy.deepcopy(record)
    path = draw(st.sampled_from([p for p in _paths(value) if p]))
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    if how == "remove":
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(JSON | EXTREME)
    try:
        return json.dumps(value).encode()
    except ValueError:  # an integer too long to print: then its digits stand in for the record
        return b"9" * 5000


@contextmanager
def only_one_line_outcomes() -> Iterator[list[str]]:
    """The block may raise JtcseError (one line) and warn JtcseWarning (one line); nothing else escapes."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        notes: list[str] = []
        try:
            yield notes
        except JtcseError as exc:
            assert "\n" not in str(exc) and str(exc)
        for warning in caught:
            assert issubclass(warning.category, JtcseWarning), warning
            assert "\n" not in str(warning.message)
            notes.append(str(warning.message))


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WORK = Path(tempfile.mkdtemp(prefix="jtcse-records-"))


def _write(name: str, data: bytes) -> Path:
    folder = WORK / name
    folder.mkdir(exist_ok=True)
    return folder


READERS: dict[str, tuple[str, Callable[[Path], object]]] = {
    "manifest": ("manifest.json", lambda folder: ShardedVectors(folder).verify()),
    "index": ("index.json", read_meta),
    "search": ("index.json", lambda folder: SearchIndex.read_meta(folder)),
    "spec": ("jtcse.json", read_spec),
    "result": (RESULT_FILE, read_result),
    "eval_cache": ("cache.json", lambda folder: EvalCache(folder / "cache.json").entries),
    "graph": ("graph.json", read_graph_info),
    "sts": ("sts_results.json", lambda f: _sts_section(read_record(f / "sts_results.json", STS_SPEC))),
    "modules": ("modules.json", read_modules),  # an export reads back what sentence-transformers wrote
    "towers": (TOWERS_FILE, read_towers),
    "eval": ("scores.json", lambda folder: read_eval_pairs(folder / "scores.json")),  # jtcse plot
}


@pytest.mark.parametrize("kind", READERS)
def test_the_valid_records_read(kind: str) -> None:
    name, reader = READERS[kind]
    folder = _write(kind, b"")
    (folder / name).write_text(json.dumps(VALID[kind]))
    if kind == "manifest":  # its shard is missing: the one-line refusal after the manifest was accepted
        assert read_manifest(folder) == VALID[kind]
        with pytest.raises(JtcseError, match=r"shard-00000\.npy: missing or unreadable"):
            reader(folder)
        return
    assert reader(folder)


@pytest.mark.parametrize("kind", READERS)
@FAST
@given(data=st.data())
def test_damaged_records_are_one_line_errors(kind: str, data: st.DataObject) -> None:
    name, reader = READERS[kind]
    folder = _write(kind, b"")
    (folder / name).write_bytes(data.draw(mutated(VALID[kind])))
    with only_one_line_outcomes():
        reader(folder)


@pytest.mark.parametrize("kind", READERS)
def test_every_field_as_a_huge_integer_is_one_line(kind: str) -> None:
    """Deterministic for what the sampling above finds only now and then: JSON's longest integers (`float()`
    overflows at 309 digits; more than 4,300 is a `ValueError` in `json.loads`) in every field."""
    name, reader = READERS[kind]
    folder = _write(kind, b"")
    for path in [p for p in _paths(VALID[kind]) if p]:
        value = copy.deepcopy(VALID[kind])
        parent = value
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = -(10**400)
        for data in (json.dumps(value).encode(), b"9" * 5000):
            (folder / name).write_bytes(data)
            with only_one_line_outcomes():
                reader(folder)


CACHES: dict[str, Callable[[Path], object]] = {
    "zero_shot": lambda file: zero_shot.read_cached(file, zero_shot.TaskJob("T", ("test",), ("main_score",))),
    "entry": lambda file: read_entry(file.parent, 0, SHARD),
    "memo": lambda file: FileChecks(WORK)._files(),
}


@pytest.mark.parametrize("kind", CACHES)
@FAST
@given(data=st.data())
def test_damaged_cache_entries_are_a_note_or_nothing(kind: str, data: st.DataObject) -> None:
    folder = _write(kind, b"")
    file = FileChecks(WORK).memo_file if kind == "memo" else folder / "shard-00000.json"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(data.draw(mutated(VALID[kind])))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CACHES[kind](file)
    assert all(issubclass(w.category, JtcseWarning) and "\n" not in str(w.message) for w in caught)
    assert len(caught) <= 1


@FAST
@given(data=st.data())
def test_damaged_lock_records_never_escape_as_another_exception(data: st.DataObject) -> None:
    folder = _write("lock", b"")
    (folder / LOCK_NAME).write_bytes(data.draw(mutated(VALID["lock"])))
    with only_one_line_outcomes(), output_lock(folder, what="--output"):
        pass


@FAST
@given(data=st.data())
def test_metrics_lines_are_read_or_one_line_errors(data: st.DataObject) -> None:
    folder = _write("metrics", b"")
    good = b'{"step": 1, "loss": 0.5}\n{"step": 2, "loss": "nan"}\n'
    tail = data.draw(mutated({"step": 3, "loss": 0.25, "lr": 1e-5}))
    (folder / "metrics.jsonl").write_bytes(good + tail + data.draw(st.sampled_from([b"", b"\n"])))
    with only_one_line_outcomes():
        records = read_metrics(folder / "metrics.jsonl")
        assert all(isinstance(r, dict) and isinstance(r.get("step", 0), int) for r in records)


def test_a_torn_last_metrics_line_is_dropped_a_damaged_one_named(tmp_path: Path) -> None:
    file = tmp_path / "metrics.jsonl"
    file.write_text('{"step": 1}\n{"step": 2, "lo')
    assert read_metrics(file) == [{"step": 1}]
    file.write_text('{"step": 1}\n{"step": "x"}\n{"step": 3}\n')
    with pytest.raises(JtcseError, match=r"metrics\.jsonl:2: field step: expected an integer, got 'x'$"):
        read_metrics(file)


def test_a_resume_names_the_damaged_key_of_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint" / "state.pt"
    state = {"step": "x", "model": {"w": torch.zeros(2)}}
    save_checkpoint(path, state)  # a checksum that matches: only the schema can tell
    assert load_checkpoint(path)["step"] == "x"
    with pytest.raises(
        JtcseError, match=r"state\.pt: the checkpoint is damaged \(field optimizer: missing\)"
    ):
        load_checkpoint(path, spec=RESUME_SPEC)


def test_schema_messages_name_the_file_and_the_field(tmp_path: Path) -> None:
    spec = Obj({"shards": ListOf(Obj({"rows": Int(0)})), "m": MapOf(Num(-1, 1))}, {"name": Str()})
    file = tmp_path / "r.json"
    cases = {
        '{"shards": [{"rows": 1}, {"rows": -2}], "m": {}}': (
            "field shards[1].rows: expected an integer >= 0, got -2"
        ),
        '{"shards": [], "m": {"a": NaN}}': "field m.a: expected a finite number, got nan",
        '{"shards": [], "m": {"a": true}}': "field m.a: expected a number, got True",
        '{"shards": [], "m": {"a": 2}}': "field m.a: expected a number in [-1, 1], got 2",
        '{"shards": [], "m": {}, "name": ["x"]}': "field name: expected a string, got a list",
        '{"m": {}}': "field shards: missing",
        "[1, 2]": "expected an object, got a list",
        '{"shards": [': "not valid JSON (Expecting value at line 1 column 13)",
        "[" * 100_000: "not valid JSON (RecursionError)",
    }
    for text, why in cases.items():
        file.write_text(text)
        with pytest.raises(JtcseError) as error:
            read_record(file, spec, remedy="fix it")
        assert str(error.value) == f"{file}: {why}; fix it"
    file.write_bytes(b"\xff{}")
    with pytest.raises(JtcseError, match=r"r\.json: not UTF-8 text \(byte 0\)$"):
        read_record(file, spec)
    with pytest.raises(JtcseError, match=r"nope\.json: not found$"):
        read_record(tmp_path / "nope.json", spec)
    assert parse_lines(b'{"a": 1}\n\n{"a": 2}\n', Obj(), where="x") == [{"a": 1}, {"a": 2}]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return int(exit_info.value.code or 0), capsys.readouterr().err


def test_search_of_a_garbled_index_json_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 26: a garbled index.json said `--corpus: required`."""
    folder = tmp_path / "idx"
    folder.mkdir()
    (folder / "index.json").write_text('{"format": "jtcse-vector-index", "kind": ')
    code, err = run_cli(["search", "--model", "none", "--index", str(folder), "--query", "q"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"jtcse: error: {folder / 'index.json'}: not valid JSON (")
    assert "--corpus" not in err
    (folder / "index.json").write_text(json.dumps({**VALID["index"], "count": "2"}))
    code, err = run_cli(["search", "--model", "none", "--index", str(folder), "--query", "q"], capsys)
    assert code == 2 and "index.json: field count: expected an integer, got '2'; rebuild it" in err
    (folder / "index.json").write_text(json.dumps(VALID["search"]))
    code, err = run_cli(["search", "--model", "none", "--index", str(folder), "--query", "q"], capsys)
    assert code == 2 and err.endswith("the index of a --corpus file; pass that --corpus FILE too\n")


def test_verify_is_only_for_an_index_of_jtcse_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("a\nb\n")
    code, err = run_cli(
        ["search", "--model", "none", "--corpus", str(corpus), "--query", "q", "--verify"], capsys
    )
    assert code == 2 and err == (
        "jtcse: error: --verify: only with an --index built by jtcse index "
        "(a --corpus index is hashed on every load)\n"
    )
