"""``jtcse eval zero-shot`` before and without the hub: option checks that stop it before any task runs,
and a hub that cannot be reached found once (a short probe) so that each task whose data is not cached
fails at once with one line, not after ~23 s of huggingface_hub's retries. The hub is pointed at a closed
port of 127.0.0.1 (``HF_ENDPOINT``), so the outcome does not depend on this machine's network."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

mteb = pytest.importorskip("mteb")

from jtcse.cli.main import main  # noqa: E402
from jtcse.evaluation import hub  # noqa: E402
from jtcse.evaluation.zero_shot import runner  # noqa: E402


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return int(exit_info.value.code or 0), capsys.readouterr().err


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def online_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as if no offline variable were set (conftest sets them); restored afterwards, also the
    constants that :func:`hub.go_offline` sets in the imported libraries."""
    import datasets.config
    import huggingface_hub.constants

    for name in hub.OFFLINE_ENV:
        monkeypatch.setenv(name, "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", False)


@pytest.mark.parametrize("value", [",", "", " , "])
def test_categories_that_name_nothing_are_an_error(value: str, capsys) -> None:
    code, err = run_cli(["eval", "zero-shot", "--model", "x", "--categories", value], capsys)
    assert code == 2
    assert err.splitlines() == [
        f"jtcse: error: --categories {value!r}: names no category; "
        "choose from sts22,classification,retrieval,reranking,bitext"
    ]


def test_unknown_category_lists_the_valid_ones(capsys) -> None:
    code, err = run_cli(["eval", "zero-shot", "--model", "x", "--categories", "sts22,sts23"], capsys)
    assert code == 2
    assert err.splitlines() == [
        "jtcse: error: --categories sts23: unknown; "
        "choose from sts22,classification,retrieval,reranking,bitext"
    ]


def test_every_model_is_checked_before_any_task_runs(
    tiny_bert_dir: Path, tmp_path: Path, monkeypatch, capsys
):
    started: list[str] = []
    monkeypatch.setattr(runner, "hub_task", lambda job: started.append(job.task))
    argv = ["eval", "zero-shot", "--model", str(tiny_bert_dir), "--model", str(tmp_path / "nope")]
    code, err = run_cli([*argv, "--device", "cpu", "--output-dir", str(tmp_path / "zs")], capsys)
    assert code == 2 and started == []
    assert err.splitlines() == [f"jtcse: error: --model {tmp_path / 'nope'}: no such directory"]


def test_probe_tells_a_closed_port_from_a_server_that_answers() -> None:
    started = time.monotonic()
    reason = hub.probe(closed_port_url(), timeout=2)
    assert reason is not None and "refused" in reason.lower() and time.monotonic() - started < 2

    class NotFound(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:  # any status is an answer: the hub is there
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert hub.probe(f"http://127.0.0.1:{server.server_address[1]}", timeout=5) is None
    finally:
        server.shutdown()
        thread.join(10)


def test_an_offline_setting_is_honoured_without_a_probe(monkeypatch, online_settings) -> None:
    monkeypatch.setattr(hub, "probe", lambda *a, **k: pytest.fail("probed although offline was set"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert hub.hub_unavailable() == "HF_DATASETS_OFFLINE is set"


def test_unreachable_hub_fails_each_uncached_task_at_once_with_one_line(
    tiny_bert_dir: Path, tmp_path: Path, monkeypatch, capsys, online_settings
) -> None:
    import huggingface_hub.constants

    url = closed_port_url()
    monkeypatch.setenv(hub.ENDPOINT_ENV, url)
    out = tmp_path / "zs"
    argv = ["eval", "zero-shot", "--model", str(tiny_bert_dir), "--device", "cpu", "--output-dir", str(out)]
    started = time.monotonic()
    code, err = run_cli([*argv, "--categories", "sts22,bitext"], capsys)
    seconds = time.monotonic() - started
    assert code == 1, err
    assert huggingface_hub.constants.HF_HUB_OFFLINE is True  # the libraries went offline
    report = json.loads((out / "zero_shot.json").read_text("utf-8"))
    tasks = 16  # STS22.v2 and the 15 bitext tasks, none cached
    assert len(report["failures"]) == tasks
    lines = err.splitlines()
    assert lines[0].startswith(f"zero-shot: the Hugging Face hub ({url}) cannot be reached: ")
    failed = [line for line in lines if "FAILED (" in line]
    assert len(failed) == tasks, err
    assert not any("Retr" in line or "thrown while requesting" in line for line in lines), err
    # one line per task and a few others (the notice, the report, the summary): nothing from the libraries
    assert len(lines) == tasks + 3, err
    assert seconds < 60, f"{seconds:.0f} s: the tasks waited for the hub"  # was ~23 s per task


def test_eval_mteb_with_the_hub_unreachable_fails_at_once(
    tiny_bert_dir: Path, tmp_path: Path, monkeypatch, capsys, online_settings
) -> None:
    url = closed_port_url()
    monkeypatch.setenv(hub.ENDPOINT_ENV, url)
    argv = ["eval", "mteb", "--model", str(tiny_bert_dir), "--tasks", "STS12", "--device", "cpu"]
    started = time.monotonic()
    code, err = run_cli([*argv, "--output-dir", str(tmp_path / "mteb")], capsys)
    assert code == 2 and time.monotonic() - started < 30, err
    lines = [line for line in err.splitlines() if not line.startswith("Evaluating")]  # mteb's own bar
    assert lines[0].startswith(f"mteb: the Hugging Face hub ({url}) cannot be reached: "), err
    assert lines[-1].startswith("jtcse: error: mteb could not get a task's data ("), err
    assert "Traceback" not in err and "Retr" not in err
